/**
 * Supervision trees, one test per behaviour the OTP `supervisor` documentation describes
 * (erlang.org/doc/man/supervisor, "Supervision Principles"), on logical ticks: start
 * order, shutdown order, the four strategies, the three restart types, the restart
 * intensity and escalation, plus lockstep's backoff, the dynamic-child verbs and the
 * errors for bad specs. Every test reads what happened from the tick records, the same
 * lifecycle events the replay log holds.
 */
import { describe, expect, it } from 'vitest';
import {
  createRuntime,
  defineActor,
  defineSystem,
  replay,
  supervisor,
  SupervisorError,
  type ChildSpec,
  type Runtime,
  type SupervisorSpec,
  type TickRecord,
} from 'lockstep';

/** A worker that counts its steps and keeps what it got; "crash" makes it throw. */
const worker = defineActor<{ steps: number; got: string[] }, unknown>({
  name: 'worker',
  init: () => ({ steps: 0, got: [] }),
  receive: (state, message) => {
    const text = new TextDecoder().decode(message.payload);
    if (text === 'crash') throw new Error('asked to crash');
    return { ...state, got: [...state.got, text] };
  },
  step: (state) => ({ ...state, steps: state.steps + 1 }),
});

/** Starts once; every later start (a restart) throws in init. */
const startsOnce = defineActor<number>({
  name: 'starts-once',
  init: (ctx) => {
    if (ctx.incarnation > 0) throw new Error('cannot start again');
    return 0;
  },
  receive: (state, message) => {
    if (new TextDecoder().decode(message.payload) === 'crash') throw new Error('asked to crash');
    return state;
  },
});

/** Throws in init on every start. */
const brokenInit = defineActor<number>({
  name: 'broken',
  init: () => {
    throw new Error('cannot start');
  },
  receive: (state) => state,
});

/** Stops itself normally (returns through its stop hook) when it gets "stop". */
const quitter = defineActor<number>({
  name: 'quitter',
  init: () => 0,
  receive: (state, message) => {
    if (new TextDecoder().decode(message.payload) === 'crash') throw new Error('asked to crash');
    return state + 1;
  },
});

interface Event {
  tick: number;
  actor: string;
  from: string;
  to: string;
  detail: string;
}

/** Runs a system around `tree` and collects every lifecycle event, by actor name. */
class Harness {
  readonly runtime: Runtime;
  readonly events: Event[] = [];
  readonly records: TickRecord[] = [];

  constructor(tree: SupervisorSpec, setup?: (builder: Parameters<Parameters<typeof defineSystem>[0]['setup']>[0]) => void) {
    const system = defineSystem({
      name: 'supervision-test',
      setup: (builder) => {
        setup?.(builder);
        builder.spawn(tree, { name: 'root' });
      },
    });
    this.system = system;
    this.runtime = createRuntime(system, { level: 'full' });
    this.runtime.events.on('tick', (event) => this.collect(event.record));
  }

  readonly system;

  private collect(record: TickRecord): void {
    this.records.push(record);
    for (const event of record.lifecycle) {
      this.events.push({ tick: record.tick, actor: this.runtime.actorName(event.actor), from: event.from, to: event.to, detail: event.detail });
    }
  }

  async step(ticks = 1): Promise<void> {
    for (let i = 0; i < ticks; i++) await this.runtime.step();
  }

  /** Sends `text` to actor `name` (delivered at the next tick). */
  send(name: string, text: string): void {
    this.runtime.inject(`actor/${this.runtime.actorId(name)}`, new TextEncoder().encode(text));
  }

  /** Events at `tick` as "actor:to", in log order. */
  at(tick: number, filter?: (event: Event) => boolean): string[] {
    return this.events.filter((e) => e.tick === tick && (filter === undefined || filter(e))).map((e) => `${e.actor}:${e.to}`);
  }

  /** The states `actor` went through, in order. */
  path(actor: string): string[] {
    return this.events.filter((e) => e.actor === actor).map((e) => e.to);
  }

  state(actor: string): string {
    return this.runtime.snapshot().actors.find((a) => a.name === actor)!.lifecycle;
  }
}

const stops = (event: Event) => event.to === 'stopped';
const restarts = (event: Event) => event.to === 'restarting';

