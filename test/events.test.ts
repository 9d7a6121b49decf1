// The event bus (what each tick did, after the tick) and the actor handle (one registry).
import { describe, expect, it } from 'vitest';
import { ArgumentError, RuntimeClosedError, TickInProgressError, UsageError, createRuntime, defineActor, defineSystem, pino, replay, supervisor, type RuntimeEvent } from 'lockstep';
import { readLog } from 'lockstep/log';

const bytes = (...values: number[]) => new Uint8Array(values);

/** Crashes on a message whose first byte is 0xff; counts the others. */
const worker = defineActor({
  name: 'worker',
  subscribe: ['work'],
  init: () => 0,
  receive: (n, message) => {
    if (message.payload[0] === 0xff) throw new Error('bad job');
    return n + 1;
  },
});

/** Publishes one job a tick to a mailbox of two, so the third is refused. */
const flooder = defineActor({
  name: 'flooder',
  init: () => 0,
  receive: (n) => n,
  step: (n, ctx) => {
    for (let i = 0; i < 3; i++) ctx.send('slow', bytes(i));
    return n + 1;
  },
});
const slow = defineActor({ name: 'slow', init: () => 0, receive: (n) => n + 1 });

function tree(intensity = 3) {
  return defineSystem({
    name: 'events',
    topics: ['work'],
    setup: (b) => void b.spawn(supervisor({ strategy: 'one_for_one', intensity, period: 10 }, [{ id: 'w', start: worker }]), { name: 'root' }),
  });
}

