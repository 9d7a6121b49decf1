/**
 * Supervision benchmarks: how fast a crashed child runs again, in ticks and in wall time,
 * through the real runtime (signed agents from actors/agents/build/, admitted with the dev
 * key in examples/keys, metered, on worker threads).
 *
 * - benchRestartTicks: ticks from a child's `running -> crashed` lifecycle record to its
 *   next `initializing -> running` record, read back from the replay log (readLog of the
 *   run's in-memory log after close). Children under one_for_one supervisors, crashed five
 *   ways: a JS actor whose step throws, a JS actor crashed by a fault plan, and a WASM
 *   counter agent crashed by a fault plan (`crash`), trapped by `exhaustFuel`, and taken
 *   down with its worker (`killWorker`). OTP on logical ticks says a crash in tick t is
 *   acted on at the boundary of t+1, where the child runs init: 1 tick.
 * - benchWasmRestart: wall time of a WASM agent's restart. A one_for_one supervisor over
 *   `agents` counter agents on 2 workers; before tick t, runtime.actor(agent).crash(); tick t
 *   takes the crash in (the agent is unloaded), tick t+1 restarts it (LOAD of a fresh
 *   instance on its worker, agent_init, READY at the barrier). Timed: the step call(s)
 *   from the restart tick until the agent's `initializing -> running` record, plain wall
 *   time (performance.now), nothing subtracted. Beside it, in the same run: a tick with no
 *   crash or restart (the baseline) and the crash tick itself.
 * - benchWorkerReplace: wall time from `await runtime.killWorker(w)` (the thread is
 *   terminated, and the call waits for its exit) until every agent that was on worker w is
 *   `running` again (snapshot polled after each step). That spans: the kill and the
 *   thread's exit, the tick that finds it dead (the barrier reports the agents crashed and
 *   puts a worker in its place), and the tick where the supervisor restarts them (LOAD of
 *   each module on the replacement, agent_init, READY). With the pool's started spare
 *   (spareWorkers 1, the default) the replacement is already running; the spare is started
 *   at the end of a barrier and has to load tsx and the worker module (hundreds of ms under
 *   tsx), so before each kill the bench idles `warmMs` and runs a few ticks so the spare is
 *   warm: the number is the warm-spare case, not a kill right after another kill. Beside
 *   it, in the same run: the same with spareWorkers 0 (a new thread is started on the kill:
 *   what replacing without a spare costs), and Node's own `new Worker` start-to-first-message
 *   time for a trivial worker (no tsx), as references.
 *
 * Nothing is printed unless this file is run directly (`npx tsx bench/supervision.ts`).
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createRuntime, defineActor, defineSystem, loadWasmAgent, supervisor, type ChildSpec, type FaultPlan, type Runtime, type TickRecord, type WasmAgentDefinition } from '../src/index.ts';
import { readLog } from '../src/log/index.ts';

/** The dev key the committed agents are signed with (examples/keys; a bench and demo key only). */
const devKey = readFileSync(fileURLToPath(new URL('../examples/keys/dev.pub.pem', import.meta.url)), 'utf8');
const trustedKeys = [devKey];
const agentFile = (name: string) => fileURLToPath(new URL(`../actors/agents/build/${name}.wasm`, import.meta.url));

let counterAgent: Promise<WasmAgentDefinition> | null = null;
/** The committed, signed counter agent (subscribes `numbers`, publishes `counts`). */
function counter(): Promise<WasmAgentDefinition> {
  counterAgent ??= loadWasmAgent(agentFile('counter'));
  return counterAgent;
}

/** Restarts are what is measured: a supervisor that never gives up within the run. */
const patientFlags = { strategy: 'one_for_one' as const, intensity: 1_000_000, period: 1 };

function percentile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** True when `record` holds `from -> to` for actor `id`. */
function hasTransition(record: TickRecord, id: number, from: string, to: string): boolean {
  return record.lifecycle.some((event) => event.actor === id && event.from === from && event.to === to);
}

export interface RestartSpan {
  actor: string;
  crashedAt: number;
  runningAt: number;
  ticks: number;
}

/**
 * Every crash of the named actors in a log and the ticks until the actor was running again
 * (`running -> crashed`, then the next `initializing -> running` of the same actor id).
 * Throws if a crash never ends in running: a restart that did not happen must not pass.
 */