describe('supervision: start and shutdown order', () => {
  it('starts children in the order of the spec, a nested supervisor with its children before the next sibling', async () => {
    const tree = supervisor({ strategy: 'one_for_one' }, [
      { id: 'a', start: worker },
      { id: 'sub', start: supervisor({ strategy: 'one_for_one' }, [{ id: 'b', start: worker }, { id: 'c', start: worker }]) },
      { id: 'd', start: worker },
    ]);
    const h = new Harness(tree);
    await h.step();
    expect(h.at(1, (e) => e.to === 'initializing')).toEqual([
      'root:initializing',
      'root/a:initializing',
      'root/sub:initializing',
      'root/sub/b:initializing',
      'root/sub/c:initializing',
      'root/d:initializing',
    ]);
    expect(h.runtime.snapshot().actors.every((a) => a.lifecycle === 'running')).toBe(true);
  });

  it('stops the tree in reverse start order on shutdown, each supervisor after its children', async () => {
    const tree = supervisor({ strategy: 'one_for_one' }, [
      { id: 'a', start: worker },
      { id: 'sub', start: supervisor({ strategy: 'one_for_one' }, [{ id: 'b', start: worker }, { id: 'c', start: worker }]) },
      { id: 'd', start: worker },
    ]);
    const h = new Harness(tree);
    await h.step(2);
    await h.runtime.close();
    const last = h.records[h.records.length - 1]!.tick;
    expect(h.at(last, stops)).toEqual(['root/d:stopped', 'root/sub/c:stopped', 'root/sub/b:stopped', 'root/sub:stopped', 'root/a:stopped', 'root:stopped']);
  });

  it('stops a child added by startChild in its place in the reverse order, before the older children', async () => {
    const sub = supervisor({ strategy: 'one_for_one' }, [{ id: 'b', start: worker }]);
    const tree = supervisor({ strategy: 'one_for_one' }, [{ id: 'sub', start: sub }, { id: 'z', start: worker }]);
    const h = new Harness(tree);
    await h.step();
    h.runtime.supervisor('root/sub').startChild({ id: 'late', start: worker });
    await h.step();
    await h.runtime.close();
    const last = h.records[h.records.length - 1]!.tick;
    expect(h.at(last, stops)).toEqual(['root/z:stopped', 'root/sub/late:stopped', 'root/sub/b:stopped', 'root/sub:stopped', 'root:stopped']);
  });
});

describe('supervision: restart strategies', () => {
  const three = (strategy: 'one_for_one' | 'one_for_all' | 'rest_for_one') =>
    supervisor({ strategy, intensity: 5, period: 10 }, [
      { id: 'a', start: worker },
      { id: 'b', start: worker },
      { id: 'c', start: worker },
    ]);

  it('one_for_one restarts only the child that crashed, at the next tick', async () => {
    const h = new Harness(three('one_for_one'));
    await h.step(2);
    h.send('root/b', 'crash');
    await h.step(2);
    expect(h.at(3)).toEqual(['root/b:crashed']);
    expect(h.at(4)).toEqual(['root/b:restarting', 'root/b:initializing', 'root/b:running']);
    expect(h.path('root/a')).toEqual(['created', 'initializing', 'running']);
  });

  it('one_for_all stops the other children in reverse order, then restarts all of them in order', async () => {
    const h = new Harness(three('one_for_all'));
    await h.step(2);
    h.send('root/b', 'crash');
    await h.step(2);
    expect(h.at(4, stops)).toEqual(['root/c:stopped', 'root/a:stopped']);
    expect(h.at(4, restarts)).toEqual(['root/a:restarting', 'root/b:restarting', 'root/c:restarting']);
    expect(['root/a', 'root/b', 'root/c'].map((name) => h.state(name))).toEqual(['running', 'running', 'running']);
  });

  it('rest_for_one stops the children started after the crashed one (reverse order) and restarts it and them in order', async () => {
    const h = new Harness(
      supervisor({ strategy: 'rest_for_one', intensity: 5, period: 10 }, [
        { id: 'a', start: worker },
        { id: 'b', start: worker },
        { id: 'c', start: worker },
        { id: 'd', start: worker },
      ]),
    );
    await h.step(2);
    h.send('root/b', 'crash');
    await h.step(2);
    expect(h.at(4, stops)).toEqual(['root/d:stopped', 'root/c:stopped']);
    expect(h.at(4, restarts)).toEqual(['root/b:restarting', 'root/c:restarting', 'root/d:restarting']);
    expect(h.path('root/a')).toEqual(['created', 'initializing', 'running']);
  });

  it('simple_one_for_one starts children from its template with startChild and restarts only the one that crashed', async () => {
    const h = new Harness(supervisor({ strategy: 'simple_one_for_one', intensity: 5, period: 10 }, [{ id: 'conn', start: worker }]));
    await h.step();
    expect(h.runtime.supervisor('root').countChildren()).toEqual({ specs: 0, active: 0, supervisors: 0, workers: 0 });
    const first = h.runtime.supervisor('root').startChild({ user: 1 });
    const second = h.runtime.supervisor('root').startChild({ user: 2 });
    expect([first, second]).toEqual(['root/conn-1', 'root/conn-2']);
    await h.step();
    expect(h.runtime.supervisor('root').countChildren()).toEqual({ specs: 2, active: 2, supervisors: 0, workers: 2 });
    h.send(second, 'crash');
    await h.step(2);
    expect(h.path(second)).toEqual(['created', 'initializing', 'running', 'crashed', 'restarting', 'initializing', 'running']);
    expect(h.path(first)).toEqual(['created', 'initializing', 'running']);
  });

  it('simple_one_for_one forgets a child that terminateChild stopped', async () => {
    const h = new Harness(supervisor({ strategy: 'simple_one_for_one' }, [{ id: 'conn', start: worker }]));
    const name = h.runtime.supervisor('root').startChild(undefined);
    await h.step();
    h.runtime.supervisor('root').terminateChild('conn-1');
    await h.step();
    expect(h.state(name)).toBe('stopped');
    expect(h.runtime.supervisor('root').whichChildren()).toEqual([]);
  });
});

