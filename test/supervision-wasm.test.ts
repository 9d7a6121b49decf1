/**
 * Supervision over WASM agents and JS actors: every way an actor can crash (a JS throw, a
 * WASM trap, an unknown return code, spent fuel, the memory limit, a worker thread that
 * dies) goes the same way through its supervisor: crashed at the tick it happened,
 * restarted at the next tick boundary, initialized and running in that same tick, and the
 * new incarnation publishes again. Replay of the log reproduces the same restarts.
 *
 * Real signed modules from actors/agents/build, plus one heartbeat agent assembled from WAT
 * here and signed with the dev key, all admitted, metered and run on real worker threads.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { ReplayDivergenceError, createRuntime, defineActor, defineSystem, loadWasmAgent, replay, signPlugin, supervisor, wasmAgentFromParts, type ChildSpec, type FaultPlan, type PluginManifest, type Runtime, type SupervisorFlags, type SystemDefinition, type TickRecord, type WasmAgentDefinition } from 'lockstep';
import { readLog } from 'lockstep/log';
import { wat } from './fixtures/wat.ts';

const devKey = readFileSync(fileURLToPath(new URL('../examples/keys/dev.pub.pem', import.meta.url)), 'utf8');
const devPrivateKey = readFileSync(fileURLToPath(new URL('../examples/keys/dev.key.pem', import.meta.url)), 'utf8');
const built = (name: string) =>
  loadWasmAgent(fileURLToPath(new URL(`../actors/agents/build/${name}.wasm`, import.meta.url)));

/** A payload whose first byte is this makes a heartbeat (JS or WASM) crash on receipt. */
const poison = 0xdd;

/**
 * heartbeat (WASM): every step publishes its step count since init (u32, little-endian) to
 * `alive`; a message whose first payload byte is 0xdd hits `unreachable` (a real trap).
 * Memory is fixed at one page, so no trap of it can read as a memory limit.
 */
const heartbeatWat = `(module
  (import "lockstep" "publish" (func $publish (param i32 i32 i32 i32) (result i32)))
  (import "lockstep" "topic" (func $topic (param i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "alive")
  (global $alive (mut i32) (i32.const -1))
  (global $steps (mut i32) (i32.const 0))
  (func (export "lockstep_abi_version") (result i32) i32.const 1)
  (func (export "agent_alloc") (param i32) (result i32) i32.const 1024)
  (func (export "agent_init") (result i32)
    (global.set $alive (call $topic (i32.const 0) (i32.const 5)))
    (if (i32.lt_s (global.get $alive) (i32.const 0)) (then (return (i32.const -1))))
    i32.const 0)
  (func (export "agent_receive") (param $ptr i32) (param $len i32) (result i32)
    ;; the 16-byte header (topic, sender, seq, priority), then the payload
    (if (i32.gt_u (local.get $len) (i32.const 16))
      (then (if (i32.eq (i32.load8_u offset=16 (local.get $ptr)) (i32.const ${poison})) (then unreachable))))
    i32.const 0)
  (func (export "agent_step") (param i32) (result i32)
    (global.set $steps (i32.add (global.get $steps) (i32.const 1)))
    (i32.store (i32.const 64) (global.get $steps))
    (drop (call $publish (global.get $alive) (i32.const 64) (i32.const 4) (i32.const 0)))
    i32.const 0)
  (func (export "agent_shutdown") (result i32) i32.const 0))`;

const heartbeatManifest: PluginManifest = {
  name: 'heartbeat',
  version: '1.0.0',
  abi: 1,
  capabilities: { publish: ['alive'], subscribe: [], models: [] },
  limits: { fuelPerStep: 100_000, memoryPages: 1 },
};

/** The heartbeat module, signed with the dev key and admitted like any plugin. */
async function heartbeatAgent(): Promise<WasmAgentDefinition> {
  const bytes = wat(heartbeatWat);
  const signature = signPlugin(bytes, heartbeatManifest, devPrivateKey);
  return wasmAgentFromParts({ name: 'heartbeat.wasm', bytes, manifest: heartbeatManifest, signature });
}

const u32 = (value: number) => new Uint8Array(new Uint32Array([value]).buffer);
const readU32 = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);

