import { describe, expect, it } from 'vitest';
import { ActorContractError, MailboxFullError, PayloadEncodingError, PayloadTooLargeError, UnknownTopicError, createRuntime, defineActor, defineSystem, type Message, type SystemDefinition } from 'lockstep';
import { readLog } from 'lockstep/log';

const bytes = (...values: number[]) => new Uint8Array(values);

/** An actor that records what it receives as `topic:sender:seq:payload[0]`. */
const recorder = defineActor({
  name: 'recorder',
  subscribe: (args: { topics: string[] }) => args.topics,
  init: () => [] as string[],
  receive: (seen, message: Message, ctx) => {
    seen.push(`${message.topicName}:${ctx.tick}:${message.sender}:${message.seq}:${message.priority}:${message.payload[0] ?? '-'}`);
    return seen;
  },
});

function system(setup: SystemDefinition['setup'], extra: Partial<SystemDefinition> = {}): SystemDefinition {
  return defineSystem({ name: 'test', setup, ...extra });
}

describe('ticks and canonical order', () => {
  it('delivers what tick t published in tick t+1, ordered by (priority desc, topic, sender, seq)', async () => {
    // Two senders with different actor priorities publish to two topics with mixed message
    // priorities, in an order unlike the canonical one.
    const sender = defineActor({
      name: 'sender',
      init: () => 0,
      receive: () => undefined,
      step: (n, ctx) => {
        if (ctx.tick !== 1) return n;
        ctx.publish('b', bytes(ctx.self * 10 + 1), { priority: 5 });
        ctx.publish('a', bytes(ctx.self * 10 + 2), { priority: 9 });
        ctx.publish('a', bytes(ctx.self * 10 + 3), { priority: 5 });
        ctx.publish('a', bytes(ctx.self * 10 + 4), { priority: 5 });
        return n + 1;
      },
    });
    const runtime = createRuntime(
      system((s) => {
        s.spawn(recorder, { name: 'rec', args: { topics: ['a', 'b'] } });
        s.spawn(sender, { name: 's-low', priority: 1 }); // id 2, runs second
        s.spawn(sender, { name: 's-high', priority: 7 }); // id 3, runs first
      }),
    );
    await runtime.run(3);
    expect(runtime.topic('a')).toBeLessThan(runtime.topic('b'));
    expect(runtime.actor('rec').state<string[]>()).toEqual([
      // Priority 9 first; then priority 5 on topic a (sender 2 before 3, each in seq order); then topic b.
      'a:2:2:2:9:22',
      'a:2:3:2:9:32',
      'a:2:2:3:5:23',
      'a:2:2:4:5:24',
      'a:2:3:3:5:33',
      'a:2:3:4:5:34',
      'b:2:2:1:5:21',
      'b:2:3:1:5:31',
    ]);
  });

  it('takes injected inputs in at the next tick boundary and logs them there', async () => {
    const runtime = createRuntime(system((s) => s.spawn(recorder, { name: 'rec', args: { topics: ['in'] } })));
    await runtime.step();
    runtime.inject('in', bytes(7), { priority: 3 });
    runtime.inject('in', bytes(8));
    const record = await runtime.step();
    expect(record.injected.map((i) => [i.seq, i.priority, i.payload[0]])).toEqual([
      [1, 3, 7],
      [2, 0, 8],
    ]);
    expect(runtime.actor('rec').state<string[]>()).toEqual(['in:2:0:1:3:7', 'in:2:0:2:0:8']);
  });

  it('runs runnable actors by (priority desc, actor id), at most tickTasksMax per tick', async () => {
    const order: string[] = [];
    const stepper = defineActor({
      name: 'stepper',
      init: () => 0,
      receive: () => undefined,
      step: (n, ctx) => {
        order.push(`${ctx.tick}:${ctx.name}`);
        return n + 1;
      },
    });
    const runtime = createRuntime(
      system((s) => {
        s.spawn(stepper, { name: 'p0-a', priority: 0 });
        s.spawn(stepper, { name: 'p5', priority: 5 });
        s.spawn(stepper, { name: 'p0-b', priority: 0 });
      }),
      { tickTasksMax: 2 },
    );
    await runtime.run(1);
    expect(order).toEqual(['1:p5', '1:p0-a']);
  });
});