describe('supervision: restart types', () => {
  it('restarts a permanent child even after a normal exit', async () => {
    const h = new Harness(supervisor({ strategy: 'one_for_one' }, [{ id: 'p', start: quitter, restart: 'permanent' }]));
    await h.step(2);
    h.runtime.actor('root/p').stop();
    await h.step(2);
    expect(h.path('root/p').slice(3)).toEqual(['stopping', 'stopped', 'restarting', 'initializing', 'running']);
  });

  it('restarts a transient child only after an abnormal exit', async () => {
    const h = new Harness(
      supervisor({ strategy: 'one_for_one', intensity: 5 }, [
        { id: 'crashes', start: quitter, restart: 'transient' },
        { id: 'stops', start: quitter, restart: 'transient' },
      ]),
    );
    await h.step(2);
    h.send('root/crashes', 'crash');
    h.runtime.actor('root/stops').stop();
    await h.step(3);
    expect(h.state('root/crashes')).toBe('running');
    expect(h.path('root/crashes')).toContain('restarting');
    expect(h.state('root/stops')).toBe('stopped');
    // OTP keeps a transient child's spec after a normal exit: it can be restarted by hand.
    expect(h.runtime.supervisor('root').whichChildren().map((c) => [c.id, c.state])).toEqual([
      ['crashes', 'running'],
      ['stops', 'stopped'],
    ]);
  });

  it('never restarts a temporary child, and removes it from the supervisor when it exits', async () => {
    const h = new Harness(supervisor({ strategy: 'one_for_one' }, [{ id: 't', start: quitter, restart: 'temporary' }, { id: 'w', start: worker }]));
    await h.step(2);
    h.send('root/t', 'crash');
    await h.step(3);
    expect(h.state('root/t')).toBe('crashed');
    expect(h.runtime.supervisor('root').whichChildren().map((c) => c.id)).toEqual(['w']);
  });

  it('one_for_all stops a temporary sibling and does not restart it', async () => {
    const h = new Harness(
      supervisor({ strategy: 'one_for_all', intensity: 5 }, [
        { id: 'a', start: worker },
        { id: 't', start: worker, restart: 'temporary' },
        { id: 'b', start: worker },
      ]),
    );
    await h.step(2);
    h.send('root/a', 'crash');
    await h.step(2);
    expect(h.state('root/t')).toBe('stopped');
    expect(h.at(4, restarts)).toEqual(['root/a:restarting', 'root/b:restarting']);
    expect(h.runtime.supervisor('root').whichChildren().map((c) => c.id)).toEqual(['a', 'b']);
  });
});

