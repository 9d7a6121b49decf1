import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  AskFailedError,
  ConfigError,
  DurabilityError,
  MailboxFullError,
  MessageKind,
  RuntimeClosedError,
  createHost,
  defineActor,
  defineSystem,
  replay,
  type LogSink,
  type Message,
} from 'lockstep';
import { readLog } from 'lockstep/log';

/** A counter: `add` messages (told) add to it; asks get the total, or a crash on `{ crash: true }`. */
const counter = defineActor({
  name: 'counter',
  subscribe: ['add'],
  init: () => ({ total: 0 }),
  receive: (state, message: Message, ctx) => {
    if (message.kind === MessageKind.ask) {
      const body = message.json<{ crash?: boolean; via?: string }>();
      if (body.crash === true) throw new Error('asked to crash');
      ctx.replyJson(message, { total: state.total, tick: ctx.tick });
      return state;
    }
    return { total: state.total + message.json<number>() };
  },
});

/** Answers an ask only after asking `counter` itself (two more ticks): work that spans ticks. */
const relay = defineActor({
  name: 'relay',
  init: () => ({ waiting: {} as Record<string, Message> }),
  receive: (state, message: Message, ctx) => {
    if (message.kind === MessageKind.ask) {
      const result = ctx.askJson('counter', {});
      if (result.ok) state.waiting[String(result.id)] = message;
      return state;
    }
    const original = state.waiting[String(message.correlation)];
    if (original !== undefined && message.kind === MessageKind.reply) {
      delete state.waiting[String(message.correlation)];
      ctx.replyJson(original, { relayed: message.json() });
    }
    return state;
  },
});

const service = defineSystem({
  name: 'host-test',
  topics: ['add'],
  setup(system) {
    system.spawn(counter, { name: 'counter' });
    system.spawn(relay, { name: 'relay' });
  },
});

const scratch = () => mkdtempSync(join(tmpdir(), 'lockstep-host-'));

describe('createHost', () => {
  it('answers asks and acknowledges tells, and its log replays bit for bit', async () => {
    const host = createHost(service, { seed: 3, tickMs: 5 });
    expect(host.durability).toBe('none');
    await host.start();
    await Promise.all([host.tellJson('add', 2), host.tellJson('add', 3)]);
    const reply = await host.askJson('counter', {});
    expect(reply.json<{ total: number }>().total).toBe(5);
    expect(reply.actor).toBe('counter');
    const digest = await host.stop();
    const report = await replay(host.runtime.logBytes(), service);
    expect(report.bitExact).toBe(true);
    expect(report.chainHex).toBe(digest);
  });

  it('runs the ticks of work that spans ticks at once, not every tickMs', async () => {
    // An idle tick only every 10 s: the relay's three ticks must run as fast as work arrives.
    const host = createHost(service, { seed: 3, tickMs: 10_000 });
    await host.start();
    const reply = await host.askJson('relay', {});
    expect(reply.json()).toEqual({ relayed: { total: 0, tick: expect.any(Number) } });
    await host.stop();
  });

  it('acknowledges with durability tick only once the tick is in the file', async () => {
    const log = join(scratch(), 'run.log');
    const host = createHost(service, { seed: 3, tickMs: 5, log });
    expect(host.durability).toBe('tick');
    await host.start();
    await host.tellJson('add', 7);
    // Acknowledged: the input is in the file now, before any close.
    const injected = readLog(log).ticks.flatMap((t) => t.injected);
    expect(injected.map((i) => new TextDecoder().decode(i.payload))).toContain('7');
    expect((await host.askJson('counter', {}, { timeoutTicks: 10 })).json<{ total: number }>().total).toBe(7);
    await host.stop();
    expect((await replay(log, service)).bitExact).toBe(true);
  });

  it('acknowledges with durability interval after the periodic fsync', async () => {
    const host = createHost(service, { seed: 3, tickMs: 5, log: join(scratch(), 'run.log'), durability: 'interval', fsyncIntervalMs: 20 });
    await host.start();
    await host.tellJson('add', 1);
    expect((await host.askJson('counter', {})).json<{ total: number }>().total).toBe(1);
    await host.stop();
  });

  it('rejects an ask whose target crashes with the crash reason, not a timeout', async () => {
    const host = createHost(service, { seed: 3, tickMs: 5 });
    await host.start();
    const error = await host.askJson('counter', { crash: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AskFailedError);
    expect((error as Error).message).toMatch(/counter went down \(crashed\) before replying: .*asked to crash/);
    await host.stop();
  });

  it('rejects an ask refused by a full mailbox at once with MailboxFullError', async () => {
    const host = createHost(service, { seed: 3, tickMs: 5, mailboxCapacity: 1 });
    await host.start();
    // Both are taken in at the same boundary: the second finds the mailbox full.
    const first = host.askJson('counter', {});
    const second = host.askJson('counter', {});
    await expect(second).rejects.toBeInstanceOf(MailboxFullError);
    await expect(first).resolves.toBeDefined();
    await host.stop();
  });

  it('stop answers the asks still waiting, then refuses new inputs', async () => {
    const host = createHost(service, { seed: 3, tickMs: 10_000 });
    await host.start();
    const waiting = host.askJson('relay', {});
    const stopped = host.stop();
    await expect(waiting).resolves.toBeDefined();
    expect(typeof (await stopped)).toBe('string');
    await expect(host.tellJson('add', 1)).rejects.toBeInstanceOf(RuntimeClosedError);
  });

  it('fails the acknowledgements with DurabilityError when the log cannot be synced, and takes no more inputs', async () => {
    const written: Uint8Array[] = [];
    let failSync = false;
    const sink: LogSink = {
      write: (bytes) => void written.push(bytes),
      flush: () => {},
      close: () => {},
      sync: () => (failSync ? Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })) : Promise.resolve()),
    };
    const host = createHost(service, { seed: 3, tickMs: 5, log: sink });
    expect(host.durability).toBe('tick');
    await host.start();
    await host.tellJson('add', 1);
    failSync = true;
    const error = await host.tellJson('add', 2).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DurabilityError);
    expect((error as Error).message).toMatch(/ENOSPC.*takes no more inputs/);
    await expect(host.askJson('counter', {})).rejects.toBeInstanceOf(DurabilityError);
    await expect(host.stop()).rejects.toBeInstanceOf(DurabilityError);
  });

  it('refuses a durability the log cannot give, and unknown options', () => {
    expect(() => createHost(service, { durability: 'tick' })).toThrow(ConfigError);
    expect(() => createHost(service, { tickMs: -1 })).toThrow(/tickMs must be a number >= 0/);
    expect(() => createHost(service, { tickMz: 1 } as never)).toThrow(/tickMz/);
  });
});
