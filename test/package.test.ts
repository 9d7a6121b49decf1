/**
 * lockstep as a dependency, tried as a user would: `npm pack` this repo, install the tarball
 * into a new app outside it (from the npm registry only), then in that app run a plain
 * JavaScript program with `node`, type-check a strict TypeScript file with `tsc`, and run the
 * CLI on the app's own TypeScript system module. The app's files are test/fixtures/consumer/.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockstepVersion } from 'lockstep';

const execFileAsync = promisify(execFile);
const repo = fileURLToPath(new URL('..', import.meta.url));
const fixtures = fileURLToPath(new URL('./fixtures/consumer', import.meta.url));
const repoPackage = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };

/** Packing builds dist/ (prepack) and installing fetches from the registry: minutes, not seconds. */
const setupMs = 400_000;
const stepMs = 180_000;

interface PackedFile {
  path: string;
  size: number;
}

interface Packed {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: PackedFile[];
}

/**
 * The environment of a command a user types in their own app. An `npm test` run hands its
 * children npm_* variables (npm_config_local_prefix is this repo): npm would read them as
 * its config and install into the wrong project. INIT_CWD likewise.
 */
function userEnvironment(): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.toLowerCase().startsWith('npm_') || key === 'INIT_CWD' || key === 'NODE_OPTIONS') continue;
    environment[key] = value;
  }
  return environment;
}

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command in `cwd`; never throws on a non-zero exit, returns it. */
async function run(command: string, args: string[], cwd: string): Promise<Ran> {
  try {
    const { stdout, stderr } = await execFileAsync(command, args, { cwd, env: userEnvironment(), encoding: 'utf8', maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string; message: string };
    return { code: typeof failed.code === 'number' ? failed.code : 1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? failed.message };
  }
}

/** `run` that must succeed; a failure shows what the command printed. */
async function ok(command: string, args: string[], cwd: string): Promise<Ran> {
  const ran = await run(command, args, cwd);
  if (ran.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${ran.code}\n${ran.stdout}\n${ran.stderr}`);
  return ran;
}

describe('lockstep packed and installed into an app outside the repo', () => {
  let work = '';
  let app = '';
  let packed: Packed;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'lockstep-consumer-'));
    app = join(work, 'app');
    // `npm pack` runs prepack, which compiles dist/ from the sources first.
    const pack = await ok('npm', ['pack', '--json', '--pack-destination', work], repo);
    packed = (JSON.parse(pack.stdout) as Packed[])[0]!;
    cpSync(fixtures, app, { recursive: true });
    // The app's package.json says what the README's "Use it in your project" says: deny
    // onnxruntime-node's CUDA download (npm 11's allowScripts), allow esbuild's check.
    writeFileSync(
      join(app, 'package.json'),
      `${JSON.stringify({ name: 'consumer-app', private: true, type: 'module', allowScripts: { 'onnxruntime-node': false, esbuild: true } }, null, 2)}\n`,
    );
    writeFileSync(
      join(app, 'tsconfig.json'),
      `${JSON.stringify(
        {
          compilerOptions: {
            target: 'ES2022',
            lib: ['ES2023'],
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict: true,
            exactOptionalPropertyTypes: true,
            noUncheckedIndexedAccess: true,
            skipLibCheck: false,
            noEmit: true,
            types: ['node'],
          },
          files: ['typed.ts', 'system.ts'],
        },
        null,
        2,
      )}\n`,
    );
    await ok(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        join(work, packed.filename),
        `typescript@${repoPackage.devDependencies.typescript}`,
        `@types/node@${repoPackage.devDependencies['@types/node']}`,
      ],
      app,
    );
  }, setupMs);

  afterAll(() => {
    if (work !== '') rmSync(work, { recursive: true, force: true });
  });

  it('ships dist/, schemas, the ABI doc, the agent SDK, sample agents and model, and nothing else', () => {
    const paths = packed.files.map((file) => file.path);
    console.log(
      `lockstep tarball: ${packed.filename}, ${(packed.size / 1024).toFixed(0)} KiB packed, ` +
        `${(packed.unpackedSize / 1024).toFixed(0)} KiB unpacked, ${packed.entryCount} files`,
    );
    for (const needed of [
      'package.json',
      'README.md',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/testing/index.js',
      'dist/src/cli/bin.js',
      'dist/src/wasm/host-worker.js',
      'dist/src/inference/worker.js',
      'dist/schemas/generated/log_generated.js',
      'schemas/envelope.fbs',
      'schemas/log.fbs',
      'schemas/tensor.fbs',
      'docs/abi.md',
      'actors/agents/sdk/lockstep.ts',
      'actors/agents/build/counter.wasm',
      'actors/agents/build/counter.manifest.json',
      'actors/agents/build/counter.sig',
      'actors/models/build/policy.onnx',
      'examples/keys/dev.pub.pem',
    ]) {
      expect(paths, needed).toContain(needed);
    }
    const unwanted = paths.filter(
      (path) =>
        /^(test|bench|property-tests|\.ci|src|examples\/(demo|service|testing))\//.test(path) ||
        /\.key\.pem$/.test(path) ||
        /\.(map|tsbuildinfo)$/.test(path) ||
        /^(tsconfig.*|vitest\.config\.ts|\.npmrc|\.gitignore|package-lock\.json)$/.test(path) ||
        /^actors\/(agents\/[^/]+\.ts|agents\/build\.ts|models\/policy\.ts)$/.test(path) ||
        /^dist\/(test|bench|examples|property-tests)\//.test(path),
    );
    expect(unwanted).toEqual([]);
    // Build-only and bench-only packages stay out of a user's install.
    expect(existsSync(join(app, 'node_modules', 'assemblyscript'))).toBe(false);
    expect(existsSync(join(app, 'node_modules', 'piscina'))).toBe(false);
    expect(existsSync(join(app, 'node_modules', 'onnx-proto'))).toBe(false);
  });

  it('runs a plain-JavaScript app with node: a supervision tree, a WASM agent on 2 workers, the inference actor', async () => {
    const ran = await ok(process.execPath, ['main.mjs'], app);
    const result = JSON.parse(ran.stdout.trim().split('\n').at(-1)!) as {
      tally: { last: number; seen: number };
      asker: { answers: number; good: number };
      rootRestarts: number;
      flaky: string;
      flakyCrash: number | null;
      counter: string;
      inferenceRuns: number;
      digest: string;
      replayed: boolean;
      exported: Record<string, boolean | string>;
    };
    // The feeder publishes from tick 2 (its init runs in tick 1); the counter sees each number
    // a tick later and publishes its count; tally gets that a tick after that.
    expect(result.tally.last).toBeGreaterThanOrEqual(15);
    expect(result.tally.seen).toBe(result.tally.last);
    expect(result.counter).toBe('running');
    // Asked every tick from tick 2, answered at the next: 18 answers in 20 ticks, all good.
    expect(result.asker.answers).toBeGreaterThanOrEqual(17);
    expect(result.asker.good).toBe(result.asker.answers);
    expect(result.inferenceRuns).toBeGreaterThanOrEqual(result.asker.answers);
    expect(result.flakyCrash).toBe(5);
    expect(result.flaky).toBe('running');
    expect(result.rootRestarts).toBe(1);
    expect(result.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(result.replayed).toBe(true);
    expect(result.exported).toEqual({ agent: true, model: true, key: true, sdk: true, version: lockstepVersion });
    expect(ran.stderr).toBe('');
  }, stepMs);

  it('type-checks strict NodeNext TypeScript against the public types (skipLibCheck off)', async () => {
    const ran = await run(process.execPath, [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], app);
    expect(ran.stdout + ran.stderr).toBe('');
    expect(ran.code).toBe(0);
  }, stepMs);

  it("runs, replays and inspects the app's own TypeScript module with the installed CLI", async () => {
    const key = join(app, 'node_modules', 'lockstep', 'examples', 'keys', 'dev.pub.pem');
    const untrusted = await run('npx', ['lockstep', 'run', 'system.ts', '--log', 'untrusted.log', '--quiet'], app);
    expect(untrusted.code).toBe(2);
    expect(untrusted.stderr).toMatch(/module 'counter.wasm' is signed by key b38cca2f29653abe, which is not trusted here/);

    const ran = await ok('npx', ['lockstep', 'run', 'system.ts', '--log', 'app.log', '--seed', '5', '--trust', key, '--quiet'], app);
    expect(ran.stdout).toMatch(/^ran consumer-ts: 25 ticks, \d+ messages delivered/m);
    const digest = /final digest ([0-9a-f]{64})/.exec(ran.stdout)?.[1];
    expect(digest).toBeDefined();

    const replayed = await ok('npx', ['lockstep', 'replay', 'app.log', 'system.ts', '--trust', key, '--workers', '1', '--quiet'], app);
    expect(replayed.stdout).toContain(`replay verified: 25 ticks, bit for bit, final digest ${digest}`);

    const inspected = await ok('npx', ['lockstep', 'inspect', 'app.log'], app);
    expect(inspected.stdout).toContain("system 'consumer-ts', seed 5, level digest");
    expect(inspected.stdout).toContain('closed (shutdown after 25 ticks)');
    // The supervisor and its three children.
    expect(inspected.stdout).toMatch(/^ {2}actors 4, /m);
    expect(inspected.stdout).toContain("integrity: every record's CRC and hash chain verified; no torn tail");
  }, stepMs);
});
