/**
 * `lockstep/testing`: property-test the determinism of your own systems.
 *
 *   assertDeterministic(system, { inputs: { topics: ['orders'] } })
 *
 * runs the system on generated seeds and input schedules, twice each in separate
 * runtimes, compares the two logs byte for byte, and on a difference throws a
 * DeterminismError with the shrunk counterexample: seed, inputs, first divergent tick
 * and actor.
 */
import fc from 'fast-check';
import { compareRecords, type Divergence, type Names } from '../divergence.ts';
import { ConfigError, DeterminismError, MailboxFullError } from '../errors.ts';
import { checkKeys } from '../options.ts';
import { readLog } from '../log/reader.ts';
import type { LogLevel } from '../log/types.ts';
import { createRuntime } from '../runtime.ts';
import type { SystemDefinition } from '../system.ts';

/** One external input: injected before `tick` runs. */
export interface ScheduledInput {
  tick: number;
  topic: string;
  payload: Uint8Array;
  priority: number;
}

/** Run seeds: unsigned 32-bit integers. */
export function seeds(): fc.Arbitrary<number> {
  return fc.integer({ min: 0, max: 0xffff_ffff });
}

export interface InputScheduleOptions {
  /** Topics inputs may go to (each must exist in the system). */
  topics: readonly string[];
  /** Inputs land on ticks 1..ticks. */
  ticks: number;
  /** Most inputs in one schedule (default 32). */
  inputsMax?: number;
  /** Payloads (default: 0..32 random bytes). */
  payload?: fc.Arbitrary<Uint8Array>;
  /** Priorities (default: 0..255). */
  priority?: fc.Arbitrary<number>;
}

/** Input schedules: inputs on random ticks and topics, sorted by tick (stable). */
export function inputSchedules(options: InputScheduleOptions): fc.Arbitrary<ScheduledInput[]> {
  if (options.topics.length === 0) throw new ConfigError('inputSchedules needs at least one topic');
  const input = fc.record({
    tick: fc.integer({ min: 1, max: Math.max(1, options.ticks) }),
    topic: fc.constantFrom(...options.topics),
    payload: options.payload ?? fc.uint8Array({ maxLength: 32 }),
    priority: options.priority ?? fc.integer({ min: 0, max: 255 }),
  });
  return fc
    .array(input, { maxLength: options.inputsMax ?? 32 })
    .map((inputs) => inputs.map((entry, order) => ({ entry, order })).sort((a, b) => a.entry.tick - b.entry.tick || a.order - b.order).map((x) => x.entry));
}

export interface RecordedRun {
  bytes: Uint8Array;
  chainHex: string;
  names: Names;
  /** Inputs refused because a mailbox was full (deterministic: part of the run). */
  refusedInputs: number;
}

export interface RecordOptions {
  seed: number;
  inputs: readonly ScheduledInput[];
  ticks: number;
  level?: LogLevel;
  /** Worker threads for WASM agents (the log must not depend on it). */
  workers?: number;
  /** Runtime options for WASM agents: trusted keys, allowUnsigned. */
  trustedKeys?: readonly string[];
  allowUnsigned?: boolean;
}

/** Runs `system` for `ticks` ticks with `seed` and `inputs`, logging in memory. */
export async function runRecorded(system: SystemDefinition, options: RecordOptions): Promise<RecordedRun> {
  checkKeys(options, ['seed', 'inputs', 'ticks', 'level', 'workers', 'trustedKeys', 'allowUnsigned'], 'runRecorded options');
  const runtime = createRuntime(system, {
    seed: options.seed,
    level: options.level ?? 'full',
    workers: options.workers,
    trustedKeys: options.trustedKeys,
    allowUnsigned: options.allowUnsigned,
  });
  let next = 0;
  let refusedInputs = 0;
  for (let tick = 1; tick <= options.ticks; tick++) {
    while (next < options.inputs.length && options.inputs[next]!.tick <= tick) {
      const input = options.inputs[next++]!;
      try {
        runtime.inject(input.topic, input.payload, { priority: input.priority });
      } catch (error) {
        if (!(error instanceof MailboxFullError)) throw error;
        refusedInputs++;
      }
    }
    await runtime.step();
  }
  const chainHex = await runtime.close();
  return { bytes: runtime.logBytes(), chainHex, names: runtime, refusedInputs };
}