/** The JS heartbeat: the same contract as the WASM one; a poison message makes it throw. */
const jsHeartbeat = defineActor<{ steps: number }>({
  name: 'js-heartbeat',
  init: () => ({ steps: 0 }),
  receive: (state, message) => {
    if (message.payload[0] === poison) throw new Error('poisoned message');
    return state;
  },
  step: (state, ctx) => {
    state.steps++;
    ctx.publish('alive', u32(state.steps));
    return state;
  },
});

interface Beat {
  tick: number;
  from: string;
  value: number;
}

/** Keeps every beat on `alive` and every count on `counts`, with the tick it arrived in. */
const monitor = defineActor<Beat[]>({
  name: 'monitor',
  subscribe: ['alive', 'counts'],
  init: () => [],
  receive: (beats, message, ctx) => {
    beats.push({ tick: ctx.tick, from: `${message.topicName}:${message.sender}`, value: readU32(message.payload) });
    return beats;
  },
});

let heartbeat: WasmAgentDefinition;
let spinner: WasmAgentDefinition;
let grower: WasmAgentDefinition;
let badCode: WasmAgentDefinition;
let counter: WasmAgentDefinition;

beforeAll(async () => {
  [heartbeat, spinner, grower, badCode, counter] = await Promise.all([heartbeatAgent(), built('spinner'), built('grower'), built('bad_code'), built('counter')]);
});

/** Enough restarts that a child crashing every other tick never exhausts them. */
const roomyFlags: SupervisorFlags = { strategy: 'one_for_one', intensity: 20, period: 10 };

/**
 * The tree every crash source runs in: `monitor` (id 1) beside `root` (id 2) over a JS
 * heartbeat `root/js` (id 3) and WASM heartbeats `root/wasm-a` (id 4, worker 0),
 * `root/wasm-b` (id 5, worker 1) and `root/wasm-c` (id 6, worker 0), then `extra` children.
 */
function crashSystem(extra: ChildSpec[] = []): SystemDefinition {
  const tree = supervisor(roomyFlags, [
    { id: 'js', start: jsHeartbeat },
    { id: 'wasm-a', start: heartbeat },
    { id: 'wasm-b', start: heartbeat },
    { id: 'wasm-c', start: heartbeat },
    ...extra,
  ]);
  return defineSystem({
    name: 'crash-sources',
    topics: ['alive', 'numbers'],
    setup: (builder) => {
      builder.spawn(monitor, { name: 'monitor' });
      builder.spawn(tree, { name: 'root' });
    },
  });
}

interface Event {
  tick: number;
  actor: string;
  from: string;
  to: string;
  detail: string;
}

interface Run {
  system: SystemDefinition;
  runtime: Runtime;
  logBytes: Uint8Array;
  records: TickRecord[];
  events: Event[];
  ticks: number;
}

/**
 * Runs `system` for `ticks` ticks with 2 workers; `before(runtime, tick)` runs before each
 * tick (to inject, request a crash, or kill a worker). Closes the runtime and reads its log.
 */
async function runFor(
  system: SystemDefinition,
  ticks: number,
  options: { faults?: FaultPlan; before?: (runtime: Runtime, tick: number) => void | Promise<void> } = {},
): Promise<Run> {
  const runtime = createRuntime(system, { seed: 11, level: 'full', trustedKeys: [devKey], workers: 2, faults: options.faults });
  try {
    for (let tick = 1; tick <= ticks; tick++) {
      await options.before?.(runtime, tick);
      await runtime.step();
    }
    await runtime.close();
  } catch (error) {
    await runtime.abandon();
    throw error;
  }
  const logBytes = runtime.logBytes();
  const records = readLog(logBytes).ticks;
  const events = records.flatMap((record) =>
    record.lifecycle.filter((event) => event.actor !== 0).map((event) => ({ tick: record.tick, actor: runtime.actorName(event.actor), from: event.from, to: event.to, detail: event.detail })),
  );
  return { system, runtime, logBytes, records, events, ticks };
}

/** `tick: from → to` of one actor's lifecycle in ticks 1..`ticks` (the run, not its shutdown). */
function lifecycle(run: Run, actor: string): string[] {
  return run.events.filter((event) => event.actor === actor && event.tick <= run.ticks && event.from !== 'none').map((event) => `${event.tick}: ${event.from} → ${event.to}`);
}

/** The lifecycle of one crash at `crashTick` and of the restart one tick later. */
function crashCycle(crashTick: number): string[] {
  return [
    `${crashTick}: running → crashed`,
    `${crashTick + 1}: crashed → restarting`,
    `${crashTick + 1}: restarting → initializing`,
    `${crashTick + 1}: initializing → running`,
  ];
}

