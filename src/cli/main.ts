/**
 * `lockstep run | replay | inspect`: the command line over the runtime. Progress goes to
 * stderr (it reads the wall clock, for people only); results go to stdout.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { CliError, LockstepError } from '../errors.ts';
import { loadFaultPlan } from '../faults.ts';
import { readLog } from '../log/reader.ts';
import { createRuntime } from '../runtime.ts';
import { replay } from '../replay.ts';
import { isSystemDefinition, type SystemDefinition } from '../system.ts';
import { lockstepVersion } from '../version.ts';
import { inspectLog } from './inspect.ts';
import { addPluginCommands } from './plugin-commands.ts';

const typeScriptFile = /\.[cm]?tsx?$/;
let typeScriptLoaderRegistered = false;

/**
 * Registers tsx's loaders (ESM and CommonJS) once, so a TypeScript system module and the
 * TypeScript it imports can load. Not when the CLI itself runs from TypeScript source (a
 * loader is active already) and not for a JavaScript module. tsx's scoped `tsImport` is
 * not used: it loads the module's imports under its own URLs, so 'lockstep' would be
 * loaded a second time.
 */
async function registerTypeScriptLoader(modulePath: string): Promise<void> {
  if (typeScriptLoaderRegistered || !typeScriptFile.test(modulePath) || import.meta.url.endsWith('.ts')) return;
  typeScriptLoaderRegistered = true;
  const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
  esm.register();
  cjs.register();
}

/** Loads a system module: its default export (or an export named `system`). */
export async function loadSystem(modulePath: string): Promise<SystemDefinition> {
  const absolute = resolve(modulePath);
  if (!existsSync(absolute)) {
    throw new CliError('module_not_found', `system module '${modulePath}' does not exist (looked at ${absolute})`);
  }
  let loaded: Record<string, unknown>;
  try {
    await registerTypeScriptLoader(absolute);
    loaded = (await import(pathToFileURL(absolute).href)) as Record<string, unknown>;
  } catch (error) {
    throw new CliError('module_load', `could not load system module '${modulePath}': ${(error as Error).message}`, { cause: error });
  }
  const candidate = loaded.default ?? loaded.system;
  if (!isSystemDefinition(candidate)) {
    throw new CliError(
      'not_a_system',
      `module '${modulePath}' exports no system: export default defineSystem({ name, setup }) (or export const system = ...)`,
    );
  }
  return candidate;
}

function integer(name: string, min: number, max: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max}, got '${value}'`);
    }
    return parsed;
  };
}

interface RunFlags {
  workers: number;
  trust: string[];
  allowUnsigned?: boolean;
  quiet?: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Runtime options for WASM agents from the flags; reads the trusted key files. */
function wasmOptions(flags: RunFlags): { workers: number; trustedKeys: string[]; allowUnsigned: boolean } {
  const trustedKeys = flags.trust.map((path) => {
    if (!existsSync(path)) throw new CliError('key_not_found', `--trust ${path}: no such file; pass a public key in PEM (lockstep keygen writes one)`);
    return readFileSync(path, 'utf8');
  });
  return { workers: flags.workers, trustedKeys, allowUnsigned: flags.allowUnsigned === true };
}

function progressPrinter(label: string, total: number) {
  const started = performance.now();
  let last = 0;
  return (tick: number) => {
    const now = performance.now();
    if (now - last < 500 && tick !== total) return;
    last = now;
    const rate = Math.round(tick / ((now - started) / 1000));
    process.stderr.write(`\r${label} tick ${tick}/${total} (${rate} ticks/s)`);
    if (tick === total) process.stderr.write('\n');
  };
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('lockstep')
    .description('Deterministic actor runtime: run a system, replay its log, inspect a log')
    .version(lockstepVersion)
    .exitOverride()
    .showHelpAfterError('(lockstep <command> --help shows the usage)')
    .configureOutput({ outputError: (text, write) => write(text) });

  program
    .command('run')
    .description('run a system module and write its replay log')
    .argument('<system-module>', 'a module whose default export is defineSystem(...)')
    .option('--ticks <n>', 'ticks to run (default: the system\'s `ticks`, else 1000)', integer('--ticks', 0, Number.MAX_SAFE_INTEGER))
    .option('--seed <s>', 'run seed, 0..4294967295', integer('--seed', 0, 0xffff_ffff), 0)
    .option('--log <file>', 'replay log to write', 'lockstep.log')
    .option('--level <level>', 'log level: digest or full', 'digest')
    .option('--workers <n>', 'worker threads for WASM agents (the log does not depend on it); 0 runs everything in one thread', integer('--workers', 0, 64), 2)
    .option('--trust <pub.pem>', 'a public key whose signed WASM agents to accept (repeatable)', collect, [])
    .option('--allow-unsigned', 'development only: accept unsigned WASM agents')
    .option('--faults <plan.json>', 'inject the faults of a plan (crash, exhaustFuel, killWorker, malformed at given ticks); they are logged as inputs, so replay needs no plan')
    .option('--quiet', 'no progress on stderr')
    .addHelpText(
      'after',
      `