export function restartSpans(log: Uint8Array, names: readonly string[]): RestartSpan[] {
  const { ticks } = readLog(log);
  const ids = new Map<number, string>();
  for (const record of ticks) {
    for (const event of record.lifecycle) {
      // The creation record names the actor: "<name> (...)" or the bare name.
      if (event.from === 'none' && event.to === 'created') {
        const name = names.find((n) => event.detail === n || event.detail.startsWith(`${n} `));
        if (name !== undefined) ids.set(event.actor, name);
      }
    }
  }
  const spans: RestartSpan[] = [];
  const open = new Map<number, number>();
  for (const record of ticks) {
    for (const event of record.lifecycle) {
      const name = ids.get(event.actor);
      if (name === undefined) continue;
      if (event.from === 'running' && event.to === 'crashed') open.set(event.actor, record.tick);
      if (event.from === 'initializing' && event.to === 'running' && open.has(event.actor)) {
        const crashedAt = open.get(event.actor)!;
        open.delete(event.actor);
        spans.push({ actor: name, crashedAt, runningAt: record.tick, ticks: record.tick - crashedAt });
      }
    }
  }
  if (open.size > 0) {
    const stuck = [...open].map(([id, tick]) => `${ids.get(id)} (crashed at tick ${tick})`).join(', ');
    throw new Error(`restartSpans: never running again after a crash: ${stuck}`);
  }
  return spans;
}

export interface RestartTicksResult {
  /** The largest span over every case below. */
  maxTicks: number;
  jsTicks: number;
  wasmTicks: number;
  spans: (RestartSpan & { how: string })[];
}

export async function benchRestartTicks(): Promise<RestartTicksResult> {
  const crashAt = 5;
  // A JS child whose step throws at tick `crashAt` in its first incarnation.
  const thrower = defineActor({
    name: 'thrower',
    init: () => 0,
    receive: () => undefined,
    step: (n: number, ctx) => {
      if (ctx.tick === crashAt && ctx.incarnation === 0) throw new Error('bench: crash in step');
      return n + 1;
    },
  });
  const steady = defineActor({ name: 'steady', init: () => 0, receive: () => undefined, step: (n: number) => n + 1 });
  const jsPlan: FaultPlan = { seed: 1, faults: [{ tick: crashAt + 3, kind: 'crash', actor: 'js/steady' }] };
  const jsRuntime = createRuntime(
    defineSystem({
      name: 'bench-restart-js',
      setup: (s) => {
        s.spawn(supervisor(patientFlags, [{ id: 'thrower', start: thrower }, { id: 'steady', start: steady }]), { name: 'js' });
      },
    }),
    { seed: 1, faults: jsPlan },
  );
  await jsRuntime.run(crashAt + 8);
  await jsRuntime.close();
  const js = restartSpans(jsRuntime.logBytes(), ['js/thrower', 'js/steady']);
  const jsHow = (span: RestartSpan) => (span.actor === 'js/thrower' ? 'JS step throws' : 'JS, fault plan crash');

  const agent = await counter();
  const children: ChildSpec[] = ['c0', 'c1', 'c2', 'c3'].map((id) => ({ id, start: agent }));
  const wasmPlan: FaultPlan = {
    seed: 1,
    faults: [
      { tick: 5, kind: 'crash', actor: 'wasm/c0' },
      { tick: 8, kind: 'exhaustFuel', actor: 'wasm/c1' },
      // Mid-tick kill of the worker that hosts some of the agents (id modulo 2). Their crash
      // records land in tick 11 itself (before 3b58cf6 a worker that finished the tick before
      // terminate() took effect was counted done, and the crash landed in tick 12 in some runs).
      { tick: 11, kind: 'killWorker', worker: 0 },
    ],
  };
  const wasmRuntime = createRuntime(
    defineSystem({ name: 'bench-restart-wasm', setup: (s) => void s.spawn(supervisor(patientFlags, children), { name: 'wasm' }) }),
    { seed: 1, faults: wasmPlan, trustedKeys, workers: 2 },
  );
  await wasmRuntime.run(16);
  await wasmRuntime.close();
  const wasm = restartSpans(
    wasmRuntime.logBytes(),
    children.map((c) => `wasm/${c.id}`),
  );
  const wasmHow = (span: RestartSpan) =>
    span.crashedAt === 5 ? 'WASM, fault plan crash' : span.crashedAt === 8 ? 'WASM, exhaustFuel (trap)' : 'WASM, killWorker (mid-tick)';
  if (js.length !== 2 || wasm.length < 3) {
    throw new Error(`benchRestartTicks: expected 2 JS and at least 3 WASM restarts, got ${js.length} and ${wasm.length}`);
  }
  const spans = [...js.map((s) => ({ ...s, how: jsHow(s) })), ...wasm.map((s) => ({ ...s, how: wasmHow(s) }))];
  const jsTicks = Math.max(...js.map((s) => s.ticks));
  const wasmTicks = Math.max(...wasm.map((s) => s.ticks));
  return { maxTicks: Math.max(jsTicks, wasmTicks), jsTicks, wasmTicks, spans };
}

