import { describe, expect, it } from 'vitest';
import {
  ActorContractError,
  ArgumentError,
  AskFailedError,
  AskTimeoutError,
  MailboxFullError,
  MessageKind,
  UsageError,
  createRuntime,
  defineActor,
  defineSystem,
  replay,
  supervisor,
  type Message,
  type Runtime,
  type SystemDefinition,
} from 'lockstep';
import { readLog } from 'lockstep/log';

/** Replies to every ask with `{ echo, tick }`; crashes on `{ crash: true }`; ignores `{ ignore: true }`. */
const echo = defineActor({
  name: 'echo',
  init: () => ({ asked: 0 }),
  receive: (state, message: Message, ctx) => {
    if (message.kind !== MessageKind.ask) return state;
    const body = message.json<{ echo?: unknown; crash?: boolean; ignore?: boolean; later?: number }>();
    if (body.crash === true) throw new Error('asked to crash');
    if (body.ignore === true) return { asked: state.asked + 1 };
    ctx.replyJson(message, { echo: body.echo, tick: ctx.tick });
    return { asked: state.asked + 1 };
  },
});

function system(setup: SystemDefinition['setup'], name = 'asks'): SystemDefinition {
  return defineSystem({ name, setup });
}

async function stepUntilSettled<T>(runtime: Runtime, promise: Promise<T>, ticksMax = 50): Promise<T> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < ticksMax && !settled; i++) {
    await runtime.step();
    await Promise.resolve();
  }
  return promise;
}

describe('ask from outside (runtime.ask)', () => {
  it('resolves with the reply the actor made with ctx.reply, at the tick it made it', async () => {
    const runtime = createRuntime(system((s) => s.spawn(echo, { name: 'echo' })), { seed: 1 });
    await runtime.step();
    const reply = await stepUntilSettled(runtime, runtime.askJson('echo', { echo: 'hi' }, { timeoutTicks: 5 }));
    expect(reply.actor).toBe('echo');
    expect(reply.json()).toEqual({ echo: 'hi', tick: 2 });
    expect(reply.tick).toBe(2);
    expect(runtime.asksWaiting).toBe(0);
    await runtime.close();
  });

  it('rejects with AskTimeoutError naming the actor and the last tick when no reply comes in time', async () => {
    const runtime = createRuntime(system((s) => s.spawn(echo, { name: 'echo' })), { seed: 1 });
    await runtime.step();
    const ask = runtime.askJson('echo', { ignore: true }, { timeoutTicks: 3 });
    const error = await stepUntilSettled(runtime, ask).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AskTimeoutError);
    expect((error as AskTimeoutError).actor).toBe('echo');
    // Taken in at tick 2 with 3 ticks: the reply could come in ticks 2, 3 and 4.
    expect((error as AskTimeoutError).tick).toBe(4);
    expect((error as Error).message).toMatch(/ask of actor 'echo' timed out: no reply by the end of tick 4/);
    await runtime.close();
  });

  it('rejects with the crash reason, not a timeout, when the target crashes before replying', async () => {
    const runtime = createRuntime(system((s) => s.spawn(echo, { name: 'echo' })), { seed: 1 });
    await runtime.step();
    const ask = runtime.askJson('echo', { crash: true }, { timeoutTicks: 50 });
    const error = await stepUntilSettled(runtime, ask, 3).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AskFailedError);
    expect((error as Error).message).toMatch(/echo went down \(crashed\) before replying: .*asked to crash/);
    await runtime.close();
  });

  it('rejects at once with MailboxFullError when the mailbox is full, and enqueues nothing', async () => {
    const runtime = createRuntime(system((s) => s.spawn(echo, { name: 'echo', mailboxCapacity: 1 })), { seed: 1 });
    await runtime.step();
    const first = runtime.askJson('echo', { echo: 1 });
    await expect(runtime.askJson('echo', { echo: 2 })).rejects.toBeInstanceOf(MailboxFullError);
    expect((await stepUntilSettled(runtime, first)).json()).toEqual({ echo: 1, tick: 2 });
    await runtime.close();
  });

  it('fails asks still waiting at close, and refuses bad arguments with typed errors', async () => {
    const wasmless = createRuntime(system((s) => s.spawn(echo, { name: 'echo' })), { seed: 1 });
    await wasmless.step();
    await expect(wasmless.askJson('echo', {}, { timeoutTicks: 0 })).rejects.toBeInstanceOf(ArgumentError);
    await expect(wasmless.askJson('nobody', {})).rejects.toThrow(/no actor named 'nobody'/);
    await expect(wasmless.ask('echo', 'text' as unknown as Uint8Array)).rejects.toBeInstanceOf(ArgumentError);
    const waiting = wasmless.askJson('echo', { ignore: true });
    await wasmless.close();
    await expect(waiting).rejects.toBeInstanceOf(AskFailedError);
  });

  it('asks only actors that can reply: a supervisor is refused with UsageError', async () => {
    const tree = supervisor({ strategy: 'one_for_one' }, [{ id: 'echo', start: echo }]);
    const runtime = createRuntime(system((s) => s.spawn(tree, { name: 'root' })), { seed: 1 });
    await runtime.step();
    await expect(runtime.askJson('root', {})).rejects.toBeInstanceOf(UsageError);
    expect((await stepUntilSettled(runtime, runtime.askJson('root/echo', { echo: 'x' }))).json()).toEqual({ echo: 'x', tick: 2 });
    await runtime.close();
  });
});