describe('supervision: restart intensity and escalation', () => {
  it('gives up after more than `intensity` restarts within `period` ticks: stops its children in reverse order, and a root fails', async () => {
    const h = new Harness(
      supervisor({ strategy: 'one_for_one', intensity: 2, period: 10 }, [
        { id: 'a', start: worker },
        { id: 'b', start: worker },
        { id: 'c', start: worker },
      ]),
    );
    await h.step();
    for (let i = 0; i < 3; i++) {
      h.send('root/b', 'crash');
      await h.step(2);
    }
    // Crashes at ticks 2, 4, 6: the first two are restarted, the third is one too many.
    expect(h.events.filter((e) => e.actor === 'root/b' && e.to === 'restarting').map((e) => e.tick)).toEqual([3, 5]);
    expect(h.at(7, stops)).toEqual(['root/c:stopped', 'root/a:stopped']);
    expect(h.path('root').slice(-2)).toEqual(['crashed', 'failed']);
    expect(h.events.find((e) => e.actor === 'root' && e.to === 'crashed')!.detail).toMatch(/reached max restart intensity/);
    expect(h.runtime.snapshot().supervisors[0]!.state).toBe('failed');
  });

  it('forgets restarts older than `period` ticks, so a slow trickle of crashes never escalates', async () => {
    const h = new Harness(supervisor({ strategy: 'one_for_one', intensity: 1, period: 3 }, [{ id: 'a', start: worker }]));
    await h.step();
    for (let i = 0; i < 6; i++) {
      h.send('root/a', 'crash');
      await h.step(3);
    }
    expect(h.events.filter((e) => e.actor === 'root/a' && e.to === 'restarting')).toHaveLength(6);
    expect(h.state('root')).toBe('running');
  });

  it('with intensity 0 gives up at the first exit that needs a restart', async () => {
    const h = new Harness(supervisor({ strategy: 'one_for_one', intensity: 0 }, [{ id: 'a', start: worker }]));
    await h.step();
    h.send('root/a', 'crash');
    await h.step(2);
    expect(h.path('root/a')).not.toContain('restarting');
    expect(h.state('root')).toBe('failed');
  });

  it('escalates to the parent, which restarts the failed supervisor with all its children and counts it as one restart', async () => {
    const inner = supervisor({ strategy: 'one_for_one', intensity: 0 }, [{ id: 'x', start: worker }, { id: 'y', start: worker }]);
    const h = new Harness(supervisor({ strategy: 'one_for_one', intensity: 3, period: 20 }, [{ id: 'inner', start: inner }, { id: 'z', start: worker }]));
    await h.step();
    h.send('root/inner/y', 'crash');
    await h.step(3);
    // tick 2: y crashes; tick 3: inner gives up (stops x), crashes; root restarts it with x and y.
    expect(h.at(3)).toEqual([
      'root/inner/x:stopping',
      'root/inner/x:stopped',
      'root/inner:crashed',
      'root/inner:restarting',
      'root/inner/x:restarting',
      'root/inner/y:restarting',
      'root/inner:initializing',
      'root/inner:running',
      'root/inner/x:initializing',
      'root/inner/x:running',
      'root/inner/y:initializing',
      'root/inner/y:running',
    ]);
    expect(h.runtime.snapshot().supervisors[0]!.restarts).toBe(1);
    expect(h.path('root/z')).toEqual(['created', 'initializing', 'running']);
  });

  it('escalates all the way up when every level gives up, and nothing hangs', async () => {
    const inner = supervisor({ strategy: 'one_for_one', intensity: 0 }, [{ id: 'x', start: worker }]);
    const middle = supervisor({ strategy: 'one_for_one', intensity: 0 }, [{ id: 'inner', start: inner }]);
    const h = new Harness(supervisor({ strategy: 'one_for_one', intensity: 0 }, [{ id: 'middle', start: middle }]));
    await h.step();
    h.send('root/middle/inner/x', 'crash');
    await h.step(3);
    expect(h.state('root')).toBe('failed');
    expect(h.at(3, (e) => e.to === 'crashed')).toEqual(['root/middle/inner:crashed', 'root/middle:crashed', 'root:crashed']);
    expect(h.runtime.snapshot().actors.filter((a) => a.lifecycle === 'running')).toEqual([]);
  });
});