describe('bounded mailboxes and backpressure', () => {
  const flooder = defineActor({
    name: 'flooder',
    init: () => ({ sent: 0, refusals: [] as string[] }),
    receive: () => undefined,
    step: (state, ctx) => {
      for (;;) {
        const result = ctx.send('slow', bytes(state.sent & 0xff));
        if (!result.ok) {
          state.refusals.push(`${ctx.tick}:${result.actor}:${result.capacity}`);
          return state;
        }
        state.sent++;
      }
    },
  });
  const slow = defineActor({
    name: 'slow',
    init: () => 0,
    receive: (n) => n + 1,
  });

  it('refuses a publish to a full mailbox, tells the sender, and does not schedule it until there is room', async () => {
    const runtime = createRuntime(
      system((s) => {
        s.spawn(slow, { name: 'slow', mailboxCapacity: 4 });
        s.spawn(flooder, { name: 'flooder' });
      }),
    );
    const first = await runtime.step();
    // Tick 1: four accepted (reserved for tick 2), the fifth refused.
    expect(runtime.actor('flooder').state<{ sent: number; refusals: string[] }>()).toEqual({ sent: 4, refusals: ['1:slow:4'] });
    expect(first.drops).toEqual([{ actor: 1, topic: runtime.topic('actor/1'), sender: 2, seq: 0, reason: 'refused: mailbox full, sender told' }]);
    expect(runtime.snapshot().actors.find((a) => a.name === 'flooder')?.blockedOn).toBe('slow');
    // Tick 2: the four are delivered and consumed by slow (priority/id order: slow runs first),
    // which frees room, so flooder runs again in the same tick.
    await runtime.step();
    expect(runtime.actor('slow').state<number>()).toBe(4);
    expect(runtime.actor('flooder').state<{ sent: number }>()!.sent).toBe(8);
    await runtime.run(10);
    const snapshot = runtime.snapshot();
    expect(snapshot.actors.find((a) => a.name === 'slow')!.mailboxDepth).toBeLessThanOrEqual(4);
    expect(snapshot.counters.refused).toBe(12);
    // Every accepted message is accounted for: processed by slow, or dropped with a reason
    // at shutdown (still queued or still in flight). Refusals were never accepted.
    const sent = runtime.actor('flooder').state<{ sent: number }>()!.sent;
    const processed = runtime.actor('slow').state<number>()!;
    await runtime.close();
    const drops = readLog(runtime.logBytes()).ticks.flatMap((t) => t.drops).filter((d) => d.sender === 2 && !d.reason.startsWith('refused'));
    for (const drop of drops) expect(['recipient stopped', 'undelivered at shutdown']).toContain(drop.reason);
    expect(processed + drops.length).toBe(sent);
  });

  it('holds a blocked sender back while the full mailbox is not drained', async () => {
    const runtime = createRuntime(
      system((s) => {
        s.spawn(slow, { name: 'slow', mailboxCapacity: 2 });
        s.spawn(flooder, { name: 'flooder' });
      }),
    );
    await runtime.step();
    runtime.actor('slow').suspend();
    await runtime.run(5);
    const flooderState = runtime.actor('flooder').state<{ sent: number; refusals: string[] }>()!;
    // Refused at tick 1; slow is suspended so its mailbox never drains: flooder never runs again.
    expect(flooderState.refusals).toEqual(['1:slow:2']);
    expect(runtime.snapshot().actors.find((a) => a.name === 'slow')?.mailboxDepth).toBe(2);
    runtime.actor('slow').resume();
    await runtime.run(2);
    expect(runtime.actor('flooder').state<{ sent: number }>()!.sent).toBeGreaterThan(2);
  });

  it('refuses an injection into a full mailbox with MailboxFullError and enqueues nothing', async () => {
    const runtime = createRuntime(system((s) => s.spawn(slow, { name: 'slow', mailboxCapacity: 2 })));
    runtime.inject('actor/1', bytes(1));
    runtime.inject('actor/1', bytes(2));
    expect(() => runtime.inject('actor/1', bytes(3))).toThrow(MailboxFullError);
    expect(() => runtime.inject('actor/1', bytes(3))).toThrow(/mailbox of actor 'slow' is full \(2 messages\).*Retry after the next tick/);
    const record = await runtime.step();
    expect(record.injected).toHaveLength(2);
    expect(runtime.actor('slow').state<number>()).toBe(2);
  });
});

