/**
 * Builds the sample WASM agents: every `actors/agents/<name>.manifest.json` with a
 * `<name>.ts` next to it is compiled with the pinned AssemblyScript compiler into
 * `actors/agents/build/<name>.wasm`, checked by lockstep's own admission (unsigned), and
 * written with its manifest (copied byte for byte) and a detached signature by the dev key
 * (`<name>.sig`, JSON of signPlugin's result).
 *
 *   npm run build:agents            build, check, sign, write
 *   npm run build:agents -- --check build in memory and fail if the committed files differ
 *
 * The outputs are committed so a fresh clone runs without building. They are
 * byte-reproducible: asc (pinned exact) is a pure function of the sources and flags,
 * Ed25519 signatures are deterministic, and nothing else goes in (no paths, no times).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main as ascMain, version as ascVersion } from 'assemblyscript/asc';
import { admissionPolicyDefaults, admitPlugin } from '../../src/wasm/admission.ts';
import { parseManifest, type PluginManifest } from '../../src/wasm/manifest.ts';
import { signPlugin, type PluginSignature } from '../../src/wasm/signing.ts';

const agentsDirectory = dirname(fileURLToPath(import.meta.url));
const repositoryRoot = join(agentsDirectory, '..', '..');
const buildDirectory = join(agentsDirectory, 'build');
const devKeyPath = join(repositoryRoot, 'examples', 'keys', 'dev.key.pem');

/** Fuel counts and the committed bytes depend on the exact compiler: refuse any other. */
const ascVersionPinned = '0.28.20';

/**
 * asc flags, besides the entry file, output and `--maximumMemory <limits.memoryPages>`:
 * - `-O3`: optimise for speed (also drops the name section: smaller, no paths inside).
 * - `--runtime stub`: a bump allocator and no GC; the SDK never allocates, so nothing of it
 *   is linked (an allocation would add a start function, which admission refuses).
 * - `--use abort=`: no `env.abort` import; an AssemblyScript `abort` becomes `unreachable`.
 * - `--noColors`: diagnostics go to our error message, not a terminal.
 * Memory is exported as `memory` by default (docs/abi.md requires it), and the declared
 * maximum is the manifest's memoryPages, so the two cannot disagree.
 */
const ascFlags = ['-O3', '--runtime', 'stub', '--use', 'abort=', '--noColors'] as const;

interface BuiltAgent {
  name: string;
  wasm: Uint8Array;
  manifestText: string;
  signatureText: string;
}

/** Every agent with a manifest and a source, sorted by name so output order is stable. */
function agentNames(): string[] {
  const suffix = '.manifest.json';
  return readdirSync(agentsDirectory)
    .filter((file) => file.endsWith(suffix))
    .map((file) => file.slice(0, -suffix.length))
    .filter((name) => existsSync(join(agentsDirectory, `${name}.ts`)))
    .sort();
}

/**
 * Takes an agent's name and manifest. Returns the compiled module bytes. Throws when asc
 * reports an error (with its diagnostics) or writes no module.
 */
async function compile(name: string, manifest: PluginManifest): Promise<Uint8Array> {
  let wasm: Uint8Array | null = null;
  const diagnostics: string[] = [];
  const outFile = `${name}.wasm`;
  const result = await ascMain(
    [`${name}.ts`, '--baseDir', agentsDirectory, '--outFile', outFile, '--maximumMemory', String(manifest.limits.memoryPages), ...ascFlags],
    {
      // Keep the module in memory: --check compares it without touching the tree.
      writeFile: (file, contents) => {
        if (file !== outFile || typeof contents === 'string') throw new Error(`asc wrote an unexpected file '${file}'`);
        wasm = new Uint8Array(contents);
      },
      stdout: captureStream(diagnostics),
      stderr: captureStream(diagnostics),
    },
  );
  if (result.error !== null) {
    throw new Error(`asc failed to compile actors/agents/${name}.ts: ${result.error.message}\n${diagnostics.join('')}`);
  }
  if (wasm === null) throw new Error(`asc compiled actors/agents/${name}.ts but wrote no module`);
  return wasm;
}