describe('supervision: failing starts', () => {
  it('fails its own start when a child cannot start, stopping the children it started (reverse order)', async () => {
    const h = new Harness(
      supervisor({ strategy: 'one_for_one', intensity: 10 }, [
        { id: 'a', start: worker },
        { id: 'b', start: worker },
        { id: 'broken', start: brokenInit },
      ]),
    );
    await h.step(2);
    expect(h.at(2, stops)).toEqual(['root/b:stopped', 'root/a:stopped']);
    expect(h.events.find((e) => e.actor === 'root' && e.to === 'crashed')!.detail).toMatch(/failed to start child 'broken'.*cannot start/);
    expect(h.state('root')).toBe('failed');
    await h.step(5);
    expect(h.events.filter((e) => e.tick > 2)).toEqual([]);
  });

  it('retries a child that throws in init on every restart until the intensity is spent, then escalates', async () => {
    const h = new Harness(supervisor({ strategy: 'one_for_one', intensity: 3, period: 100 }, [{ id: 'a', start: worker }, { id: 'flaky', start: startsOnce }]));
    await h.step();
    h.send('root/flaky', 'crash');
    await h.step(10);
    // Crash at tick 2; restarts at 3, 4, 5 each fail in init; the fourth restart is one too many.
    expect(h.events.filter((e) => e.actor === 'root/flaky' && e.to === 'restarting').map((e) => e.tick)).toEqual([3, 4, 5]);
    expect(h.events.filter((e) => e.actor === 'root/flaky' && e.to === 'crashed').map((e) => e.tick)).toEqual([2, 3, 4, 5]);
    expect(h.at(6, stops)).toEqual(['root/a:stopped']);
    expect(h.state('root')).toBe('failed');
  });

  it('a dynamically started child that cannot start is removed, and the supervisor goes on', async () => {
    const h = new Harness(supervisor({ strategy: 'one_for_one' }, [{ id: 'a', start: worker }]), (builder) => builder.register(brokenInit));
    await h.step();
    h.runtime.supervisor('root').startChild({ id: 'dyn', start: brokenInit });
    await h.step(3);
    expect(h.state('root')).toBe('running');
    expect(h.runtime.supervisor('root').whichChildren().map((c) => c.id)).toEqual(['a']);
  });
});

describe('supervision: backoff', () => {
  it('waits `initial` ticks before a restart, growing by `factor` per restart within the period, up to `max`', async () => {
    const h = new Harness(
      supervisor({ strategy: 'one_for_one', intensity: 10, period: 1000, backoff: { initial: 2, max: 5, factor: 2 } }, [{ id: 'a', start: worker }]),
    );
    await h.step();
    const crashTicks: number[] = [];
    for (let i = 0; i < 4; i++) {
      h.send('root/a', 'crash');
      await h.step();
      crashTicks.push(h.runtime.tick);
      while (h.state('root/a') !== 'running') await h.step();
    }
    const restartTicks = h.events.filter((e) => e.actor === 'root/a' && e.to === 'restarting').map((e) => e.tick);
    expect(restartTicks.map((tick, i) => tick - crashTicks[i]!)).toEqual([2, 4, 5, 5]);
  });
});