const started = ['1: created → initializing', '1: initializing → running'];

/** The detail of `actor`'s crash at `tick`. */
function crashDetail(run: Run, actor: string, tick: number): string | undefined {
  return run.events.find((event) => event.actor === actor && event.tick === tick && event.to === 'crashed')?.detail;
}

/** Beats `actor` published, as `arrival tick: step count since its last start`. */
function beats(run: Run, actor: string): string[] {
  const id = run.runtime.actorId(actor);
  return run.runtime.actor('monitor').state<Beat[]>()!.filter((beat) => beat.from === `alive:${id}`).map((beat) => `${beat.tick}: ${beat.value}`);
}

/**
 * The beats of a heartbeat that first stepped at `firstStep`, crashed at `crashTick` and
 * stepped again from `restartStep`, as seen by the monitor up to the run's last tick (a beat
 * arrives the tick after it was published; the count starts over in a new incarnation).
 */
function expectedBeats(run: Run, firstStep: number, crashTick: number, restartStep: number): string[] {
  const seen: string[] = [];
  for (let step = firstStep; step < crashTick && step + 1 <= run.ticks; step++) seen.push(`${step + 1}: ${step - firstStep + 1}`);
  for (let step = restartStep; step + 1 <= run.ticks; step++) seen.push(`${step + 1}: ${step - restartStep + 1}`);
  return seen;
}

/** Replays the log (with `workers` threads) and expects it verified bit for bit. */
async function expectReplays(run: Run, workers = 2): Promise<void> {
  const report = await replay(run.logBytes, run.system, { trustedKeys: [devKey], workers });
  expect(report.bitExact).toBe(true);
  expect(report.ticks).toBe(run.ticks);
}

/** Sends the poison message to `actor`'s inbox: it arrives in the tick that comes next. */
function poisonInbox(runtime: Runtime, actor: string): void {
  runtime.inject(`actor/${runtime.actorId(actor)}`, new Uint8Array([poison]));
}