/** The first difference between two logs of the same system, or null if they are identical. */
export function firstDivergence(a: Uint8Array, b: Uint8Array, names: Names): Divergence | null {
  if (Buffer.compare(a, b) === 0) return null;
  const left = readLog(a);
  const right = readLog(b);
  const count = Math.max(left.ticks.length, right.ticks.length);
  for (let i = 0; i < count; i++) {
    const want = left.ticks[i];
    const got = right.ticks[i];
    if (want === undefined || got === undefined) {
      return { tick: (want ?? got)!.tick, actor: null, message: null, detail: 'one run has more ticks than the other' };
    }
    const found = compareRecords(want, got, names);
    if (found !== null) return found;
  }
  return { tick: 0, actor: null, message: null, detail: 'the logs differ in their header (seed, config or versions)' };
}

/**
 * Waits (at most ~1 ms) until the wall clock moves on, so that an actor which reads the
 * clock sees different times in the two runs, whatever their speed. The kit reads the clock
 * on purpose here: to expose a clock dependency, never to decide anything.
 */
function waitForNextMillisecond(): void {
  const start = Date.now();
  while (Date.now() === start) {
    // spin: a millisecond at most
  }
}

export { DeterminismError };

export interface DeterminismOptions {
  /** Ticks per run (default 40). */
  ticks?: number;
  /** Generated cases (default 20); each runs the system twice. */
  numRuns?: number;
  /** Inputs: a schedule arbitrary, or topics to generate one over, or none. */
  inputs?: fc.Arbitrary<ScheduledInput[]> | { topics: readonly string[]; inputsMax?: number };
  /** fast-check seed, to reproduce a failure. */
  seed?: number;
  level?: LogLevel;
  /**
   * Worker counts for WASM agents: the second run of each case uses the next count in the
   * list (default [1, 2]), so a difference between worker counts is caught as well.
   */
  workers?: readonly number[];
  trustedKeys?: readonly string[];
  allowUnsigned?: boolean;
}

/**
 * Asserts that `system` is deterministic: same seed and inputs give byte-identical logs in
 * separate runtimes (and with different worker counts for WASM agents). Rejects with
 * DeterminismError carrying the shrunk counterexample otherwise.
 */
export async function assertDeterministic(system: SystemDefinition, options: DeterminismOptions = {}): Promise<void> {
  checkKeys(options, ['ticks', 'numRuns', 'inputs', 'seed', 'level', 'workers', 'trustedKeys', 'allowUnsigned'], 'assertDeterministic options');
  const ticks = options.ticks ?? 40;
  const inputs =
    options.inputs === undefined
      ? fc.constant<ScheduledInput[]>([])
      : options.inputs instanceof fc.Arbitrary
        ? options.inputs
        : inputSchedules({ topics: options.inputs.topics, ticks, inputsMax: options.inputs.inputsMax });
  let last: { seed: number; inputs: ScheduledInput[]; divergence: Divergence } | null = null;
  const workerCounts = options.workers ?? [1, 2];
  let runIndex = 0;
  const property = fc.asyncProperty(seeds(), inputs, async (seed, schedule) => {
    const common = { seed, inputs: schedule, ticks, level: options.level, trustedKeys: options.trustedKeys, allowUnsigned: options.allowUnsigned };
    const firstWorkers = workerCounts[runIndex % workerCounts.length]!;
    const secondWorkers = workerCounts[(runIndex + 1) % workerCounts.length]!;
    runIndex++;
    const first = await runRecorded(system, { ...common, workers: firstWorkers });
    waitForNextMillisecond();
    const second = await runRecorded(system, { ...common, workers: secondWorkers });
    const divergence = firstDivergence(first.bytes, second.bytes, first.names);
    if (divergence !== null) {
      last = { seed, inputs: schedule, divergence };
      return false;
    }
    return true;
  });
  const result = await fc.check(property, { numRuns: options.numRuns ?? 20, seed: options.seed });
  if (!result.failed) return;
  if (result.counterexample === null || last === null) {
    throw result.errorInstance instanceof Error ? result.errorInstance : new Error(String(result.errorInstance));
  }
  const [seed, schedule] = result.counterexample;
  // Shrinking only moves to failing cases, so the last failure seen is the counterexample.
  const { divergence } = last as { divergence: Divergence };
  throw new DeterminismError(
    system.name,
    seed,
    schedule,
    divergence,
    `  (fast-check: ${result.numRuns} runs, shrunk ${result.numShrinks} times; reproduce with { seed: ${result.seed}, path: '${result.counterexamplePath}' })`,
  );
}