A fault plan is JSON: { "seed": 1, "faults": [{ "tick": 5, "kind": "crash", "actor": "root/worker" }, ...] }
  crash        { tick, kind, actor }                  the actor (or supervisor) crashes as the tick begins
  exhaustFuel  { tick, kind, actor }                  the WASM agent's fuel for the tick is spent
  killWorker   { tick, kind, worker }                 WASM worker thread <worker> dies mid-tick; its agents crash
  malformed    { tick, kind, actor | topic, bytes? }  seeded garbage bytes to the actor's inbox or a topic
A fault that names no current actor is logged as refused and the run goes on. Replay a run with
killWorker faults with the same --workers it was recorded with; with --workers 0 there is no
worker, and a killWorker fault is logged as refused.`,
    )
    .action(async (modulePath: string, options: RunFlags & { ticks?: number; seed: number; log: string; level: string; faults?: string }) => {
      if (options.level !== 'digest' && options.level !== 'full') {
        throw new CliError('bad_flag', `--level must be digest or full, got '${options.level}'`);
      }
      // Checked before the system loads: a bad plan costs nothing and says what is wrong.
      const faults = options.faults === undefined ? undefined : loadFaultPlan(options.faults);
      const system = await loadSystem(modulePath);
      const ticks = options.ticks ?? system.ticks ?? 1000;
      const runtime = createRuntime(system, { seed: options.seed, log: options.log, level: options.level, faults, ...wasmOptions(options) });
      const started = performance.now();
      const progressEvery = Math.max(1, Math.floor(ticks / 100));
      const summary = await runtime.run(ticks, options.quiet ? {} : { onProgress: progressPrinter('run', ticks), progressEvery });
      const seconds = (performance.now() - started) / 1000;
      const digest = await runtime.close();
      console.log(
        `ran ${system.name}: ${summary.ticks} ticks, ${summary.counters.delivered} messages delivered ` +
          `(${Math.round(summary.counters.delivered / seconds)} msgs/s), ${summary.counters.dropped} dropped with reasons`,
      );
      if (faults !== undefined) console.log(`fault plan ${options.faults}: ${faults.faults.length} faults, logged as inputs (refusals as drops)`);
      console.log(`log ${options.log}, final digest ${digest}`);
    });

  program
    .command('replay')
    .description('re-execute a recorded run and check every tick')
    .argument('<log>', 'a replay log written by lockstep run')
    .argument('<system-module>', 'the system module the run used')
    .option('--workers <n>', 'worker threads for WASM agents (the result does not depend on it); 0 runs everything in one thread', integer('--workers', 0, 64), 2)
    .option('--trust <pub.pem>', 'a public key whose signed WASM agents to accept (repeatable)', collect, [])
    .option('--allow-unsigned', 'development only: accept unsigned WASM agents')
    .option('--quiet', 'no progress on stderr')
    .action(async (logPath: string, modulePath: string, options: RunFlags) => {
      const system = await loadSystem(modulePath);
      let printer: ((tick: number) => void) | null = null;
      const report = await replay(logPath, system, {
        ...wasmOptions(options),
        progressEvery: 100,
        onProgress: options.quiet
          ? undefined
          : (tick, total) => {
              printer ??= progressPrinter('replay', total);
              printer(tick);
            },
      });
      for (const note of report.notes) console.log(`note: ${note}`);
      if (report.tornTail !== null) {
        console.log(`note: the log had a torn tail (${report.tornTail.bytesCut} bytes at offset ${report.tornTail.offset}); replayed the whole records before it`);
      }
      console.log(`replay verified: ${report.ticks} ticks, ${report.bitExact ? 'bit for bit' : 'by content'}, final digest ${report.chainHex}`);
    });

  program
    .command('inspect')
    .description('print a log\'s header, tick count, message counts, lifecycle events and integrity')
    .argument('<log>', 'a replay log')
    .option('--events <n>', 'lifecycle events to list', integer('--events', 0, 1_000_000), 20)
    .action((logPath: string, options: { events: number }) => {
      if (!existsSync(logPath)) throw new CliError('log_not_found', `log '${logPath}' does not exist`);
      console.log(inspectLog(readLog(logPath), logPath, options.events));
    });

  addPluginCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof LockstepError) {
      console.error(`lockstep: ${error.message}`);
      return 2;
    }
    const code = (error as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('commander.')) {
      return code === 'commander.helpDisplayed' || code === 'commander.version' ? 0 : 2;
    }
    console.error(`lockstep: ${(error as Error).stack ?? String(error)}`);
    return 1;
  }
}
