// The cross-executor law: whatever runs the agents (the orchestrator's own thread with
// workers: 0, or 1, 2 or 4 worker threads) and the inference sessions (in-thread, or the
// inference worker), a run writes the same bytes. Generated systems mix JS actors, signed
// WASM agents (actors/agents/build, with the pilot that asks the policy network), JS actors
// that ask the policy network and Silero VAD (good and bad requests), all under one
// supervisor, with a seeded fault plan of crashes, spent fuel and malformed payloads
// (killWorker is left out: its outcome depends on the worker count by design).
//
// Each plan costs eight runs (four recordings, four replays); a run on workers pays for
// starting its threads, about a second on this 2-core machine, an in-thread run a tenth
// of that. So numRuns is 5 (40-55 s here), with a time limit that reports a
// counterexample before the test's timeout.
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadWasmAgent } from '../actors/wasm-agent.ts';
import { createRuntime, defineSystem, randomFaultPlan, replay, supervisor, type ChildSpec, type FaultPlan, type Strategy, type SystemDefinition, type WasmAgentDefinition } from '../src/index.ts';
import { readLog } from '../src/log/index.ts';
import { askerWith, policyPath, sileroSpec } from '../test/fixtures/inference.ts';
import { askerPlanArb, requestFor, type AskerPlan } from './inference-plans.ts';
import {
  allTopics,
  devPublicKeyPem,
  loadWasmDefinitions,
  wasmChildSpecs,
  wasmSystemPlans,
  type WasmDefinitions,
  type WasmSystemPlan,
} from './wasm-systems.ts';

/** The worker counts every plan runs with; 0 is the in-thread transport. */
const workerCounts = [0, 1, 2, 4] as const;
const plan_ticks_max = 16;
const askers_max = 3;
const property_num_runs = 5;
const property_time_limit_ms = 75_000;
const test_timeout_ms = 120_000;

interface ExecutorPlan {
  /** JS feeders and listeners, WASM agents, their inputs; its seed is the run's. */
  system: WasmSystemPlan;
  tree: { strategy: Exclude<Strategy, 'simple_one_for_one'>; intensity: number; period: number };
  askers: AskerPlan[];
  /** A pilot agent among the children: a WASM agent that asks the policy every step. */
  pilot: boolean;
  faults: { seed: number; rate: number };
}

const executorPlans: fc.Arbitrary<ExecutorPlan> = fc.record({
  system: wasmSystemPlans({ ticksMax: plan_ticks_max }),
  tree: fc.record({
    strategy: fc.constantFrom('one_for_one' as const, 'one_for_all' as const, 'rest_for_one' as const),
    intensity: fc.integer({ min: 1, max: 6 }),
    period: fc.integer({ min: 1, max: 10 }),
  }),
  askers: fc.array(askerPlanArb, { minLength: 1, maxLength: askers_max }),
  pilot: fc.boolean(),
  faults: fc.record({ seed: fc.integer({ min: 0, max: 0xffff_ffff }), rate: fc.double({ min: 0.1, max: 0.4, noNaN: true }) }),
});

interface Built {
  system: SystemDefinition;
  faults: FaultPlan;
}

/** The supervised system of a plan and its fault plan, over the children's names. */
function build(plan: ExecutorPlan, definitions: WasmDefinitions, pilot: WasmAgentDefinition): Built {
  const ticks = plan.system.ticks;
  const children: ChildSpec[] = [
    ...wasmChildSpecs(plan.system, definitions),
    ...plan.askers.map((asker, i) => ({
      id: `asker-${i + 1}`,
      start: askerWith({ topic: `infer/${asker.model}`, requests: (tick: number) => [requestFor(asker, tick)], until: ticks }),
    })),
    ...(plan.pilot ? [{ id: 'pilot', start: pilot }] : []),
  ];
  const agents = [...plan.system.actors.filter((actor) => actor.role === 'agent').map((actor) => actor.name), ...(plan.pilot ? ['pilot'] : [])];
  const system = defineSystem({
    name: 'cross-executor',
    topics: [...allTopics, 'decisions'],
    inference: { models: { policy: policyPath, vad: sileroSpec } },
    setup: (builder) => void builder.spawn(supervisor(plan.tree, children), { name: 'root' }),
  });
  const faults = randomFaultPlan({
    seed: plan.faults.seed,
    ticks,
    rate: plan.faults.rate,
    actors: children.map((child) => `root/${child.id}`),
    agents: agents.map((name) => `root/${name}`),
    kinds: ['crash', 'exhaustFuel', 'malformed'],
  });
  return { system, faults };
}