/** Asks `echo` every tick it is told to, and keeps what comes back. */
const asker = defineActor({
  name: 'asker',
  init: () => ({ asks: {} as Record<string, string>, seen: [] as string[] }),
  receive: (state, message: Message, ctx) => {
    const kinds = ['message', 'ask', 'reply', 'timer', 'askTimeout', 'askFailed'];
    if (message.kind === MessageKind.message) {
      const body = message.json<{ body: unknown; timeoutTicks?: number }>();
      const result = ctx.askJson('echo', body.body, { timeoutTicks: body.timeoutTicks ?? 5 });
      if (result.ok) state.asks[String(result.id)] = JSON.stringify(body.body);
      else state.seen.push(`refused:${result.reason}`);
      return state;
    }
    const what = state.asks[String(message.correlation)] ?? '?';
    const detail = message.kind === MessageKind.reply ? JSON.stringify(message.json()) : message.text();
    state.seen.push(`${ctx.tick}:${kinds[message.kind]}:${what}:${detail}`);
    return state;
  },
});

describe('ask between actors (ctx.ask)', () => {
  const pair = () =>
    system((s) => {
      s.spawn(echo, { name: 'echo' });
      s.spawn(asker, { name: 'asker' });
    }, 'ask-pair');

  it('delivers the reply to the asker at a later tick, with the ask id as correlation', async () => {
    const runtime = createRuntime(pair(), { seed: 1, level: 'full' });
    await runtime.step();
    runtime.injectJson('actor/2', { body: { echo: 'a' } });
    await runtime.run(4);
    const state = runtime.actor('asker').state() as { seen: string[] };
    // Told at 2, asks at 2; echo gets it at 3 and replies; the reply arrives at 4.
    expect(state.seen).toEqual(['4:reply:{"echo":"a"}:{"echo":"a","tick":3}']);
    const log = readLog(runtime.logBytes());
    const envelopes = log.ticks.flatMap((t) => t.envelopes ?? []);
    const ask = envelopes.find((e) => e.kind === MessageKind.ask)!;
    const reply = envelopes.find((e) => e.kind === MessageKind.reply)!;
    expect(ask.sender).toBe(2);
    expect(reply.correlation).toBe(ask.seq);
    await runtime.close();
    expect((await replay(runtime.logBytes(), pair())).bitExact).toBe(true);
  });

  it('sends the asker an askTimeout when no reply comes in its ticks, and logs a late reply as a drop', async () => {
    const slow = defineActor({
      name: 'slow',
      init: () => [] as Message[],
      receive: (held, message: Message, ctx) => {
        if (message.kind === MessageKind.ask) return [...held, message];
        // Any other message: answer what is held (too late by now).
        for (const ask of held) {
          const result = ctx.replyJson(ask, { late: true });
          expect(result).toEqual({ ok: false, reason: 'ask_settled' });
        }
        return [];
      },
    });
    const sys = system((s) => {
      s.spawn(slow, { name: 'echo' });
      s.spawn(asker, { name: 'asker' });
    }, 'ask-timeout');
    const runtime = createRuntime(sys, { seed: 1 });
    await runtime.step();
    runtime.injectJson('actor/2', { body: { q: 1 }, timeoutTicks: 2 });
    await runtime.run(5);
    expect((runtime.actor('asker').state() as { seen: string[] }).seen).toEqual(['5:askTimeout:{"q":1}:']);
    runtime.injectJson('actor/1', 'now');
    const record = await runtime.step();
    expect(record.drops.map((d) => d.reason)).toEqual([expect.stringMatching(/^reply to ask #1 of asker came too late/)]);
    await runtime.close();
    expect((await replay(runtime.logBytes(), sys)).bitExact).toBe(true);
  });

  it('sends the asker an askFailed with the reason when the target crashes before replying', async () => {
    const runtime = createRuntime(pair(), { seed: 1 });
    await runtime.step();
    runtime.injectJson('actor/2', { body: { crash: true }, timeoutTicks: 20 });
    await runtime.run(4);
    const seen = (runtime.actor('asker').state() as { seen: string[] }).seen;
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/^4:askFailed:\{"crash":true\}:echo went down \(crashed\) before replying: .*asked to crash/);
    await runtime.close();
  });

  it('crashes an actor that replies to a message that is not an ask, with ActorContractError', async () => {
    const bad = defineActor({
      name: 'bad',
      init: () => null,
      receive: (_state, message: Message, ctx) => {
        ctx.replyJson(message, 'no');
      },
    });
    const runtime = createRuntime(system((s) => s.spawn(bad, { name: 'bad' })), { seed: 1 });
    await runtime.step();
    runtime.injectJson('actor/1', 'plain');
    await runtime.step();
    expect(runtime.snapshot().actors[0]!.lastCrash?.message).toMatch(/ActorContractError: actor 'bad' replied to actor\/1 #1 from \(external\), which is not an ask/);
    expect((runtime as unknown as { cellOf(id: number): { lastError: unknown } }).cellOf(1).lastError).toBeInstanceOf(ActorContractError);
    await runtime.close();
  });
});

describe('timers (ctx.after, ctx.every)', () => {
  const ticker = defineActor({
    name: 'ticker',
    init: (ctx) => {
      const once = ctx.afterJson(3, 'once');
      const every = ctx.everyJson(2, 'every');
      const cancelled = ctx.afterJson(1, 'never');
      expect(ctx.cancelTimer(cancelled)).toBe(true);
      expect(ctx.cancelTimer(cancelled)).toBe(false);
      return { once, every, fired: [] as string[] };
    },
    receive: (state, message: Message, ctx) => {
      if (message.kind === MessageKind.timer) {
        state.fired.push(`${ctx.tick}:${message.json<string>()}:${message.correlation === state.every ? 'every' : 'once'}`);
        if (state.fired.length === 4) ctx.cancelTimer(state.every);
      } else if (message.json<string>() === 'crash') {
        throw new Error('told to crash');
      }
      return state;
    },
  });

  it('delivers after n ticks and every n ticks to the actor itself, until cancelled', async () => {
    const sys = system((s) => s.spawn(ticker, { name: 't' }), 'timers');
    const runtime = createRuntime(sys, { seed: 1, level: 'full' });
    await runtime.run(12);
    // init at tick 1: `after(3)` fires at 4, `every(2)` at 3, 5, 7 (cancelled on its third firing's tick).
    expect((runtime.actor('t').state() as { fired: string[] }).fired).toEqual(['3:every:every', '4:once:once', '5:every:every', '7:every:every']);
    const envelopes = readLog(runtime.logBytes()).ticks.flatMap((t) => t.envelopes ?? []);
    expect(envelopes.filter((e) => e.kind === MessageKind.timer).map((e) => [e.tick, e.sender])).toEqual([
      [2, 1],
      [3, 1],
      [4, 1],
      [6, 1],
    ]);
    await runtime.close();
    expect((await replay(runtime.logBytes(), sys)).bitExact).toBe(true);
  });

  it('cancels every timer of an incarnation when the actor crashes: the restarted one starts its own', async () => {
    const tree = supervisor({ strategy: 'one_for_one', intensity: 5, period: 100 }, [{ id: 't', start: ticker }]);
    const sys = system((s) => s.spawn(tree, { name: 'root' }), 'timers-restart');
    const runtime = createRuntime(sys, { seed: 1 });
    await runtime.step(); // tick 1: init, timers set for 3 (every), 4 (once)
    runtime.injectJson(`actor/${runtime.actor('root/t').id}`, 'crash');
    await runtime.run(12);
    const state = runtime.actor('root/t').state() as { fired: string[] };
    // Crashed at tick 2 before any timer fired; restarted (init at tick 3): its own timers
    // fire at 5, 6, 7 and 9, and nothing of the first incarnation ever arrives.
    expect(state.fired).toEqual(['5:every:every', '6:once:once', '7:every:every', '9:every:every']);
    await runtime.close();
    expect((await replay(runtime.logBytes(), sys)).bitExact).toBe(true);
  });

  it('crashes an actor that starts a timer with a bad tick count, with ArgumentError', async () => {
    const bad = defineActor({
      name: 'bad',
      init: (ctx) => {
        ctx.afterJson(0, 'x');
        return null;
      },
      receive: () => undefined,
    });
    const runtime = createRuntime(system((s) => s.spawn(bad, { name: 'bad' })), { seed: 1 });
    await runtime.step();
    expect(runtime.snapshot().actors[0]!.lastCrash?.message).toMatch(/ArgumentError: actor 'bad': a timer's ticks must be an integer >= 1, got the number 0/);
    await runtime.close();
  });
});