describe('supervision: verbs for dynamic children', () => {
  const tree = () => supervisor({ strategy: 'one_for_one' }, [{ id: 'a', start: worker }]);

  it('startChild adds a child at the end and starts it at the next tick; already_started and already_present refuse a reused id', async () => {
    const h = new Harness(tree());
    await h.step();
    const sup = h.runtime.supervisor('root');
    expect(sup.startChild({ id: 'b', start: worker, args: { n: 1 } })).toBe('root/b');
    await h.step();
    expect(sup.whichChildren().map((c) => [c.id, c.name, c.type, c.state])).toEqual([
      ['a', 'root/a', 'worker', 'running'],
      ['b', 'root/b', 'worker', 'running'],
    ]);
    expect(() => sup.startChild({ id: 'b', start: worker })).toThrow(expect.objectContaining({ code: 'supervisor_already_started' }));
    sup.terminateChild('b');
    await h.step();
    expect(() => sup.startChild({ id: 'b', start: worker })).toThrow(expect.objectContaining({ code: 'supervisor_already_present' }));
  });

  it('terminateChild stops a child and keeps its spec; restartChild starts it again; deleteChild removes it', async () => {
    const h = new Harness(tree());
    await h.step();
    const sup = h.runtime.supervisor('root');
    sup.terminateChild('a');
    await h.step();
    expect(sup.whichChildren()[0]!.state).toBe('stopped');
    expect(sup.countChildren()).toEqual({ specs: 1, active: 0, supervisors: 0, workers: 1 });
    sup.restartChild('a');
    await h.step();
    expect(h.path('root/a').slice(-3)).toEqual(['restarting', 'initializing', 'running']);
    expect(() => sup.deleteChild('a')).toThrow(expect.objectContaining({ code: 'supervisor_running' }));
    sup.terminateChild('a');
    await h.step();
    sup.deleteChild('a');
    await h.step();
    expect(sup.whichChildren()).toEqual([]);
    // The id is free again: a new child of that id gets a new actor under the same name.
    sup.startChild({ id: 'a', start: worker });
    await h.step();
    expect(sup.whichChildren().map((c) => c.state)).toEqual(['running']);
  });

  it('refuses the verbs OTP refuses: unknown ids, running children, and restart/delete on simple_one_for_one', async () => {
    const h = new Harness(tree());
    await h.step();
    const sup = h.runtime.supervisor('root');
    expect(() => sup.terminateChild('nope')).toThrow(expect.objectContaining({ code: 'supervisor_not_found' }));
    expect(() => sup.restartChild('a')).toThrow(expect.objectContaining({ code: 'supervisor_running' }));
    expect(() => h.runtime.supervisor('missing')).toThrow(expect.objectContaining({ code: 'supervisor_not_found' }));
    const simple = new Harness(supervisor({ strategy: 'simple_one_for_one' }, [{ id: 'c', start: worker }]));
    expect(() => simple.runtime.supervisor('root').deleteChild('c-1')).toThrow(expect.objectContaining({ code: 'supervisor_simple_one_for_one' }));
  });

  it('refuses to startChild what setup did not register, since replay could not start it', () => {
    const other = defineActor<number>({ name: 'other', init: () => 0, receive: (s) => s });
    const h = new Harness(tree());
    expect(() => h.runtime.supervisor('root').startChild({ id: 'o', start: other })).toThrow(/builder.register/);
  });

  it('logs the verbs as inputs, so replay repeats them at the same ticks', async () => {
    const h = new Harness(supervisor({ strategy: 'simple_one_for_one', intensity: 5 }, [{ id: 'conn', start: worker }]));
    await h.step();
    const sup = h.runtime.supervisor('root');
    sup.startChild({ user: 'x' });
    await h.step();
    sup.startChild({ user: 'y' });
    h.send('root/conn-1', 'crash');
    await h.step(2);
    sup.terminateChild('conn-2');
    await h.step(2);
    await h.runtime.close();
    const report = await replay(h.runtime.logBytes(), h.system);
    expect(report.bitExact).toBe(true);
    expect(report.ticks).toBe(6);
  });
});

describe('supervision: mailboxes across a crash', () => {
  it('drops what a crashed child had queued, each with a logged reason; the new incarnation gets what is sent after the restart', async () => {
    const h = new Harness(supervisor({ strategy: 'one_for_one', intensity: 5 }, [{ id: 'a', start: worker }]));
    await h.step();
    for (const text of ['one', 'crash', 'two', 'three']) h.send('root/a', text);
    await h.step();
    const crashTick = h.runtime.tick;
    const drops = h.records[crashTick - 1]!.drops.filter((d) => d.actor === h.runtime.actorId('root/a'));
    expect(drops.map((d) => d.reason)).toEqual(['recipient crashed before processing it', 'recipient crashed before processing it']);
    expect(h.runtime.snapshot().actors.find((a) => a.name === 'root/a')!.dropped).toBe(2);
    h.send('root/a', 'after');
    await h.step();
    expect(h.runtime.actor('root/a').state<{ got: string[] }>()!.got).toEqual(['after']);
  });

  it('delivers to the new incarnation what was published to it while it was down, when it restarts before delivery', async () => {
    const h = new Harness(supervisor({ strategy: 'one_for_one', intensity: 5 }, [{ id: 'a', start: worker }]));
    await h.step();
    h.send('root/a', 'crash');
    await h.step();
    // Down now; this input is delivered at the next tick, after the restart at its boundary.
    h.send('root/a', 'while-down');
    await h.step();
    expect(h.runtime.actor('root/a').state<{ got: string[] }>()!.got).toEqual(['while-down']);
  });

  it('drops with a reason what reaches a child waiting out its backoff', async () => {
    const h = new Harness(supervisor({ strategy: 'one_for_one', intensity: 5, backoff: { initial: 3, max: 3 } }, [{ id: 'a', start: worker }]));
    await h.step();
    h.send('root/a', 'crash');
    await h.step();
    h.send('root/a', 'lost');
    await h.step();
    const record = h.records[h.records.length - 1]!;
    expect(record.drops.map((d) => d.reason)).toEqual(['recipient crashed']);
  });
});