/** A one_for_one supervisor `sup` over `agents` counter agents `sup/a0..`. */
async function counterTree(agents: number, options: { workers: number; spareWorkers?: number }): Promise<{ runtime: Runtime; names: string[] }> {
  const agent = await counter();
  const names = Array.from({ length: agents }, (_, i) => `sup/a${i}`);
  const runtime = createRuntime(
    defineSystem({
      name: `bench-supervised-${agents}`,
      setup: (s) => void s.spawn(supervisor(patientFlags, names.map((_, i) => ({ id: `a${i}`, start: agent }))), { name: 'sup' }),
    }),
    { seed: 1, trustedKeys, workers: options.workers, spareWorkers: options.spareWorkers },
  );
  return { runtime, names };
}

export interface WasmRestartResult {
  /** The restart tick(s): from the tick the supervisor restarts the agent until it is running. */
  restartUsP50: number;
  restartUsP99: number;
  /** A tick of the same runtime with no crash and no restart. */
  baselineUsP50: number;
  /** The tick that takes the crash in (the agent crashes and is unloaded). */
  crashTickUsP50: number;
  /** Ticks from the restart tick to running (1 when the restart tick itself ends running). */
  restartTicksMax: number;
  restarts: number;
}

export async function benchWasmRestart(opts: { agents?: number; restarts?: number; warmMs?: number } = {}): Promise<WasmRestartResult> {
  const agents = opts.agents ?? 8;
  const restarts = opts.restarts ?? 50;
  const { runtime, names } = await counterTree(agents, { workers: 2 });
  const ids = names.map((name) => runtime.actorId(name));
  await runtime.run(200); // start-up and JIT warm-up
  // The pool starts its spare worker after the first tick; under tsx it loads for ~0.4 s of
  // CPU, which on 2 cores would land in the timed ticks. Let it finish first.
  await sleep(opts.warmMs ?? 1_500);
  // Two restarts before timing: the first LOAD of a fresh instance on a worker is colder.
  for (let i = 0; i < 2; i++) {
    runtime.actor(names[i]!).crash();
    await runtime.run(5);
  }
  const baseline: number[] = [];
  const crashTicks: number[] = [];
  const restartSamples: number[] = [];
  let restartTicksMax = 0;
  for (let r = 0; r < restarts; r++) {
    const target = r % agents;
    const id = ids[target]!;
    let started = performance.now();
    await runtime.step();
    baseline.push((performance.now() - started) * 1000);

    runtime.actor(names[target]!).crash();
    started = performance.now();
    const crashRecord = await runtime.step();
    crashTicks.push((performance.now() - started) * 1000);
    if (!hasTransition(crashRecord, id, 'running', 'crashed')) throw new Error(`benchWasmRestart: ${names[target]} did not crash in the crash tick`);

    let elapsed = 0;
    let ticks = 0;
    for (;;) {
      started = performance.now();
      const record = await runtime.step();
      elapsed += performance.now() - started;
      ticks++;
      if (hasTransition(record, id, 'initializing', 'running')) break;
      if (ticks > 100) throw new Error(`benchWasmRestart: ${names[target]} not running 100 ticks after its crash`);
    }
    restartSamples.push(elapsed * 1000);
    restartTicksMax = Math.max(restartTicksMax, ticks);
    await runtime.run(2); // settle before the next baseline tick
  }
  const states = runtime.snapshot().actors.filter((a) => names.includes(a.name)).map((a) => a.lifecycle);
  await runtime.close();
  if (states.some((state) => state !== 'running')) throw new Error(`benchWasmRestart: agents not all running at the end: ${states.join(', ')}`);
  return {
    restartUsP50: percentile(restartSamples, 0.5),
    restartUsP99: percentile(restartSamples, 0.99),
    baselineUsP50: percentile(baseline, 0.5),
    crashTickUsP50: percentile(crashTicks, 0.5),
    restartTicksMax,
    restarts,
  };
}

