// Determinism laws for systems that mix signed, metered WASM agents (real modules from
// actors/agents/build, on real worker threads) with JS actors. Each run starts its own
// worker pool, which costs a few hundred milliseconds per worker on this 2-core machine,
// so the run counts here are small and each test has its own timeout.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { replay } from '../src/index.ts';
import { readLog } from '../src/log/index.ts';
import {
  buildWasmSystem,
  devPublicKeyPem,
  loadWasmDefinitions,
  runWasmPlan,
  wasmSystemPlans,
  wasmTrafficOf,
  type WasmDefinitions,
  type WasmSystemPlan,
  type WasmTraffic,
} from './wasm-systems.ts';

/**
 * Metered modules go to a folder as well as memory, so the child process of the
 * cross-process law reads them instead of loading binaryen (~13 s under tsx here).
 */
const meteredCacheDirectory = mkdtempSync(join(tmpdir(), 'lockstep-wasm-determinism-'));
afterAll(() => rmSync(meteredCacheDirectory, { recursive: true, force: true }));
const definitions = (): Promise<WasmDefinitions> => loadWasmDefinitions({ meteredCacheDirectory });

/**
 * Time fast-check may spend on one property, shrinking included, before it reports what it
 * has; below the test's own timeout so a failure arrives with its counterexample.
 */
const property_time_limit_ms = 90_000;
const test_timeout_ms = 120_000;

