import { createHash, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { lockstep } from './fixtures/cli.ts';
import { addPluginCommands } from '../src/cli/plugin-commands.ts';
import { AdmissionError, ConfigError, LockstepError } from '../src/errors.ts';
import { canonicalManifestJson, parseManifest, type PluginManifest } from '../src/wasm/manifest.ts';
import {
  generateKeyPair,
  loadPluginFiles,
  pluginPaths,
  publicKeyId,
  signPlugin,
  verifyPlugin,
  type PluginSignature,
} from '../src/wasm/signing.ts';
import { minimalAgentWat, wat, type AgentWatParts } from './fixtures/wat.ts';

const devPrivateKeyPath = fileURLToPath(new URL('../examples/keys/dev.key.pem', import.meta.url));
const devPublicKeyPath = fileURLToPath(new URL('../examples/keys/dev.pub.pem', import.meta.url));
const devPrivateKeyPem = readFileSync(devPrivateKeyPath, 'utf8');
const devPublicKeyPem = readFileSync(devPublicKeyPath, 'utf8');
const devKeyId = 'b38cca2f29653abe';
const dir = mkdtempSync(join(tmpdir(), 'lockstep-signing-'));

/** The manifest docs/abi.md shows, as a user would write it. */
const docsManifestText = `{
  "name": "counter",
  "version": "1.0.0",
  "abi": 2,
  "capabilities": { "publish": ["counts"], "subscribe": ["numbers"], "models": [] },
  "limits": { "fuelPerStep": 1000000, "memoryPages": 16 }
}`;
const docsManifest = parseManifest(JSON.parse(docsManifestText), 'docs');

/** A minimal agent of the docs manifest's ABI version (2), so the two agree as admission requires. */
function agentWat(overrides: Partial<AgentWatParts> = {}): string {
  return minimalAgentWat({ lockstep_abi_version: '(func (export "lockstep_abi_version") (result i32) i32.const 2)', ...overrides });
}

function manifestError(value: unknown): AdmissionError {
  try {
    parseManifest(value, "'test.manifest.json'");
  } catch (error) {
    expect(error).toBeInstanceOf(AdmissionError);
    return error as AdmissionError;
  }
  throw new Error('expected parseManifest to refuse');
}

function withField(path: string[], value: unknown): unknown {
  const copy = JSON.parse(docsManifestText) as Record<string, unknown>;
  let target = copy;
  for (const key of path.slice(0, -1)) target = target[key] as Record<string, unknown>;
  const last = path[path.length - 1] as string;
  if (value === undefined) delete target[last];
  else target[last] = value;
  return copy;
}

describe('manifest', () => {
  it('parses the manifest docs/abi.md shows', () => {
    expect(docsManifest).toEqual({
      name: 'counter',
      version: '1.0.0',
      abi: 2,
      capabilities: { publish: ['counts'], subscribe: ['numbers'], models: [] },
      limits: { fuelPerStep: 1_000_000, memoryPages: 16 },
    });
  });

  it('canonical JSON: keys sorted at every level, no whitespace, arrays in written order', () => {
    expect(canonicalManifestJson(docsManifest)).toBe(
      '{"abi":2,"capabilities":{"models":[],"publish":["counts"],"subscribe":["numbers"]},' +
        '"limits":{"fuelPerStep":1000000,"memoryPages":16},"name":"counter","version":"1.0.0"}',
    );
    const reordered = parseManifest(JSON.parse(`{"limits":{"memoryPages":16,"fuelPerStep":1000000},"version":"1.0.0","name":"counter",
      "capabilities":{"subscribe":["numbers"],"models":[],"publish":["counts"]},"abi":2}`), 'reordered');
    expect(canonicalManifestJson(reordered)).toBe(canonicalManifestJson(docsManifest));
  });

  it.each([
    [['name'], undefined, /field 'name' must be 1\.\.64 letters.*got nothing \(the field is missing\); write "name": "counter"/],
    [['name'], 'has spaces', /field 'name' must be/],
    [['version'], 7, /field 'version' must be .* got number 7; write "version": "1\.0\.0"/],
    [['abi'], '1', /field 'abi' must be the number 1 or 2, got "1"; write "abi": 2/],
    [['abi'], 1.5, /field 'abi' must be the number 1 or 2, got number 1\.5/],
    [['capabilities'], [], /field 'capabilities' must be an object, got an array/],
    [['capabilities', 'publish'], 'counts', /field 'capabilities\.publish' must be an array of names, got "counts"; write "publish": \["counts"\]/],
    [['capabilities', 'subscribe'], ['numbers', 3], /field 'capabilities\.subscribe\[1\]' must be a name/],
    [['capabilities', 'models'], undefined, /field 'capabilities\.models' must be an array/],
    [['capabilities', 'publish'], ['counts', 'counts'], /field 'capabilities\.publish' lists 'counts' twice/],
    [['limits', 'fuelPerStep'], 0, /field 'limits\.fuelPerStep' must be a positive integer, got number 0/],
    [['limits', 'fuelPerStep'], 1.5, /field 'limits\.fuelPerStep' must be a positive integer/],
    [['limits', 'memoryPages'], 65_537, /field 'limits\.memoryPages' must be an integer in 1\.\.65536 \(pages of 64 KiB\)/],
    [['limits', 'memoryPages'], '16', /field 'limits\.memoryPages' .* got "16"; write "memoryPages": 16/],
    [['permissions'], ['all'], /field 'permissions' is not part of the manifest \(ABI v1 and v2; it would not be covered by the signature\)/],
    [['limits', 'cpu'], 1, /field 'limits\.cpu' is not part of the manifest/],
  ] as Array<[string[], unknown, RegExp]>)('refuses %j = %j, naming the field and what to write', (path, value, message) => {
    const error = manifestError(withField(path, value));
    expect(error.code).toBe('admission_manifest');
    expect(error.message).toMatch(/^manifest 'test\.manifest\.json': /);
    expect(error.message).toMatch(message);
  });

  it('refuses a manifest that is not an object, and abi 3 with its own code', () => {
    expect(manifestError([]).message).toMatch(/the manifest must be a JSON object, got an array; write e\.g\. \{ "name"/);
    const abi = manifestError(withField(['abi'], 3));
    expect(abi.code).toBe('admission_abi');
    expect(abi.message).toMatch(/field 'abi' is 3, but this lockstep speaks only ABI v1 and v2/);
  });

  it('parses abi 1 and abi 2, keeping the version (the host lays out messages by it)', () => {
    expect(parseManifest(withField(['abi'], 1), 'v1').abi).toBe(1);
    expect(parseManifest(withField(['abi'], 2), 'v2').abi).toBe(2);
    expect(canonicalManifestJson(parseManifest(withField(['abi'], 2), 'v2'))).toMatch(/^\{"abi":2,/);
  });
});

describe('keys and signatures', () => {
  it('generateKeyPair: Ed25519 PEMs and keyId = first 16 hex of sha256(raw 32-byte public key)', () => {
    const pair = generateKeyPair();
    expect(pair.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(pair.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const spki = createPublicKey(pair.publicKeyPem).export({ type: 'spki', format: 'der' });
    // An Ed25519 SPKI is a fixed 12-byte header followed by the raw 32-byte key.
    const raw = spki.subarray(spki.length - 32);
    expect(pair.keyId).toBe(createHash('sha256').update(raw).digest('hex').slice(0, 16));
    expect(publicKeyId(pair.publicKeyPem)).toBe(pair.keyId);
    expect(generateKeyPair().keyId).not.toBe(pair.keyId);
  });

  it('the committed dev key pair matches its documented keyId', () => {
    expect(publicKeyId(devPublicKeyPem)).toBe(devKeyId);
    expect(signPlugin(new Uint8Array([1]), docsManifest, devPrivateKeyPem).keyId).toBe(devKeyId);
    expect(readFileSync(new URL('../examples/keys/README.md', import.meta.url), 'utf8')).toMatch(/never trust it in production/);
  });

  it('signs exactly "lockstep-plugin-v1\\n" || sha256(module) || sha256(canonical manifest JSON)', () => {
    const bytes = wat(agentWat());
    const signature = signPlugin(bytes, docsManifest, devPrivateKeyPem);
    expect(signature.algorithm).toBe('ed25519');
    const message = Buffer.concat([
      Buffer.from('lockstep-plugin-v1\n'),
      createHash('sha256').update(bytes).digest(),
      createHash('sha256').update(canonicalManifestJson(docsManifest)).digest(),
    ]);
    expect(message.length).toBe(19 + 32 + 32);
    expect(verify(null, message, createPublicKey(devPublicKeyPem), Buffer.from(signature.signature, 'base64'))).toBe(true);
    expect(verifyPlugin(bytes, docsManifest, signature, [devPublicKeyPem])).toEqual({ keyId: devKeyId });
  });

  it('verifyPlugin refuses unsigned, untrusted, tampered and malformed signatures', () => {
    const bytes = wat(agentWat());
    const signature = signPlugin(bytes, docsManifest, devPrivateKeyPem);
    const codeOf = (action: () => unknown): string => {
      try {
        action();
      } catch (error) {
        expect(error).toBeInstanceOf(AdmissionError);
        return (error as AdmissionError).code;
      }
      return 'admitted';
    };
    expect(codeOf(() => verifyPlugin(bytes, docsManifest, null, [devPublicKeyPem]))).toBe('admission_unsigned');
    expect(codeOf(() => verifyPlugin(bytes, docsManifest, signature, []))).toBe('admission_untrusted');
    expect(codeOf(() => verifyPlugin(bytes, docsManifest, signature, [generateKeyPair().publicKeyPem]))).toBe('admission_untrusted');
    const changed = Uint8Array.from(bytes);
    changed[changed.length - 1] = (changed[changed.length - 1] as number) ^ 1;
    expect(codeOf(() => verifyPlugin(changed, docsManifest, signature, [devPublicKeyPem]))).toBe('admission_signature');
    const renamed: PluginManifest = { ...docsManifest, name: 'kounter' };
    expect(codeOf(() => verifyPlugin(bytes, renamed, signature, [devPublicKeyPem]))).toBe('admission_signature');
    const flipped = Buffer.from(signature.signature, 'base64');
    flipped[0] = (flipped[0] as number) ^ 1;
    expect(codeOf(() => verifyPlugin(bytes, docsManifest, { ...signature, signature: flipped.toString('base64') }, [devPublicKeyPem]))).toBe(
      'admission_signature',
    );
    expect(codeOf(() => verifyPlugin(bytes, docsManifest, { ...signature, signature: 'short' }, [devPublicKeyPem]))).toBe('admission_signature');
    const rsa = { ...signature, algorithm: 'rsa' } as unknown as PluginSignature;
    expect(codeOf(() => verifyPlugin(bytes, docsManifest, rsa, [devPublicKeyPem]))).toBe('admission_signature');
  });

  it('a trusted key or signing key that is not Ed25519 is a configuration error', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const rsaPublicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const rsaPrivatePem = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const bytes = new Uint8Array([0, 1]);
    const signature = signPlugin(bytes, docsManifest, devPrivateKeyPem);
    expect(() => verifyPlugin(bytes, docsManifest, signature, [rsaPublicPem])).toThrow(ConfigError);
    expect(() => verifyPlugin(bytes, docsManifest, signature, ['not a pem'])).toThrow(/trusted key #1 is not a PEM public key/);
    expect(() => signPlugin(bytes, docsManifest, rsaPrivatePem)).toThrow(/plugins are signed with Ed25519/);
    expect(() => signPlugin(bytes, docsManifest, 'nonsense')).toThrow(ConfigError);
  });
});

describe('plugin files', () => {
  it('pluginPaths: <base>.manifest.json and <base>.sig beside <base>.wasm', () => {
    expect(pluginPaths('/agents/forager.wasm')).toEqual({
      wasm: '/agents/forager.wasm',
      manifest: '/agents/forager.manifest.json',
      signature: '/agents/forager.sig',
    });
    expect(pluginPaths('agents/forager')).toEqual({ wasm: 'agents/forager', manifest: 'agents/forager.manifest.json', signature: 'agents/forager.sig' });
  });

  it('loadPluginFiles reads the module, manifest and signature; no .sig means unsigned', () => {
    const folder = join(dir, 'load');
    mkdirSync(folder);
    const wasmPath = join(folder, 'counter.wasm');
    const bytes = wat(agentWat());
    writeFileSync(wasmPath, bytes);
    writeFileSync(join(folder, 'counter.manifest.json'), docsManifestText);
    const unsigned = loadPluginFiles(wasmPath);
    expect(unsigned).toEqual({ bytes, manifest: docsManifest, signature: null, name: 'counter.wasm' });
    const signature = signPlugin(bytes, docsManifest, devPrivateKeyPem);
    writeFileSync(join(folder, 'counter.sig'), JSON.stringify(signature));
    expect(loadPluginFiles(wasmPath).signature).toEqual(signature);
  });

  it('loadPluginFiles says clearly what is missing or malformed', () => {
    const folder = join(dir, 'broken');
    mkdirSync(folder);
    const wasmPath = join(folder, 'broken.wasm');
    const load = (): AdmissionError => {
      try {
        loadPluginFiles(wasmPath);
      } catch (error) {
        expect(error).toBeInstanceOf(AdmissionError);
        return error as AdmissionError;
      }
      throw new Error('expected loadPluginFiles to fail');
    };
    expect([load().code, load().message]).toEqual(['admission_file', `module '${wasmPath}' does not exist; check the path`]);
    writeFileSync(wasmPath, wat(agentWat()));
    expect(load().code).toBe('admission_file');
    expect(load().message).toMatch(/manifest '.*broken\.manifest\.json' for module 'broken\.wasm' does not exist; write one next to the module/);
    writeFileSync(join(folder, 'broken.manifest.json'), '{ "name": "broken", ');
    expect(load().code).toBe('admission_manifest');
    expect(load().message).toMatch(/broken\.manifest\.json' is not valid JSON \(.+\); fix the JSON/);
    writeFileSync(join(folder, 'broken.manifest.json'), docsManifestText);
    writeFileSync(join(folder, 'broken.sig'), '{"algorithm":"ed25519"}');
    expect(load().code).toBe('admission_signature');
    expect(load().message).toMatch(/malformed signature \(keyId must be 16 lowercase hex digits\); re-sign with 'lockstep sign'/);
  });
});

describe('CLI: keygen, sign, verify', () => {
  let printed: string[] = [];

  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** Runs one plugin command in-process, as main() would, and returns what it printed. */
  async function cli(...args: string[]): Promise<string> {
    printed = [];
    vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => {
      printed.push(parts.join(' '));
    });
    const program = new Command().exitOverride();
    addPluginCommands(program);
    await program.parseAsync(args, { from: 'user' });
    return printed.join('\n');
  }

  async function cliError(...args: string[]): Promise<LockstepError> {
    try {
      await cli(...args);
    } catch (error) {
      expect(error).toBeInstanceOf(LockstepError);
      return error as LockstepError;
    }
    throw new Error(`expected 'lockstep ${args.join(' ')}' to fail`);
  }

  it('keygen writes <prefix>.key.pem (0600) and <prefix>.pub.pem and prints the keyId; it never overwrites', async () => {
    const prefix = join(dir, 'alice');
    const output = await cli('keygen', '--out', prefix);
    const keyId = /keyId ([0-9a-f]{16})/.exec(output)?.[1];
    expect(keyId).toBeDefined();
    expect(publicKeyId(readFileSync(`${prefix}.pub.pem`, 'utf8'))).toBe(keyId);
    expect(statSync(`${prefix}.key.pem`).mode & 0o777).toBe(0o600);
    const again = await cliError('keygen', '--out', prefix);
    expect(again.message).toMatch(/alice\.key\.pem' already exists; choose another --out prefix/);
  });

  it('sign writes <base>.sig, copies the manifest beside the module, and verify admits it', async () => {
    const folder = join(dir, 'cli');
    mkdirSync(folder);
    const wasmPath = join(folder, 'counter.wasm');
    const bytes = wat(agentWat());
    writeFileSync(wasmPath, bytes);
    const elsewhere = join(dir, 'counter-manifest-elsewhere.json');
    writeFileSync(elsewhere, docsManifestText);

    const signed = await cli('sign', wasmPath, elsewhere, '--key', devPrivateKeyPath);
    expect(signed).toBe(`signed counter 1.0.0 with key ${devKeyId}: ${join(folder, 'counter.sig')}`);
    expect(readFileSync(join(folder, 'counter.manifest.json'), 'utf8')).toBe(docsManifestText);
    const signature = JSON.parse(readFileSync(join(folder, 'counter.sig'), 'utf8')) as PluginSignature;
    expect(verifyPlugin(bytes, docsManifest, signature, [devPublicKeyPem])).toEqual({ keyId: devKeyId });

    // Signing again with the manifest already in place must not try to copy it onto itself.
    await cli('sign', wasmPath, join(folder, 'counter.manifest.json'), '--key', devPrivateKeyPath);

    const verified = await cli('verify', wasmPath, '--trust', devPublicKeyPath);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    expect(verified).toBe(`OK counter.wasm: counter 1.0.0, key ${devKeyId}, sha256 ${sha256}`);

    // Several --trust flags; the right key need not come first.
    const other = join(dir, 'other');
    await cli('keygen', '--out', other);
    expect(await cli('verify', wasmPath, '--trust', `${other}.pub.pem`, '--trust', devPublicKeyPath)).toMatch(/^OK /);

    const untrusted = await cliError('verify', wasmPath, '--trust', `${other}.pub.pem`);
    expect(untrusted.code).toBe('admission_untrusted');
    expect((await cliError('verify', wasmPath)).code).toBe('admission_untrusted');
  });

  it('verify refuses an unsigned module unless --allow-unsigned, and a bad module either way', async () => {
    const folder = join(dir, 'unsigned');
    mkdirSync(folder);
    const wasmPath = join(folder, 'loose.wasm');
    writeFileSync(wasmPath, wat(agentWat()));
    writeFileSync(join(folder, 'loose.manifest.json'), docsManifestText);
    expect((await cliError('verify', wasmPath, '--trust', devPublicKeyPath)).code).toBe('admission_unsigned');
    expect(await cli('verify', wasmPath, '--allow-unsigned')).toMatch(/^OK loose\.wasm: counter 1\.0\.0, key none \(unsigned, admitted only because of --allow-unsigned\), sha256 [0-9a-f]{64}$/);

    const wasiPath = join(folder, 'wasi.wasm');
    writeFileSync(wasiPath, wat(agentWat({ imports: '(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))' })));
    writeFileSync(join(folder, 'wasi.manifest.json'), docsManifestText);
    const refused = await cliError('verify', wasiPath, '--allow-unsigned');
    expect(refused.message).toMatch(/^module 'wasi\.wasm' imports 'wasi_snapshot_preview1\.fd_write'; agents may import only from 'lockstep'/);
  });

  it('sign reports a missing key file, a bad manifest and a non-Ed25519 key clearly', async () => {
    const folder = join(dir, 'sign-errors');
    mkdirSync(folder);
    const wasmPath = join(folder, 'a.wasm');
    writeFileSync(wasmPath, wat(agentWat()));
    writeFileSync(join(folder, 'good.json'), docsManifestText);
    writeFileSync(join(folder, 'bad.json'), '{"name": "a"}');
    expect((await cliError('sign', wasmPath, join(folder, 'good.json'), '--key', join(folder, 'nope.pem'))).message).toMatch(/key '.*nope\.pem' does not exist/);
    expect((await cliError('sign', wasmPath, join(folder, 'bad.json'), '--key', devPrivateKeyPath)).code).toBe('admission_manifest');
    expect((await cliError('sign', wasmPath, join(folder, 'good.json'), '--key', devPublicKeyPath)).message).toMatch(/signing key is not a PEM private key/);
    expect(existsSync(join(folder, 'a.sig'))).toBe(false);
  });

  it('lockstep keygen / sign / verify run from the command line, failures exit 2 with "lockstep: ..."', async () => {
    const folder = join(dir, 'bin');
    mkdirSync(folder);
    const keygen = await lockstep('keygen', '--out', join(folder, 'me'));
    expect([keygen.code, keygen.stdout]).toEqual([0, expect.stringMatching(/keyId [0-9a-f]{16}/)]);
    const wasmPath = join(folder, 'agent.wasm');
    writeFileSync(wasmPath, wat(agentWat()));
    writeFileSync(join(folder, 'manifest.json'), docsManifestText);
    expect((await lockstep('sign', wasmPath, join(folder, 'manifest.json'), '--key', join(folder, 'me.key.pem'))).code).toBe(0);
    const ok = await lockstep('verify', wasmPath, '--trust', join(folder, 'me.pub.pem'));
    expect([ok.code, ok.stdout]).toEqual([0, expect.stringMatching(/^OK agent\.wasm: counter 1\.0\.0, key [0-9a-f]{16}, sha256 [0-9a-f]{64}\n$/)]);
    const refused = await lockstep('verify', wasmPath, '--trust', devPublicKeyPath);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^lockstep: module 'agent\.wasm' is signed by key [0-9a-f]{16}, which is not trusted here/);
  });
});

describe('plugin files that are not files (security review)', () => {
  it('refuses a FIFO in place of a manifest instead of hanging', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, copyFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { fileURLToPath } = await import('node:url');
    const { loadPluginFiles } = await import('../src/wasm/signing.ts');
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-fifo-'));
    copyFileSync(fileURLToPath(new URL('../actors/agents/build/counter.wasm', import.meta.url)), join(dir, 'counter.wasm'));
    execFileSync('mkfifo', [join(dir, 'counter.manifest.json')]);
    expect(() => loadPluginFiles(join(dir, 'counter.wasm'))).toThrow(/is not a regular file/);
  });
});
