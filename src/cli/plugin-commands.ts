/**
 * `lockstep keygen | sign | verify`: make a plugin signing key, sign a WASM agent with its
 * manifest, and run full admission on one as the runtime would. Results go to stdout;
 * failures are thrown as LockstepError for main() to print and turn into exit code 2.
 */
import { copyFileSync, existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { AdmissionError, CliError } from '../errors.ts';
import { admissionPolicyDefaults, admitPlugin } from '../wasm/admission.ts';
import { parseManifest } from '../wasm/manifest.ts';
import { generateKeyPair, loadPluginFiles, pluginPaths, signPlugin } from '../wasm/signing.ts';
import { keyFileBytesMax, manifestFileBytesMax } from '../limits.ts';


/**
 * Takes a commander program. Adds the `keygen`, `sign` and `verify` commands to it. Returns
 * nothing; throws nothing (the commands' actions throw LockstepError when they run).
 */
export function addPluginCommands(program: Command): void {
  program
    .command('keygen')
    .description('make an Ed25519 key pair for signing WASM agents')
    .option('--out <prefix>', 'write <prefix>.key.pem (private, mode 0600) and <prefix>.pub.pem', 'lockstep-plugin')
    .action((options: { out: string }) => {
      const privatePath = `${options.out}.key.pem`;
      const publicPath = `${options.out}.pub.pem`;
      for (const path of [privatePath, publicPath]) {
        // Overwriting a key silently would orphan every module signed with it.
        if (existsSync(path)) throw new CliError('file_exists', `'${path}' already exists; choose another --out prefix or move the old key away first`);
      }
      const pair = generateKeyPair();
      writeFileSync(privatePath, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
      writeFileSync(publicPath, pair.publicKeyPem, { mode: 0o644, flag: 'wx' });
      console.log(`keyId ${pair.keyId}`);
      console.log(`private key ${privatePath} (keep it secret), public key ${publicPath} (give it to runtimes that should trust you)`);
    });

  program
    .command('sign')
    .description('sign a WASM agent and its manifest (writes <base>.sig next to the module)')
    .argument('<module>', 'the agent, <base>.wasm')
    .argument('<manifest>', 'its manifest JSON; copied to <base>.manifest.json when it lives elsewhere')
    .requiredOption('--key <pem>', 'the Ed25519 private key (from lockstep keygen)')
    .action((modulePath: string, manifestPath: string, options: { key: string }) => {
      const paths = pluginPaths(modulePath);
      const bytes = readFile(modulePath, admissionPolicyDefaults.moduleBytesMax, 'module');
      const manifestText = new TextDecoder().decode(readFile(manifestPath, manifestFileBytesMax, 'manifest'));
      let manifestJson: unknown;
      try {
        manifestJson = JSON.parse(manifestText) as unknown;
      } catch (error) {
        throw new AdmissionError('admission_manifest', `manifest '${manifestPath}' is not valid JSON (${(error as Error).message}); fix it (docs/abi.md shows a manifest)`);
      }
      const manifest = parseManifest(manifestJson, `'${manifestPath}'`);
      const privateKeyPem = new TextDecoder().decode(readFile(options.key, keyFileBytesMax, 'key'));
      const signature = signPlugin(bytes, manifest, privateKeyPem);
      // The runtime looks for the manifest beside the module; the signature covers its
      // canonical form, so copying the file as written keeps it verifiable.
      if (!sameFile(manifestPath, paths.manifest)) copyFileSync(manifestPath, paths.manifest);
      writeFileSync(paths.signature, `${JSON.stringify(signature, null, 2)}\n`);
      console.log(`signed ${manifest.name} ${manifest.version} with key ${signature.keyId}: ${paths.signature}`);
    });

  program
    .command('verify')
    .description('run full admission on a WASM agent (<base>.wasm with <base>.manifest.json and <base>.sig)')
    .argument('<module>', 'the agent, <base>.wasm')
    .option('--trust <pub.pem>', 'a trusted Ed25519 public key; repeat for several', collect)
    .option('--allow-unsigned', 'development only: skip the signature checks')
    .action((modulePath: string, options: { trust?: string[]; allowUnsigned?: boolean }) => {
      const trustedKeysPem = (options.trust ?? []).map((path) => new TextDecoder().decode(readFile(path, keyFileBytesMax, 'trusted key')));
      const files = loadPluginFiles(modulePath);
      const admitted = admitPlugin(files, { ...admissionPolicyDefaults, trustedKeysPem, allowUnsigned: options.allowUnsigned === true });
      const key = admitted.keyId ?? 'none (unsigned, admitted only because of --allow-unsigned)';
      console.log(`OK ${admitted.name}: ${admitted.manifest.name} ${admitted.manifest.version}, key ${key}, sha256 ${admitted.sha256}`);
    });
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function readFile(path: string, bytesMax: number, what: string): Uint8Array {
  if (!existsSync(path)) throw new CliError('file_not_found', `${what} '${path}' does not exist (looked at ${resolve(path)})`);
  const bytes = readFileSync(path);
  if (bytes.byteLength > bytesMax) throw new CliError('file_too_large', `${what} '${path}' is ${bytes.byteLength} bytes, more than ${bytesMax}; check the path`);
  // A fresh Uint8Array, not a pooled Buffer view (wabt misreads those).
  return new Uint8Array(bytes);
}

function sameFile(a: string, b: string): boolean {
  return existsSync(b) && realpathSync(a) === realpathSync(b);
}