describe('crashes and lifecycle', () => {
  it('crashes an actor that throws, records the error and its tick, drops its mail with a reason, and keeps running', async () => {
    const fragile = defineActor({
      name: 'fragile',
      subscribe: ['work'],
      init: () => 0,
      receive: (n, message) => {
        if (message.payload[0] === 13) throw new Error('unlucky payload');
        return n + 1;
      },
    });
    const runtime = createRuntime(
      system((s) => {
        s.spawn(fragile, { name: 'fragile' });
        s.spawn(recorder, { name: 'rec', args: { topics: ['work'] } });
      }),
    );
    await runtime.step();
    for (const value of [1, 13, 2]) runtime.inject('work', bytes(value));
    const record = await runtime.step();
    expect(record.lifecycle).toEqual([
      { actor: 1, from: 'running', to: 'crashed', detail: "receiving work #2 from (external): Error: unlucky payload" },
    ]);
    expect(record.drops.map((d) => [d.actor, d.seq, d.reason])).toEqual([[1, 3, 'recipient crashed before processing it']]);
    const view = runtime.snapshot().actors.find((a) => a.name === 'fragile')!;
    expect(view.lifecycle).toBe('crashed');
    expect(view.lastCrash).toEqual({ tick: 2, message: 'receiving work #2 from (external): Error: unlucky payload' });
    // Later messages to the crashed actor are dropped with a logged reason; the others go on.
    runtime.inject('work', bytes(4));
    const later = await runtime.step();
    expect(later.drops.map((d) => d.reason)).toEqual(['recipient crashed']);
    expect(runtime.actor('rec').state<string[]>()).toHaveLength(4);
  });

  it('writes every lifecycle transition to the log', async () => {
    const quiet = defineActor({ name: 'quiet', init: () => 0, receive: () => undefined });
    const runtime = createRuntime(system((s) => s.spawn(quiet, { name: 'q' })));
    await runtime.run(2);
    runtime.actor('q').suspend();
    runtime.actor('q').resume();
    await runtime.step();
    await runtime.close();
    const log = readLog(runtime.logBytes());
    const transitions = log.ticks.flatMap((t) => t.lifecycle.map((e) => `${t.tick}:${e.actor}:${e.from}>${e.to}`));
    expect(transitions).toEqual([
      '1:1:none>created',
      '1:1:created>initializing',
      '1:1:initializing>running',
      '3:1:running>suspended',
      '3:1:suspended>running',
      '4:0:running>stopping', // the runtime's own shutdown marker
      '4:1:running>stopping',
      '4:1:stopping>stopped',
    ]);
    expect(log.end).toEqual({ ticks: 3, reason: 'shutdown' });
  });

  it('crashes an actor whose receive returns a Promise, saying what to do instead', async () => {
    const asyncActor = defineActor({
      name: 'async',
      subscribe: ['work'],
      init: () => 0,
      receive: async (n: number) => n + 1,
    } as never);
    const runtime = createRuntime(system((s) => s.spawn(asyncActor, { name: 'a' })));
    await runtime.step();
    runtime.inject('work', bytes(1));
    await runtime.step();
    const crash = runtime.snapshot().actors[0]!.lastCrash!;
    expect(crash.message).toMatch(/receive returned a Promise; receive must be synchronous.*runtime\.inject/);
  });

  it('crashes an actor whose init throws; the rest of the system starts', async () => {
    const broken = defineActor({
      name: 'broken',
      init: () => {
        throw new TypeError('no config');
      },
      receive: () => undefined,
    });
    const runtime = createRuntime(
      system((s) => {
        s.spawn(broken, { name: 'broken' });
        s.spawn(recorder, { name: 'rec', args: { topics: [] } });
      }),
    );
    const record = await runtime.step();
    expect(record.lifecycle.filter((e) => e.to === 'crashed')).toEqual([
      { actor: 1, from: 'initializing', to: 'crashed', detail: 'in init: TypeError: no config' },
    ]);
    expect(runtime.snapshot().actors.map((a) => a.lifecycle)).toEqual(['crashed', 'running']);
  });
});