export interface WorkerReplaceResult {
  msP50: number;
  msMax: number;
  /** The `await runtime.killWorker(w)` part alone (terminate and wait for the exit). */
  killMsP50: number;
  /** Ticks from the kill until all its agents run again. */
  ticksMax: number;
  kills: number;
  agentsPerWorker: number;
}

/**
 * Kills worker `k % 2` `kills` times; see the file comment for what the time spans.
 * `warmMs`: idle time before each kill, so the spare started after the last replacement
 * has loaded (with spareWorkers 0 it only keeps the runs alike).
 */
export async function benchWorkerReplace(opts: { kills?: number; agents?: number; spareWorkers?: number; warmMs?: number } = {}): Promise<WorkerReplaceResult> {
  const kills = opts.kills ?? 10;
  const agents = opts.agents ?? 8;
  const warmMs = opts.warmMs ?? 1_500;
  const workers = 2;
  const { runtime, names } = await counterTree(agents, { workers, spareWorkers: opts.spareWorkers });
  const ids = names.map((name) => runtime.actorId(name));
  await runtime.run(50);
  const samples: number[] = [];
  const killSamples: number[] = [];
  let ticksMax = 0;
  for (let k = 0; k < kills; k++) {
    const worker = k % workers;
    // Pinning is agent id modulo the worker count (src/faults.ts, src/wasm/pool.ts).
    const victims = new Set(ids.filter((id) => id % workers === worker));
    await sleep(warmMs);
    await runtime.run(5);
    const started = performance.now();
    await runtime.killWorker(worker);
    killSamples.push(performance.now() - started);
    let ticks = 0;
    let crashed = 0;
    for (;;) {
      const record = await runtime.step();
      ticks++;
      for (const event of record.lifecycle) if (victims.has(event.actor) && event.to === 'crashed') crashed++;
      const running = runtime.snapshot().actors.filter((a) => victims.has(a.id) && a.lifecycle === 'running').length;
      if (crashed >= victims.size && running === victims.size) break;
      if (ticks > 1_000) throw new Error(`benchWorkerReplace: agents of worker ${worker} not running 1,000 ticks after the kill`);
    }
    samples.push(performance.now() - started);
    ticksMax = Math.max(ticksMax, ticks);
  }
  await runtime.close();
  return {
    msP50: percentile(samples, 0.5),
    msMax: Math.max(...samples),
    killMsP50: percentile(killSamples, 0.5),
    ticksMax,
    kills,
    agentsPerWorker: Math.ceil(agents / workers),
  };
}

/** Node's own thread start: `new Worker` (eval, no tsx) until its first message arrives. */
export async function benchWorkerStart(opts: { starts?: number } = {}): Promise<{ msP50: number }> {
  const samples: number[] = [];
  for (let i = 0; i < (opts.starts ?? 10); i++) {
    const started = performance.now();
    const worker = new Worker("require('node:worker_threads').parentPort.postMessage(0)", { eval: true });
    await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    samples.push(performance.now() - started);
    await worker.terminate();
  }
  return { msP50: percentile(samples, 0.5) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // The full run's parameters (bench/run.ts without --quick).
  console.log(`${availableParallelism()} cores, node ${process.version}`);
  const ticks = await benchRestartTicks();
  for (const span of ticks.spans) console.log(`restart ticks ${span.ticks}: ${span.actor}, ${span.how}, crashed at ${span.crashedAt}, running at ${span.runningAt}`);
  console.log('WASM restart', await benchWasmRestart({ agents: 8, restarts: 50 }));
  console.log('worker replace, warm spare', await benchWorkerReplace({ kills: 10, agents: 8, warmMs: 1_500 }));
  console.log('worker replace, no spare', await benchWorkerReplace({ kills: 4, agents: 8, spareWorkers: 0, warmMs: 200 }));
  console.log('node new Worker', await benchWorkerStart({ starts: 10 }));
}