describe('the event bus', () => {
  it('tells each tick after its record is logged, with the record and its bytes', async () => {
    const runtime = createRuntime(tree(), { level: 'full' });
    const ticks: number[] = [];
    let logged = 0;
    runtime.events.on('tick', (event) => {
      ticks.push(event.tick);
      expect(event.record.tick).toBe(event.tick);
      expect(event.bytes.length).toBeGreaterThan(0);
      // The record is in the log already when the listener runs.
      logged = readLog(runtime.logBytes()).ticks.length;
    });
    await runtime.run(3);
    expect(ticks).toEqual([1, 2, 3]);
    expect(logged).toBe(3);
    await runtime.close();
    // The shutdown record is a tick of the log too.
    expect(ticks).toEqual([1, 2, 3, 4]);
  });

  it('tells lifecycle transitions, drops, supervision decisions and faults, each at its tick, in order', async () => {
    const runtime = createRuntime(tree(), { faults: { seed: 1, faults: [{ tick: 4, kind: 'crash', actor: 'root/w' }, { tick: 6, kind: 'crash', actor: 'nobody' }] } });
    const events: RuntimeEvent[] = [];
    runtime.events.onAny((event) => {
      if (event.kind !== 'tick') events.push(event);
    });
    await runtime.step();
    runtime.inject('work', bytes(0xff));
    await runtime.run(6);
    const crashes = events.filter((e) => e.kind === 'lifecycle' && e.to === 'crashed');
    expect(crashes.map((e) => [e.tick, e.kind === 'lifecycle' && e.actor])).toEqual([
      [2, 'root/w'],
      [4, 'root/w'],
    ]);
    const decisions = events.filter((e) => e.kind === 'supervision');
    expect(decisions).toEqual([
      { kind: 'supervision', tick: 3, supervisor: 'root', decision: 'restart', children: ['root/w'], reason: expect.stringMatching(/^w: receiving work #1 from \(external\): Error: bad job$/) },
      { kind: 'supervision', tick: 5, supervisor: 'root', decision: 'restart', children: ['root/w'], reason: expect.stringMatching(/^w: fault injected: /) },
    ]);
    const faults = events.filter((e) => e.kind === 'fault');
    expect(faults).toEqual([
      { kind: 'fault', tick: 4, fault: 'crash', target: 'root/w', applied: true, reason: '' },
      { kind: 'fault', tick: 6, fault: 'crash', target: 'nobody', applied: false, reason: expect.stringMatching(/^refused: fault plan, crash at tick 6: no actor named 'nobody'/) },
    ]);
    // The refused fault is a drop of tick 6 too (an input refused before it entered).
    expect(events.filter((e) => e.kind === 'drop').map((e) => e.tick)).toContain(6);
    // Within a tick, in the order things happened: the crash, then the restart decision a tick later.
    const ticksInOrder = events.map((e) => e.tick);
    expect([...ticksInOrder].sort((a, b) => a - b)).toEqual(ticksInOrder);
    await runtime.close();
  });

  it('tells a supervisor that gives up, with the children it stops in stop order', async () => {
    const twoChildren = defineSystem({
      name: 'give-up',
      topics: ['work'],
      setup: (b) =>
        void b.spawn(supervisor({ strategy: 'one_for_one', intensity: 0, period: 10 }, [{ id: 'a', start: worker }, { id: 'b', start: slow }]), { name: 'root' }),
    });
    const runtime = createRuntime(twoChildren);
    const decisions: RuntimeEvent[] = [];
    runtime.events.on('supervision', (event) => decisions.push(event));
    await runtime.step();
    runtime.inject('work', bytes(0xff));
    await runtime.run(3);
    expect(decisions).toEqual([
      {
        kind: 'supervision',
        tick: 3,
        supervisor: 'root',
        decision: 'give_up',
        children: ['root/b', 'root/a'],
        reason: expect.stringMatching(/^shutdown: reached max restart intensity/),
      },
    ]);
    await runtime.close();
  });

  it('tells a refused publish as a drop with the reason the log has', async () => {
    const runtime = createRuntime(
      defineSystem({
        name: 'refusals',
        setup: (b) => {
          b.spawn(slow, { name: 'slow', mailboxCapacity: 2 });
          b.spawn(flooder, { name: 'flooder' });
        },
      }),
    );
    const drops: RuntimeEvent[] = [];
    runtime.events.on('drop', (event) => drops.push(event));
    await runtime.run(2);
    expect(drops[0]).toEqual({ kind: 'drop', tick: 1, actor: 'slow', topic: 'actor/1', sender: 'flooder', seq: 0, reason: 'refused: mailbox full, sender told' });
    const logged = readLog((await runtime.close(), runtime.logBytes())).ticks.flatMap((t) => t.drops.map((d) => `${t.tick}:${d.reason}`));
    expect(drops.map((d) => `${d.tick}:${d.kind === 'drop' && d.reason}`)).toEqual(logged.slice(0, drops.length));
  });

  it('a listener that throws is reported, the others still run, and the run is the same', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => void lines.push(line) });
    const quiet = createRuntime(tree(), { seed: 3 });
    await quiet.run(5);
    const noisy = createRuntime(tree(), { seed: 3, logger });
    let calls = 0;
    noisy.events.on('tick', () => {
      throw new Error('listener bug');
    });
    noisy.events.on('tick', () => void calls++);
    await noisy.run(5);
    expect(calls).toBe(5);
    expect(noisy.events.listenerErrors).toBe(5);
    expect(lines.some((line) => line.includes("an event listener threw on the 'tick' event of tick 1; the run goes on"))).toBe(true);
    expect(await noisy.close()).toBe(await quiet.close());
  });

  it('a listener cannot change the run: an inject from inside one is refused', async () => {
    const runtime = createRuntime(tree());
    const refusals: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => void refusals.push(line) });
    const guarded = createRuntime(tree(), { logger });
    guarded.events.on('tick', () => guarded.inject('work', bytes(1)));
    await guarded.run(2);
    expect(refusals.some((line) => line.includes('a tick is still running'))).toBe(true);
    await runtime.run(2);
    expect(await guarded.close()).toBe(await runtime.close());
  });

  it('unsubscribes, and refuses an unknown kind', async () => {
    const runtime = createRuntime(tree());
    let seen = 0;
    const off = runtime.events.on('tick', () => void seen++);
    await runtime.step();
    off();
    await runtime.step();
    expect(seen).toBe(1);
    expect(() => runtime.events.on('ticks' as 'tick', () => {})).toThrow(/unknown event kind "ticks"; kinds: tick, lifecycle, drop/);
    await runtime.close();
  });

  it('replay reads the same ticks through the bus of its own runtime', async () => {
    const runtime = createRuntime(tree(), { level: 'full' });
    await runtime.step();
    runtime.inject('work', bytes(0xff));
    await runtime.run(4);
    await runtime.close();
    expect((await replay(runtime.logBytes(), tree())).bitExact).toBe(true);
  });
});