/** Records a plan's run with `workers`: its inputs injected before their ticks, closed at the end. */
async function record(plan: ExecutorPlan, built: Built, workers: number): Promise<{ bytes: Uint8Array; chainHex: string }> {
  // No spare worker: with no killWorker fault none is ever used, and starting one costs a
  // thread start on a machine whose two cores the runs already fill (replays keep the default).
  const runtime = createRuntime(built.system, {
    seed: plan.system.seed,
    level: 'full',
    workers,
    spareWorkers: 0,
    trustedKeys: [devPublicKeyPem],
    faults: built.faults,
  });
  try {
    const inputs = plan.system.inputs;
    let next = 0;
    for (let tick = 1; tick <= plan.system.ticks; tick++) {
      while (next < inputs.length && inputs[next]!.tick <= tick) {
        const input = inputs[next++]!;
        try {
          runtime.inject(input.topic, new Uint8Array(input.payload), { priority: input.priority });
        } catch (error) {
          // A full mailbox refuses the input in every run alike.
          if ((error as { code?: string }).code !== 'mailbox_full') throw error;
        }
      }
      await runtime.step();
    }
    const chainHex = await runtime.close();
    return { bytes: runtime.logBytes(), chainHex };
  } catch (error) {
    await runtime.abandon();
    throw error;
  }
}

/** Where two logs first differ, for a failing assertion's message. */
function firstDifference(expected: Uint8Array, actual: Uint8Array): string {
  if (Buffer.compare(expected, actual) === 0) return 'identical';
  const a = readLog(expected);
  const b = readLog(actual);
  for (let i = 0; i < Math.max(a.ticks.length, b.ticks.length); i++) {
    const bodyA = a.tickBodies[i];
    const bodyB = b.tickBodies[i];
    if (bodyA !== undefined && bodyB !== undefined && Buffer.compare(bodyA, bodyB) === 0) continue;
    const show = (tick: (typeof a.ticks)[number] | undefined) =>
      tick === undefined ? 'missing' : JSON.stringify({ lifecycle: tick.lifecycle, drops: tick.drops, delivered: tick.deliveredCount, inferences: tick.inferences.length });
    return `tick record ${i} differs:\n  ${show(a.ticks[i])}\n  ${show(b.ticks[i])}`;
  }
  return 'the header or end record differs';
}

/** What the sampled runs did, so the law cannot pass on systems that do nothing. */
class Tally {
  plans = 0;
  answers = 0;
  agentMessages = 0;
  faults = 0;
  crashes = 0;
  restarts = 0;

  add(bytes: Uint8Array, plan: ExecutorPlan, faults: FaultPlan): void {
    const log = readLog(bytes);
    const agents = new Set([...plan.system.actors.filter((actor) => actor.role === 'agent').map((actor) => `root/${actor.name}`), 'root/pilot']);
    const names = new Map<number, string>();
    this.plans++;
    this.faults += faults.faults.length;
    for (const tick of log.ticks) {
      for (const event of tick.lifecycle) {
        if (event.to === 'created') names.set(event.actor, event.detail.split(' ')[0]!);
        if (event.to === 'crashed') this.crashes++;
        if (event.to === 'restarting') this.restarts++;
      }
      this.answers += tick.inferences.length;
      for (const envelope of tick.envelopes ?? []) if (agents.has(names.get(envelope.sender) ?? '')) this.agentMessages++;
    }
  }
}

describe('executors', () => {
  it(
    'systems of JS actors, WASM agents, supervision faults and inference requests give byte-identical logs with workers 0, 1, 2 and 4, and each replays bit for bit with another worker count',
    async () => {
      const definitions = await loadWasmDefinitions();
      const pilot = await loadWasmAgent(fileURLToPath(new URL('../actors/agents/build/pilot.wasm', import.meta.url)));
      const tally = new Tally();
      await fc.assert(
        fc.asyncProperty(executorPlans, async (plan) => {
          const built = build(plan, definitions, pilot);
          const runs = [];
          for (const workers of workerCounts) runs.push({ workers, ...(await record(plan, built, workers)) });
          const [inThread] = runs;
          for (const run of runs.slice(1)) {
            expect(firstDifference(inThread!.bytes, run.bytes), `workers 0 vs ${run.workers}`).toBe('identical');
            expect(run.chainHex).toBe(inThread!.chainHex);
          }
          // Each log replays on the next worker count in the list (the last on the first).
          for (const [i, run] of runs.entries()) {
            const replayWorkers = workerCounts[(i + 1) % workerCounts.length]!;
            const report = await replay(run.bytes, built.system, { workers: replayWorkers, trustedKeys: [devPublicKeyPem] });
            expect(report.bitExact, `recorded with ${run.workers} workers, replayed with ${replayWorkers}`).toBe(true);
            expect(report.chainHex).toBe(run.chainHex);
            expect(report.ticks).toBe(plan.system.ticks);
          }
          tally.add(inThread!.bytes, plan, built.faults);
        }),
        { numRuns: property_num_runs, interruptAfterTimeLimit: property_time_limit_ms },
      );
      // The sampled systems did something on every path the law is about.
      expect(tally.plans).toBeGreaterThanOrEqual(3);
      expect(tally.answers, 'inference answers').toBeGreaterThanOrEqual(tally.plans * 3);
      expect(tally.agentMessages, 'messages WASM agents published that were delivered').toBeGreaterThanOrEqual(tally.plans * 3);
      expect(tally.faults, 'faults planned').toBeGreaterThanOrEqual(tally.plans);
      expect(tally.crashes, 'crashes').toBeGreaterThanOrEqual(Math.ceil(tally.plans / 2));
      expect(tally.restarts, 'supervisor restarts').toBeGreaterThan(0);
    },
    test_timeout_ms,
  );
});