describe('supervision: bad specs fail early', () => {
  const bad = (make: () => unknown, pattern: RegExp) => {
    expect(make).toThrow(SupervisorError);
    expect(make).toThrow(pattern);
  };

  it('refuses duplicate child ids', () => {
    bad(() => supervisor({ strategy: 'one_for_one' }, [{ id: 'a', start: worker }, { id: 'a', start: worker }]), /duplicate child id 'a'/);
  });

  it('refuses an unknown strategy', () => {
    bad(() => supervisor({ strategy: 'one_for_some' as never }, []), /unknown strategy "one_for_some"/);
  });

  it('refuses a negative or fractional intensity and a zero period', () => {
    bad(() => supervisor({ strategy: 'one_for_one', intensity: -1 }, []), /intensity must be an integer >= 0/);
    bad(() => supervisor({ strategy: 'one_for_one', intensity: 1.5 }, []), /intensity must be an integer >= 0/);
    bad(() => supervisor({ strategy: 'one_for_one', period: 0 }, []), /period must be an integer >= 1/);
  });

  it('refuses bad child specs: restart type, shutdown, start, unknown fields, and simple_one_for_one without one template', () => {
    bad(() => supervisor({ strategy: 'one_for_one' }, [{ id: 'a', start: worker, restart: 'sometimes' as never }]), /restart must be one of/);
    bad(() => supervisor({ strategy: 'one_for_one' }, [{ id: 'a', start: worker, shutdown: -1 }]), /shutdown must be/);
    bad(() => supervisor({ strategy: 'one_for_one' }, [{ id: 'a', start: (() => 1) as never }]), /start must be an actor definition/);
    bad(() => supervisor({ strategy: 'one_for_one' }, [{ id: 'a', start: worker, restrat: 'permanent' } as unknown as ChildSpec]), /unknown field 'restrat'/);
    bad(() => supervisor({ strategy: 'simple_one_for_one' }, []), /exactly one child spec/);
    bad(() => supervisor({ strategy: 'one_for_one', backoff: { initial: 0, max: 1 } }, []), /backoff.initial/);
  });

  it('refuses a supervisor nested in itself, built by hand or started into itself', () => {
    const forged = { kind: 'supervisor', flags: { strategy: 'one_for_one', intensity: 1, period: 5, backoff: null }, children: [] as unknown[] };
    forged.children.push({ id: 'self', start: forged, args: undefined, priority: 0, restart: 'permanent', shutdown: 'infinity' });
    bad(() => supervisor({ strategy: 'one_for_one' }, [{ id: 'x', start: forged as unknown as SupervisorSpec }]), /not made by supervisor/);
    const tree = supervisor({ strategy: 'one_for_one' }, [{ id: 'a', start: worker }]);
    const h = new Harness(tree);
    expect(() => h.runtime.supervisor('root').startChild({ id: 'again', start: tree })).toThrow(/nested in itself/);
  });
});

describe('supervision: replay', () => {
  it('replays a run with crashes, group restarts and escalation bit for bit', async () => {
    const inner = supervisor({ strategy: 'rest_for_one', intensity: 1, period: 4 }, [{ id: 'x', start: worker }, { id: 'y', start: worker }]);
    const h = new Harness(supervisor({ strategy: 'one_for_all', intensity: 5, period: 20 }, [{ id: 'inner', start: inner }, { id: 'z', start: worker }]));
    await h.step();
    for (const [tick, target] of [[2, 'root/inner/x'], [3, 'root/inner/x'], [6, 'root/z'], [9, 'root/inner/y']] as const) {
      while (h.runtime.tick < tick - 1) await h.step();
      h.send(target, 'crash');
    }
    await h.step(5);
    await h.runtime.close();
    expect(h.events.filter((e) => e.to === 'restarting').length).toBeGreaterThan(5);
    const report = await replay(h.runtime.logBytes(), h.system);
    expect(report.bitExact).toBe(true);
    const crashes = h.events.filter((e) => e.to === 'crashed').map((e) => `${e.tick}:${e.actor}`);
    expect(crashes.length).toBeGreaterThanOrEqual(4);
  });
});