describe('Every crash source is handled the same way', () => {
  it('a JS actor that throws: crashed at its tick, restarted one tick later, beating again', async () => {
    const run = await runFor(crashSystem(), 8, { before: (runtime, tick) => (tick === 3 ? poisonInbox(runtime, 'root/js') : undefined) });
    expect(lifecycle(run, 'root/js')).toEqual([...started, ...crashCycle(3)]);
    expect(crashDetail(run, 'root/js', 3)).toBe('receiving actor/3 #1 from (external): Error: poisoned message');
    expect(run.events.find((e) => e.actor === 'root/js' && e.to === 'restarting')?.detail).toBe('restarted by root');
    // A JS actor steps in the tick it starts: beats from tick 1, and again from tick 4 (count from 1).
    expect(beats(run, 'root/js')).toEqual(expectedBeats(run, 1, 3, 4));
    // one_for_one: nobody else moved.
    for (const sibling of ['root/wasm-a', 'root/wasm-b', 'root/wasm-c']) expect(lifecycle(run, sibling)).toEqual(started);
    await expectReplays(run);
  });

  it('a WASM trap (unreachable on a message): the same cycle, and a fresh instance beats again', async () => {
    const run = await runFor(crashSystem(), 9, { before: (runtime, tick) => (tick === 3 ? poisonInbox(runtime, 'root/wasm-a') : undefined) });
    expect(lifecycle(run, 'root/wasm-a')).toEqual([...started, ...crashCycle(3)]);
    expect(crashDetail(run, 'root/wasm-a', 3)).toBe('trap: trap: unreachable');
    // A WASM agent inits in one tick and steps from the next: beats from 2, again from 5.
    expect(beats(run, 'root/wasm-a')).toEqual(expectedBeats(run, 2, 3, 5));
    for (const sibling of ['root/js', 'root/wasm-b', 'root/wasm-c']) expect(lifecycle(run, sibling)).toEqual(started);
    await expectReplays(run, 2);
    await expectReplays(run, 1); // the log does not depend on the worker count
  });

  it("a WASM agent crashed by the fault plan: the same cycle as a trap", async () => {
    const faults: FaultPlan = { seed: 1, faults: [{ tick: 4, kind: 'crash', actor: 'root/wasm-b' }] };
    const run = await runFor(crashSystem(), 9, { faults });
    expect(lifecycle(run, 'root/wasm-b')).toEqual([...started, ...crashCycle(4)]);
    expect(crashDetail(run, 'root/wasm-b', 4)).toBe('fault injected: crash');
    expect(beats(run, 'root/wasm-b')).toEqual(expectedBeats(run, 2, 4, 6));
    await expectReplays(run);
  });

  it('an unknown return code every step (bad_code): crashed and restarted every other tick, within the intensity', async () => {
    const run = await runFor(crashSystem([{ id: 'bad', start: badCode }]), 9);
    // Crashes in its first step (tick 2), restarts at 3, crashes in its next step (4), ...
    expect(lifecycle(run, 'root/bad')).toEqual([...started, ...crashCycle(2), ...crashCycle(4), ...crashCycle(6), ...crashCycle(8)]);
    for (const tick of [2, 4, 6, 8]) {
      expect(crashDetail(run, 'root/bad', tick)).toBe('unknown return code: unknown return code 7; ABI v2 knows 0 (ok), 1 (stop) and negative errors');
    }
    expect(run.runtime.snapshot().supervisors[0]?.state).toBe('stopped'); // closed normally, never gave up
    await expectReplays(run);
  });

  it('fuel exhausted, by a runaway loop (spinner) and by the fault plan: both the same cycle', async () => {
    const faults: FaultPlan = { seed: 1, faults: [{ tick: 5, kind: 'exhaustFuel', actor: 'root/wasm-c' }] };
    const run = await runFor(crashSystem([{ id: 'spinner', start: spinner }]), 9, { faults });
    expect(lifecycle(run, 'root/spinner')).toEqual([...started, ...crashCycle(2), ...crashCycle(4), ...crashCycle(6), ...crashCycle(8)]);
    expect(crashDetail(run, 'root/spinner', 2)).toBe('fuel exhausted: fuel exhausted: the agent used more than its 200000 fuel this tick');
    expect(lifecycle(run, 'root/wasm-c')).toEqual([...started, ...crashCycle(5)]);
    // The injected exhaustion reads exactly as a real one.
    expect(crashDetail(run, 'root/wasm-c', 5)).toBe('fuel exhausted: fuel exhausted: the agent used more than its 100000 fuel this tick');
    expect(beats(run, 'root/wasm-c')).toEqual(expectedBeats(run, 2, 5, 7));
    await expectReplays(run, 2);
    await expectReplays(run, 1);
  });

  it('the memory limit (grower grows to its declared maximum, then traps): classified, and the same cycle', async () => {
    const run = await runFor(crashSystem([{ id: 'grower', start: grower }]), 5);
    expect(lifecycle(run, 'root/grower')).toEqual([...started, ...crashCycle(2), ...crashCycle(4)]);
    expect(crashDetail(run, 'root/grower', 2)).toBe('memory limit: trapped with its memory grown to the declared maximum of 16 pages (1024 KiB): unreachable');
    expect(crashDetail(run, 'root/grower', 4)).toBe(crashDetail(run, 'root/grower', 2));
    await expectReplays(run);
  });

  it('a worker killed by the fault plan: all its agents crash, the pool replaces it, they restart and beat again', async () => {
    const faults: FaultPlan = { seed: 1, faults: [{ tick: 4, kind: 'killWorker', worker: 0 }] };
    const run = await runFor(crashSystem(), 9, { faults });
    // Worker 0 holds the even ids: wasm-a (4) and wasm-c (6); wasm-b (5) is on worker 1.
    for (const agent of ['root/wasm-a', 'root/wasm-c']) {
      expect(lifecycle(run, agent)).toEqual([...started, ...crashCycle(4)]);
      expect(crashDetail(run, agent, 4)).toBe('worker 0 killed by fault injection during tick 4');
      // Restarted on the replacement worker 0, they run and publish again.
      expect(beats(run, agent)).toEqual(expectedBeats(run, 2, 4, 6));
    }
    expect(lifecycle(run, 'root/wasm-b')).toEqual(started);
    expect(lifecycle(run, 'root/js')).toEqual(started);
    // The fault is an input: replay repeats it (with the worker count it was recorded with).
    await expectReplays(run, 2);
  });

  it('a worker killed by the fault plan takes its agents down at the same tick every run', async () => {
    // Worker termination is asynchronous: a killed worker that finished its tick before it
    // died must still count as dead at that tick, not at the next. Each kill is a chance
    // for that race, so the plan kills a worker every tick, alternating (an agent is
    // restarted in between, and its worker killed again the tick after).
    const faults: FaultPlan = { seed: 1, faults: [3, 4, 5, 6, 7, 8, 9, 10].map((tick) => ({ tick, kind: 'killWorker' as const, worker: (tick + 1) % 2 })) };
    const system = crashSystem();
    const outcomes: string[] = [];
    for (let i = 0; i < 2; i++) {
      const run = await runFor(system, 10, { faults });
      const crashes = run.events.filter((event) => event.to === 'crashed').map((event) => `${event.tick}:${event.actor}`);
      outcomes.push(`${crashes.join(' ')} ${run.runtime.chainHex}`);
    }
    const expected = [3, 4, 5, 6, 7, 8, 9, 10].flatMap((tick) => (tick % 2 === 1 ? [`${tick}:root/wasm-a`, `${tick}:root/wasm-c`] : [`${tick}:root/wasm-b`]));
    expect(outcomes[0]!.split(' ').slice(0, -1)).toEqual(expected);
    expect(new Set(outcomes).size).toBe(1);
  });

  it('a worker killed from outside (runtime.killWorker): the same cycle; the log says replay cannot reproduce it, and replay says where', async () => {
    const run = await runFor(crashSystem(), 9, { before: (runtime, tick) => (tick === 4 ? runtime.killWorker(0) : undefined) });
    for (const agent of ['root/wasm-a', 'root/wasm-c']) {
      expect(lifecycle(run, agent)).toEqual([...started, ...crashCycle(4)]);
      expect(crashDetail(run, agent, 4)).toMatch(/^worker 0 exited with code \d+ \(a nondeterministic fault: replay cannot reproduce it\)$/);
      expect(beats(run, agent)).toEqual(expectedBeats(run, 2, 4, 6));
    }
    expect(lifecycle(run, 'root/wasm-b')).toEqual(started);
    // Nothing in the log made the worker die: replay runs on and finds the difference at tick 4.
    const replayed = replay(run.logBytes, run.system, { trustedKeys: [devKey], workers: 2 });
    await expect(replayed).rejects.toThrow(ReplayDivergenceError);
    await expect(replayed).rejects.toMatchObject({ divergence: { tick: 4, actor: 'root/wasm-a' } });
  });

  it('a child that crashes faster than its supervisor allows escalates: the supervisor gives up, and a root with no restarts left fails', async () => {
    const inner = supervisor({ strategy: 'one_for_one', intensity: 1, period: 10 }, [
      { id: 'spinner', start: spinner },
      { id: 'beat', start: heartbeat },
    ]);
    const system = defineSystem({
      name: 'escalation',
      topics: ['alive'],
      setup: (builder) => {
        builder.spawn(monitor, { name: 'monitor' });
        builder.spawn(
          supervisor({ strategy: 'one_for_one', intensity: 0, period: 10 }, [
            { id: 'inner', start: inner },
            { id: 'beat', start: heartbeat },
          ]),
          { name: 'root' },
        );
      },
    });
    const run = await runFor(system, 7);
    // One restart is allowed (tick 3); the second crash (tick 4) would need another at tick 5.
    expect(lifecycle(run, 'root/inner/spinner')).toEqual([...started, ...crashCycle(2), '4: running → crashed']);
    expect(lifecycle(run, 'root/inner/beat')).toEqual([...started, '5: running → stopping', '5: stopping → stopped']);
    expect(lifecycle(run, 'root/inner')).toEqual([...started, '5: running → crashed']);
    expect(crashDetail(run, 'root/inner', 5)).toMatch(/^shutdown: reached max restart intensity \(more than 1 restarts in 10 ticks\); last exit: spinner: fuel exhausted/);
    // The exit of root/inner is the root's to handle: intensity 0, so it gives up at once.
    expect(lifecycle(run, 'root/beat')).toEqual([...started, '5: running → stopping', '5: stopping → stopped']);
    expect(lifecycle(run, 'root')).toEqual([...started, '5: running → crashed', '5: crashed → failed']);
    expect(crashDetail(run, 'root', 5)).toMatch(/^shutdown: reached max restart intensity \(more than 0 restarts in 10 ticks\); last exit: inner: shutdown: reached max restart intensity/);
    expect(run.runtime.snapshot().supervisors[0]?.state).toBe('failed');
    await expectReplays(run);
  });
});

