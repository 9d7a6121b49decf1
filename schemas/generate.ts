/**
 * Regenerates `schemas/generated/` from the FlatBuffers schemas (`npm run schemas`).
 *
 * flatc writes TypeScript whose relative imports have no extension ('../../lockstep/envelope'),
 * which this repo's `module: NodeNext` rejects (TS2835). We rewrite them to carry `.ts`, the
 * same convention as the rest of the repo (`rewriteRelativeImportExtensions` turns them into
 * `.js` on build). The output is a pure function of the schemas and the flatc version, so the
 * committed files are byte-reproducible: the folder is deleted and rebuilt on every run.
 *
 * As a script: takes no arguments; exits 0 on success, and exits 1 saying what to do when flatc
 * is missing or fails.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const schemasDir = dirname(fileURLToPath(import.meta.url));
export const defaultOutputDir = join(schemasDir, 'generated');
const schemaFiles = ['envelope.fbs', 'log.fbs', 'tensor.fbs'];

/** The flatc the committed code was generated with (Debian 12 `flatbuffers-compiler`). */
export const flatcVersionPinned = '2.0.8';

/** flatc is not installed or failed; the message says what to do. */
export class FlatcError extends Error {}

/** Runs flatc with `args`; returns its stdout. Throws FlatcError, with install help when flatc is absent. */
function runFlatc(args: string[]): string {
  const result = spawnSync('flatc', args, { cwd: schemasDir, encoding: 'utf8' });
  if (result.error !== undefined) {
    if ((result.error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new FlatcError(
        'flatc (the FlatBuffers compiler) is not installed or not on PATH.\n' +
          `Install it with:  apt-get install flatbuffers-compiler   (Debian 12 ships flatc ${flatcVersionPinned})\n` +
          'then run `npm run schemas` again.',
      );
    }
    throw new FlatcError(`could not run flatc: ${result.error.message}`);
  }
  if (result.status !== 0) {
    throw new FlatcError(`flatc ${args.join(' ')} failed (exit ${result.status}):\n${result.stdout}${result.stderr}`);
  }
  return result.stdout;
}

/** The version line flatc prints (`flatc version 2.0.8`). Throws FlatcError when flatc is absent. */
export function flatcVersion(): string {
  return runFlatc(['--version']).trim();
}

/** Lists every file under `dir`, sorted so the rewrite order (and any log) is stable. */
function listFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...listFiles(path));
    else files.push(path);
  }
  return files;
}

/**
 * Adds `.ts` to extensionless relative module specifiers in `import ... from` and
 * `export ... from` clauses. Takes the file text, returns the rewritten text.
 */
export function fixRelativeImports(source: string): string {
  return source.replace(/(\bfrom\s+)(['"])(\.{1,2}\/[^'"]+?)\2/g, (_match, from: string, quote: string, specifier: string) => {
    const hasExtension = /\.[cm]?[jt]s$/.test(specifier);
    return `${from}${quote}${hasExtension ? specifier : `${specifier}.ts`}${quote}`;
  });
}

/**
 * Generates the TypeScript for every schema into `outputDir` (deleted and rebuilt) and fixes
 * its imports. Takes the folder; returns the number of files written. Throws FlatcError.
 */
export function generateSchemas(outputDir: string = defaultOutputDir): number {
  rmSync(outputDir, { recursive: true, force: true });
  mkdirSync(outputDir, { recursive: true });
  runFlatc(['--ts', '-o', outputDir, ...schemaFiles]);
  const files = listFiles(outputDir);
  for (const file of files) {
    if (!file.endsWith('.ts')) continue;
    const before = readFileSync(file, 'utf8');
    const after = fixRelativeImports(before);
    if (after !== before) writeFileSync(file, after);
  }
  return files.length;
}

function main(): void {
  try {
    const versionLine = flatcVersion();
    if (!versionLine.endsWith(flatcVersionPinned)) {
      console.warn(
        `warning: ${versionLine}; the committed code was generated with flatc ${flatcVersionPinned}, ` +
          'so the output may differ from it. Review the diff before committing.',
      );
    }
    const count = generateSchemas();
    console.log(`generated ${count} files in schemas/generated`);
  } catch (error) {
    if (!(error instanceof FlatcError)) throw error;
    console.error(error.message);
    process.exit(1);
  }
}

// Only when run as a script: the test of reproducibility imports generateSchemas.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main();
}