const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Where two logs of the same plan first differ, in words (for a failing assertion's message). */
function firstDifference(expected: Uint8Array, actual: Uint8Array): string {
  if (Buffer.compare(expected, actual) === 0) return 'identical';
  const a = readLog(expected);
  const b = readLog(actual);
  if (JSON.stringify(a.header) !== JSON.stringify(b.header)) return `headers differ: ${JSON.stringify(a.header)} vs ${JSON.stringify(b.header)}`;
  const count = Math.max(a.ticks.length, b.ticks.length);
  for (let i = 0; i < count; i++) {
    const bodyA = a.tickBodies[i];
    const bodyB = b.tickBodies[i];
    if (bodyA !== undefined && bodyB !== undefined && Buffer.compare(bodyA, bodyB) === 0) continue;
    const show = (record: (typeof a.ticks)[number] | undefined) =>
      record === undefined
        ? 'missing'
        : JSON.stringify({ lifecycle: record.lifecycle, drops: record.drops, delivered: record.deliveredCount, actorDigests: [...record.actorDigests] });
    return `tick record ${i} (tick ${a.ticks[i]?.tick ?? b.ticks[i]?.tick}) differs:\n  ${show(a.ticks[i])}\n  ${show(b.ticks[i])}`;
  }
  return `end records differ: ${JSON.stringify(a.end)} vs ${JSON.stringify(b.end)}`;
}

/** Sums what the sampled runs did with their WASM agents, so a law cannot pass on idle systems. */
class TrafficTally {
  plans = 0;
  fromAgents = 0;
  agentsReceived = 0;
  plansWithAgentTraffic = 0;

  add(traffic: WasmTraffic): void {
    this.plans++;
    this.fromAgents += traffic.fromAgents;
    this.agentsReceived += traffic.agentsReceived;
    if (traffic.fromAgents > 0 && traffic.agentsReceived > 0) this.plansWithAgentTraffic++;
  }

  /** At least `perPlan` messages each way per sampled plan on average, and traffic both ways in half the plans. */
  expectTraffic(perPlan: number): void {
    expect(this.plans).toBeGreaterThan(0);
    expect(this.fromAgents, 'messages WASM agents published that were delivered').toBeGreaterThanOrEqual(perPlan * this.plans);
    expect(this.agentsReceived, 'messages WASM agents processed').toBeGreaterThanOrEqual(perPlan * this.plans);
    expect(this.plansWithAgentTraffic, 'plans whose WASM agents both received and published').toBeGreaterThanOrEqual(Math.ceil(this.plans / 2));
  }
}

describe('determinism of mixed WASM and JS systems', () => {
  it(
    'WASM and JS systems give identical logs with 1, 2 and 4 workers',
    async () => {
      const loaded = await definitions();
      const tally = new TrafficTally();
      await fc.assert(
        fc.asyncProperty(wasmSystemPlans(), async (plan) => {
          const one = await runWasmPlan(plan, { workers: 1, definitions: loaded });
          const two = await runWasmPlan(plan, { workers: 2, definitions: loaded });
          const four = await runWasmPlan(plan, { workers: 4, definitions: loaded });
          expect(firstDifference(one.bytes, two.bytes), '1 worker vs 2 workers').toBe('identical');
          expect(firstDifference(one.bytes, four.bytes), '1 worker vs 4 workers').toBe('identical');
          expect([two.chainHex, four.chainHex]).toEqual([one.chainHex, one.chainHex]);
          tally.add(wasmTrafficOf(one.bytes, plan));
        }),
        { numRuns: 8, interruptAfterTimeLimit: property_time_limit_ms },
      );
      tally.expectTraffic(3);
    },
    test_timeout_ms,
  );

  it(
    'WASM and JS systems give identical logs with 1, 2 and 4 workers, and across separate processes',
    async () => {
      const loaded = await definitions();
      const plans = fc.sample(wasmSystemPlans(), { numRuns: 6, seed: 20261128 });
      // The child starts first and runs alongside this process: both halves take seconds.
      const script = fileURLToPath(new URL('./run-wasm-plans.ts', import.meta.url));
      const tsx = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url));
      const there = runChild(tsx, [script, '1', meteredCacheDirectory], JSON.stringify(plans));
      const tally = new TrafficTally();
      const here: string[] = [];
      for (const plan of plans) {
        const { bytes } = await runWasmPlan(plan, { workers: 2, definitions: loaded });
        here.push(sha256Hex(bytes));
        tally.add(wasmTrafficOf(bytes, plan));
      }
      expect((await there).trim().split('\n')).toEqual(here);
      tally.expectTraffic(3);
    },
    test_timeout_ms,
  );

  it(
    'fuel runs out at the same point every run',
    async () => {
      const loaded = await definitions();
      let spinners = 0;
      await fc.assert(
        fc.asyncProperty(wasmSystemPlans({ withSpinner: true }), async (plan) => {
          const crashesOf = async (workers: number) => wasmTrafficOf((await runWasmPlan(plan, { workers, definitions: loaded })).bytes, plan).crashes;
          const first = await crashesOf(1);
          const again = await crashesOf(2);
          const other = await crashesOf(2);
          const spinnerNames = plan.actors.filter((actor) => actor.role === 'agent' && actor.kind === 'spinner').map((actor) => actor.name);
          const spinnerCrashes = first.filter((crash) => spinnerNames.includes(crash.name));
          // Every spinner crashes exactly once, by fuel, inside the run.
          expect(spinnerCrashes.map((crash) => crash.name).sort()).toEqual([...spinnerNames].sort());
          for (const crash of spinnerCrashes) {
            expect(crash.reason).toMatch(/^fuel exhausted: /);
            expect(crash.tick).toBeGreaterThanOrEqual(1);
            expect(crash.tick).toBeLessThanOrEqual(plan.ticks);
          }
          // Same tick and same reason for every crash, across runs and worker counts.
          expect(again).toEqual(first);
          expect(other).toEqual(first);
          spinners += spinnerNames.length;
        }),
        { numRuns: 5, interruptAfterTimeLimit: property_time_limit_ms },
      );
      expect(spinners).toBeGreaterThanOrEqual(5);
    },
    test_timeout_ms,
  );

  it(
    'replay of any recorded WASM run verifies',
    async () => {
      const loaded = await definitions();
      const tally = new TrafficTally();
      // Replay runs on another worker count than the recording: agents land on other workers.
      const workerPairs = fc.constantFrom([1, 2], [2, 1], [1, 4], [4, 2]);
      await fc.assert(
        fc.asyncProperty(wasmSystemPlans(), workerPairs, async (plan: WasmSystemPlan, [recordWorkers, replayWorkers]) => {
          const run = await runWasmPlan(plan, { workers: recordWorkers!, definitions: loaded });
          const report = await replay(run.bytes, buildWasmSystem(plan, loaded), { workers: replayWorkers!, trustedKeys: [devPublicKeyPem] });
          expect(report.bitExact).toBe(true);
          expect(report.chainHex).toBe(run.chainHex);
          expect(report.ticks).toBe(plan.ticks);
          tally.add(wasmTrafficOf(run.bytes, plan));
        }),
        { numRuns: 6, interruptAfterTimeLimit: property_time_limit_ms },
      );
      tally.expectTraffic(3);
    },
    test_timeout_ms,
  );
});

/** Runs `command args` with `input` on stdin; resolves with its stdout, rejects with its stderr on a non-zero exit. */
function runChild(command: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${command} ${args.join(' ')} exited with ${code}: ${stderr}`))));
    child.stdin.end(input);
  });
}