describe('worker events', () => {
  it('tells a WASM worker that died under a killWorker fault, with its agents, and the one that took its place', async () => {
    const { loadWasmAgent, sampleAgentPath, sampleKeyPem } = await import('lockstep');
    const counter = await loadWasmAgent(sampleAgentPath('counter'));
    const system = defineSystem({
      name: 'worker-events',
      setup: (b) => void b.spawn(supervisor({ strategy: 'one_for_one', intensity: 5, period: 10 }, [{ id: 'c0', start: counter }, { id: 'c1', start: counter }]), { name: 'root' }),
    });
    const runtime = createRuntime(system, { workers: 2, trustedKeys: [sampleKeyPem()], faults: { seed: 1, faults: [{ tick: 3, kind: 'killWorker', worker: 0 }] } });
    const events: RuntimeEvent[] = [];
    runtime.events.on('worker', (event) => events.push(event));
    runtime.events.on('fault', (event) => events.push(event));
    await runtime.run(5);
    await runtime.close();
    // Actor ids: root 1, root/c0 2 (worker 0), root/c1 3 (worker 1).
    expect(events).toEqual([
      { kind: 'fault', tick: 3, fault: 'killWorker', target: 'worker 0', applied: true, reason: '' },
      { kind: 'worker', tick: 3, worker: 0, change: 'died', agents: ['root/c0'], reason: 'worker 0 killed by fault injection during tick 3' },
      { kind: 'worker', tick: 3, worker: 0, change: 'replaced', agents: [], reason: 'a new worker took the place of worker 0' },
    ]);
  });
});

describe('actor handles', () => {
  it('give id, kind, lifecycle and a JS actor state; requests go in at the next tick', async () => {
    const runtime = createRuntime(tree(), { level: 'full' });
    await runtime.step();
    const w = runtime.actor('root/w');
    expect([w.id, w.name, w.kind, w.lifecycle()]).toEqual([2, 'root/w', 'js', 'running']);
    runtime.inject('work', bytes(1));
    await runtime.step();
    expect(w.state<number>()).toBe(1);
    w.suspend();
    expect(w.lifecycle()).toBe('running');
    await runtime.step();
    expect(w.lifecycle()).toBe('suspended');
    w.resume();
    await runtime.step();
    expect(w.lifecycle()).toBe('running');
    w.crash();
    await runtime.step();
    expect(w.lifecycle()).toBe('crashed');
    await runtime.step();
    expect(w.lifecycle()).toBe('running');
    expect(runtime.actor('root').kind).toBe('supervisor');
    await runtime.close();
    expect((await replay(runtime.logBytes(), tree())).bitExact).toBe(true);
  });

  it('say what a kind cannot do', async () => {
    const runtime = createRuntime(tree());
    const root = runtime.actor('root');
    expect(() => root.state()).toThrow(UsageError);
    expect(() => root.state()).toThrow("'root' is a supervisor: it has no state value; see runtime.snapshot()");
    expect(() => root.suspend()).toThrow("suspend: 'root' is a supervisor, which takes no suspend request");
    expect(() => runtime.actor('root/w').exhaustFuel()).toThrow("exhaustFuel: 'root/w' is a JS actor, which takes no exhaustFuel request");
    expect(() => runtime.actor('nobody')).toThrow(/no actor named 'nobody'/);
    await runtime.close();
    expect(() => runtime.actor('root/w').stop()).toThrow(/stop: the runtime is closed/);
  });
});

describe('misuse is a UsageError that names what was received', () => {
  it('a closed runtime, a tick in progress, a wrong argument', async () => {
    const runtime = createRuntime(tree());
    await expect(runtime.run('10' as unknown as number)).rejects.toThrow(new ArgumentError("run: ticks must be an integer >= 0, got the string '10'"));
    await expect(runtime.run(-1)).rejects.toThrow("run: ticks must be an integer >= 0, got the number -1");
    expect(() => runtime.inject('work', 'text' as unknown as Uint8Array)).toThrow("inject takes a Uint8Array payload, got the string 'text'; use injectJson for values");
    expect(() => runtime.inject('work', new Uint8Array(1), { priority: 256 })).toThrow(ArgumentError);
    const ticking = runtime.step();
    expect(() => runtime.inject('work', new Uint8Array(1))).toThrow(TickInProgressError);
    await expect(runtime.close()).rejects.toThrow(TickInProgressError);
    await ticking;
    await runtime.close();
    await expect(runtime.step()).rejects.toThrow(RuntimeClosedError);
    expect(() => runtime.inject('work', new Uint8Array(1))).toThrow(new RuntimeClosedError('inject'));
    for (const error of [new RuntimeClosedError('x'), new TickInProgressError('x'), new ArgumentError('x')]) {
      expect(error).toBeInstanceOf(UsageError);
      expect(['runtime_closed', 'tick_in_progress', 'invalid_argument']).toContain(error.code);
    }
  });
});