describe('bad input', () => {
  const publisher = (publish: (ctx: Parameters<NonNullable<Parameters<typeof defineActor>[0]['step']>>[1]) => void) =>
    defineActor({
      name: 'publisher',
      init: () => 0,
      receive: () => undefined,
      step: (n, ctx) => {
        publish(ctx);
        return n;
      },
    });

  async function crashOf(publish: Parameters<typeof publisher>[0], config = {}): Promise<string> {
    const runtime = createRuntime(system((s) => s.spawn(publisher(publish), { name: 'p' }), { topics: ['known'] }), config);
    await runtime.step();
    return runtime.snapshot().actors[0]!.lastCrash?.message ?? 'no crash';
  }

  it('names an unknown topic and says how to declare it', async () => {
    expect(await crashOf((ctx) => ctx.publish('nope', bytes(1)))).toMatch(
      /UnknownTopicError: unknown topic 'nope': no actor subscribes to it and the system does not declare it; add it to the system's `topics`/,
    );
    const runtime = createRuntime(system(() => {}));
    expect(() => runtime.inject('nope', bytes(1))).toThrow(UnknownTopicError);
  });

  it('refuses a payload over the size limit with the limit and what to do', async () => {
    expect(await crashOf((ctx) => ctx.publish('known', new Uint8Array(100)), { payloadBytesMax: 64 })).toMatch(
      /PayloadTooLargeError: actor 'p' publishing to 'known': payload of 100 bytes exceeds payloadBytesMax \(64 bytes\)/,
    );
    const runtime = createRuntime(system(() => {}, { topics: ['known'] }), { payloadBytesMax: 8 });
    expect(() => runtime.inject('known', new Uint8Array(9))).toThrow(PayloadTooLargeError);
  });

  it('refuses values JSON would mangle, naming the path', async () => {
    expect(await crashOf((ctx) => ctx.publishJson('known', { price: Number.NaN }))).toMatch(/PayloadEncodingError: .*price.*NaN/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const runtime = createRuntime(system(() => {}, { topics: ['known'] }));
    expect(() => runtime.injectJson('known', cyclic)).toThrow(PayloadEncodingError);
    expect(() => runtime.injectJson('known', { at: 1n })).toThrow(PayloadEncodingError);
  });

  it('refuses publish outside an activation (a timer in an actor) with what to do', async () => {
    let saved: Parameters<Parameters<typeof publisher>[0]>[0] | null = null;
    const runtime = createRuntime(
      system(
        (s) =>
          s.spawn(
            publisher((ctx) => {
              saved = ctx;
            }),
            { name: 'p' },
          ),
        { topics: ['known'] },
      ),
    );
    await runtime.step();
    expect(() => saved!.publish('known', bytes(1))).toThrow(ActorContractError);
    expect(() => saved!.publish('known', bytes(1))).toThrow(/outside an actor activation.*runtime\.inject/);
  });

  it('rejects invalid definitions before anything runs', () => {
    expect(() => defineActor({ name: '', init: () => 0, receive: () => 0 })).toThrow(/non-empty string/);
    expect(() => defineActor({ name: 'x', init: () => 0 } as never)).toThrow(/`receive` must be a function/);
    const quiet = defineActor({ name: 'quiet', init: () => 0, receive: () => undefined });
    expect(() =>
      createRuntime(
        system((s) => {
          s.spawn(quiet, { name: 'twin' });
          s.spawn(quiet, { name: 'twin' });
        }),
      ),
    ).toThrow(/an actor named 'twin' already exists/);
    expect(() => createRuntime(system(() => {}), { seed: -1 })).toThrow(/seed must be an integer/);
    expect(() => createRuntime(system(() => {}), { bogus: 1 } as never)).toThrow(/createRuntime options: unknown option 'bogus'; known options: seed, /);
  });
});

describe('snapshot', () => {
  it('shows actors, lifecycle states, mailbox depths and counters', async () => {
    const quiet = defineActor({ name: 'quiet', subscribe: ['t'], init: () => 0, receive: (n) => n + 1 });
    const runtime = createRuntime(system((s) => s.spawn(quiet, { name: 'q', priority: 3 })));
    runtime.inject('t', bytes(1));
    await runtime.step();
    runtime.actor('q').suspend();
    runtime.inject('t', bytes(2));
    await runtime.step();
    const snapshot = runtime.snapshot();
    expect(snapshot.tick).toBe(2);
    expect(snapshot.actors).toEqual([
      expect.objectContaining({ name: 'q', priority: 3, lifecycle: 'suspended', mailboxDepth: 1, received: 1, sent: 0 }),
    ]);
    expect(snapshot.counters).toMatchObject({ delivered: 2, injected: 2, dropped: 0, actors: 1 });
  });
});

describe('embedded inputs', () => {
  it('logs an embedded input refused by a full mailbox instead of failing the tick, and replay repeats the refusal', async () => {
    const { replay } = await import('lockstep');
    const sleeper = defineActor({ name: 'sleeper', subscribe: ['feed'], init: () => 0, receive: (n) => n + 1 });
    const system = defineSystem({
        name: 'feed',
        setup: (s) => s.spawn(sleeper, { name: 'sleeper', mailboxCapacity: 1 }),
        inputs: () => [
          { topic: 'feed', payload: bytes(1) },
          { topic: 'feed', payload: bytes(2) },
        ],
      });
    const runtime = createRuntime(system);
    const record = await runtime.step();
    expect(record.drops.map((d) => d.reason)).toEqual([
      "refused: embedded input, inject into 'feed': mailbox of actor 'sleeper' is full (1 messages); nothing was enqueued. Retry after the next tick, or raise mailboxCapacity for that actor",
    ]);
    await runtime.run(3);
    expect(runtime.actor('sleeper').state<number>()).toBe(4);
    await runtime.close();
    expect((await replay(runtime.logBytes(), system)).bitExact).toBe(true);
  });
});

describe('control requests are inputs', () => {
  it('logs suspend, resume and stop at a tick boundary, and replay applies them at the same tick', async () => {
    const { replay } = await import('lockstep');
    const counter = defineActor({ name: 'counter', subscribe: ['t'], init: () => 0, receive: (n) => n + 1, step: (n) => n });
    const system = defineSystem({
      name: 'control',
      setup: (s) => {
        s.spawn(counter, { name: 'a' });
        s.spawn(counter, { name: 'b' });
      },
    });
    const runtime = createRuntime(system, { level: 'full' });
    await runtime.step();
    runtime.actor('a').suspend();
    runtime.inject('t', bytes(1));
    await runtime.step();
    runtime.actor('a').resume();
    runtime.actor('b').stop();
    runtime.inject('t', bytes(2));
    await runtime.run(2);
    await runtime.close();
    expect(runtime.snapshot().actors.map((a) => [a.name, a.lifecycle])).toEqual([
      ['a', 'stopped'],
      ['b', 'stopped'],
    ]);
    const log = readLog(runtime.logBytes());
    const tick3 = log.ticks[2]!;
    expect(tick3.lifecycle.map((e) => `${e.actor}:${e.from}>${e.to}`)).toEqual(['1:suspended>running', '2:running>stopping', '2:stopping>stopped']);
    expect(runtime.actor('a').state<number>()).toBe(2);
    expect((await replay(runtime.logBytes(), system)).bitExact).toBe(true);
  });
});