/** An asc output stream that collects what is written as text. */
function captureStream(into: string[]): { write(chunk: Uint8Array | string): void } & Record<string, unknown> {
  return {
    write(chunk: Uint8Array | string): void {
      into.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    },
  };
}

/**
 * Takes an agent's name and the dev private key. Returns its module, manifest text and
 * signature text. Throws when the manifest is invalid or names another agent, when asc
 * fails, or when admission would refuse the module (its AdmissionError says why).
 */
async function buildAgent(name: string, privateKeyPem: string): Promise<BuiltAgent> {
  const manifestPath = join(agentsDirectory, `${name}.manifest.json`);
  const manifestText = readFileSync(manifestPath, 'utf8');
  const manifest = parseManifest(JSON.parse(manifestText) as unknown, `'${relative(repositoryRoot, manifestPath)}'`);
  if (manifest.name !== name) {
    throw new Error(`${relative(repositoryRoot, manifestPath)} names agent '${manifest.name}'; its file name says '${name}': make them agree`);
  }
  const wasm = await compile(name, manifest);
  // The host's own checks, so the build never ships a module the runtime would refuse.
  admitPlugin({ name: `${name}.wasm`, bytes: wasm, manifest, signature: null }, { ...admissionPolicyDefaults, allowUnsigned: true });
  const signature: PluginSignature = signPlugin(wasm, manifest, privateKeyPem);
  return { name, wasm, manifestText, signatureText: `${JSON.stringify(signature, null, 2)}\n` };
}

function outputFiles(agent: BuiltAgent): Array<{ path: string; bytes: Uint8Array }> {
  return [
    { path: join(buildDirectory, `${agent.name}.wasm`), bytes: agent.wasm },
    { path: join(buildDirectory, `${agent.name}.manifest.json`), bytes: Buffer.from(agent.manifestText, 'utf8') },
    { path: join(buildDirectory, `${agent.name}.sig`), bytes: Buffer.from(agent.signatureText, 'utf8') },
  ];
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function main(argv: readonly string[]): Promise<void> {
  const checkOnly = argv.includes('--check');
  const unknown = argv.filter((argument) => argument !== '--check');
  if (unknown.length > 0) throw new Error(`unknown argument(s) ${unknown.join(' ')}; usage: build.ts [--check]`);
  if (ascVersion !== ascVersionPinned) {
    throw new Error(`assemblyscript ${ascVersion} is installed, the agents are built with ${ascVersionPinned} exactly; run 'npm ci'`);
  }
  if (!existsSync(devKeyPath)) {
    throw new Error(`the dev signing key ${relative(repositoryRoot, devKeyPath)} is missing; restore it from git (git checkout -- examples/keys)`);
  }
  const privateKeyPem = readFileSync(devKeyPath, 'utf8');

  const stale: string[] = [];
  for (const name of agentNames()) {
    const agent = await buildAgent(name, privateKeyPem);
    for (const file of outputFiles(agent)) {
      const current = existsSync(file.path) ? readFileSync(file.path) : null;
      const same = current !== null && Buffer.compare(current, file.bytes) === 0;
      if (checkOnly) {
        if (!same) stale.push(relative(repositoryRoot, file.path));
      } else if (!same) {
        mkdirSync(buildDirectory, { recursive: true });
        writeFileSync(file.path, file.bytes);
      }
    }
    console.log(`${name.padEnd(10)} ${String(agent.wasm.byteLength).padStart(6)} B  sha256 ${sha256Hex(agent.wasm).slice(0, 16)}`);
  }
  if (stale.length > 0) {
    throw new Error(`built agents differ from the committed files: ${stale.join(', ')}; run 'npm run build:agents' and commit the result`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
