/**
 * The assets this package ships beside its code, as absolute paths: the sample WASM agents
 * (signed with the development key), the policy network, that key's public half, and the
 * AssemblyScript agent SDK. They are found from this module's own location, so the same
 * calls work in the repo (src/) and in an installed package (dist/src/); package.json's
 * `exports` names them too (`lockstep/agents/counter.wasm`, `lockstep/models/policy.onnx`).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './errors.ts';

/** Folders between this file and the package root: src/ in the repo, dist/src/ installed. */
const packageRootDepthMax = 4;

let root: string | null = null;

/**
 * The folder of lockstep's package.json (the repo, or node_modules/lockstep). Throws an
 * assertion Error if the package was taken apart so that none is found above this module.
 */
export function packageRoot(): string {
  if (root !== null) return root;
  let folder = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth <= packageRootDepthMax; depth++) {
    const manifest = join(folder, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'lockstep') {
      root = folder;
      return folder;
    }
    folder = dirname(folder);
  }
  throw new Error(`assertion: no lockstep package.json above ${fileURLToPath(import.meta.url)}`);
}

/** Sample names in `folder` with `extension`, sorted (for "known: ..." in errors). */
function namesIn(folder: string, extension: string): string[] {
  if (!existsSync(folder)) return [];
  return readdirSync(folder)
    .filter((file) => file.endsWith(extension))
    .map((file) => file.slice(0, -extension.length))
    .sort();
}

function sample(kind: string, folder: string, extension: string, name: string): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_-]+$/.test(name)) {
    throw new ConfigError(`sample ${kind} names are letters, digits, '_' and '-', got ${JSON.stringify(name)}`);
  }
  const path = join(folder, `${name}${extension}`);
  if (!existsSync(path)) {
    throw new ConfigError(`lockstep ships no sample ${kind} '${name}'; the samples are: ${namesIn(folder, extension).join(', ')}`);
  }
  return path;
}

/**
 * Takes a sample agent's name (`counter`, `ping`, `pong`, `hasher`, `sieve`, `pilot`...).
 * Returns the absolute path of its `.wasm` (its `.manifest.json` and `.sig` lie beside it),
 * for `loadWasmAgent`. The samples are signed with the development key (`sampleKeyPem()`).
 * Throws ConfigError for a name lockstep does not ship, listing those it does.
 */
export function sampleAgentPath(name: string): string {
  return sample('agent', join(packageRoot(), 'actors', 'agents', 'build'), '.wasm', name);
}

/**
 * Takes a sample model's name (`policy`: 16 floats in, 4 action probabilities out). Returns
 * the absolute path of its `.onnx` file, for an `inference` config. Throws ConfigError for a
 * name lockstep does not ship.
 */
export function sampleModelPath(name: string): string {
  return sample('model', join(packageRoot(), 'actors', 'models', 'build'), '.onnx', name);
}

/**
 * The absolute path of the development public key that signed the sample agents, for
 * `lockstep run --trust`. Its private half is public too (it is in the repo): trust it for
 * the samples and for development only, never in production.
 */
export function sampleKeyPath(): string {
  return join(packageRoot(), 'examples', 'keys', 'dev.pub.pem');
}

/** The development public key (PEM) that signed the sample agents; see `sampleKeyPath`. */
export function sampleKeyPem(): string {
  return readFileSync(sampleKeyPath(), 'utf8');
}

/**
 * The absolute path of the AssemblyScript agent SDK (`lockstep.ts`), to import from an
 * agent's source or to copy beside it; asc (the `assemblyscript` package) builds the agent.
 */
export function agentSdkPath(): string {
  return join(packageRoot(), 'actors', 'agents', 'sdk', 'lockstep.ts');
}