describe('Mailbox semantics on crash', () => {
  /** `counter` (WASM, counts `numbers`, publishes the count to `counts`) under the roomy tree. */
  const counterSystem = () => crashSystem([{ id: 'counter', start: counter }]);
  const dropsOf = (run: Run, actor: string) => {
    const id = run.runtime.actorId(actor);
    return run.records.flatMap((record) => record.drops.filter((drop) => drop.actor === id).map((drop) => ({ tick: record.tick, seq: drop.seq, reason: drop.reason })));
  };
  /** Seqs of the inputs on `numbers` taken in at `tick`. */
  const numbersAt = (run: Run, tick: number) => {
    const topic = run.runtime.topic('numbers');
    return run.records.find((record) => record.tick === tick)!.injected.filter((input) => input.topic === topic).map((input) => input.seq);
  };
  const counts = (run: Run) => {
    const id = run.runtime.actorId('root/counter');
    return run.runtime.actor('monitor').state<Beat[]>()!.filter((beat) => beat.from === `counts:${id}`).map((beat) => `${beat.tick}: ${beat.value}`);
  };

  it('a WASM agent that crashes with mail queued: each message dropped with a reason and counted; the next incarnation gets new mail', async () => {
    const run = await runFor(counterSystem(), 10, {
      before: (runtime, tick) => {
        if (tick === 3) runtime.actor('root/counter').suspend(); // takes mail, is not scheduled: mail queues up
        if (tick === 6) runtime.actor('root/counter').crash();
        runtime.inject('numbers', u32(tick));
      },
    });
    expect(lifecycle(run, 'root/counter')).toEqual([...started, '3: running → suspended', '6: suspended → crashed', ...crashCycle(6).slice(1)]);
    expect(crashDetail(run, 'root/counter', 6)).toBe('fault injected: crash');
    // Queued at ticks 3, 4 and 5, and the one arriving at 6 (the crash is applied first): all
    // dropped at 6, each with its own record.
    const queued = [3, 4, 5, 6].flatMap((tick) => numbersAt(run, tick));
    expect(queued).toHaveLength(4);
    expect(dropsOf(run, 'root/counter')).toEqual(queued.map((seq) => ({ tick: 6, seq, reason: 'recipient crashed' })));
    const view = run.runtime.snapshot().actors.find((actor) => actor.name === 'root/counter')!;
    expect(view.dropped).toBe(4);
    // Before: the numbers of ticks 1 and 2, counted at 2. After the restart at 7 (init), it
    // gets the numbers of 7 and 8 at tick 8 and counts from zero: 2, not 7.
    expect(counts(run)).toEqual(['3: 2', '9: 2', '10: 3']);
    await expectReplays(run);
  });

  it('messages handed to a WASM agent that crashes mid-batch: the rest are dropped with a reason; nothing goes missing', async () => {
    const faults: FaultPlan = { seed: 1, faults: [{ tick: 4, kind: 'exhaustFuel', actor: 'root/counter' }] };
    const run = await runFor(counterSystem(), 8, {
      faults,
      before: (runtime, tick) => {
        if (tick === 4) for (let i = 0; i < 3; i++) runtime.inject('numbers', u32(100 + i));
        else runtime.inject('numbers', u32(tick));
      },
    });
    expect(lifecycle(run, 'root/counter')).toEqual([...started, ...crashCycle(4)]);
    expect(crashDetail(run, 'root/counter', 4)).toMatch(/^fuel exhausted: /);
    // The first of the three traps on its way in (it was handed over); the other two never ran.
    const [, ...unprocessed] = numbersAt(run, 4);
    expect(unprocessed).toHaveLength(2);
    expect(dropsOf(run, 'root/counter')).toEqual(unprocessed.map((seq) => ({ tick: 4, seq, reason: 'recipient crashed before processing it' })));
    expect(run.runtime.snapshot().actors.find((actor) => actor.name === 'root/counter')!.dropped).toBe(2);
    // Restarted at 5 (the number of 5 waits in its mailbox), it counts 5 and 6 at tick 6.
    expect(counts(run)).toEqual(['3: 2', '4: 3', '7: 2', '8: 3']);
    await expectReplays(run);
  });
});
