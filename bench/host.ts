/**
 * The host: ask round trips and sustained asks, against a plain async function over a Map
 * (what a service would write without an actor system), and the fsync rate the disk allows.
 *
 * - benchAskRtt: one caller, one ask at a time, `tickMs: 0`, durability 'none' (an
 *   in-memory log): the time from `host.askJson` to its resolution, p50 and p99.
 * - benchAsks: `callers` concurrent callers, each asking again as soon as it is answered,
 *   `calls` times after a warm-up round; asks answered per second. With durability 'tick' the
 *   log is a file and every answer waits for its tick's fsync (group commit).
 * - benchMapPeer: the same callers against `async (key) => map.get(key)`.
 * - benchFsync: write 64 bytes and fsync, in a loop, on the bench's scratch folder.
 * Nothing is printed; bench/run.ts prints the rows.
 */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { MessageKind, createHost, defineActor, defineSystem, type Durability, type Message } from '../src/index.ts';

const counter = defineActor({
  name: 'counter',
  init: () => ({ asked: 0 }),
  receive: (state, message: Message, ctx) => {
    if (message.kind === MessageKind.ask) ctx.replyJson(message, { n: ++state.asked });
    return state;
  },
});

const system = defineSystem({ name: 'bench-host', setup: (s) => void s.spawn(counter, { name: 'counter', mailboxCapacity: 4096 }) });

export async function benchAskRtt(options: { asks: number }): Promise<{ p50: number; p99: number }> {
  const host = createHost(system, { seed: 1, tickMs: 0, durability: 'none' });
  await host.start();
  for (let i = 0; i < 500; i++) await host.askJson('counter', i); // warm-up
  const samples = new Float64Array(options.asks);
  for (let i = 0; i < options.asks; i++) {
    const started = performance.now();
    await host.askJson('counter', i);
    samples[i] = (performance.now() - started) * 1000;
  }
  await host.stop();
  samples.sort();
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!;
  return { p50: at(0.5), p99: at(0.99) };
}

/**
 * `callers` concurrent callers, each making `calls` calls one after another; calls per
 * second over the whole, after one warm-up round. Counted, not timed: a peer that never
 * leaves the microtask queue would starve a timer.
 */
async function sustained(callers: number, calls: number, call: (i: number) => Promise<unknown>): Promise<number> {
  const round = async (count: number) => {
    await Promise.all(
      Array.from({ length: callers }, async (_, c) => {
        for (let i = 0; i < count; i++) await call(c * 1_000_000 + i);
      }),
    );
  };
  await round(Math.max(1, Math.floor(calls / 10)));
  const started = performance.now();
  await round(calls);
  return ((callers * calls) / (performance.now() - started)) * 1000;
}

export async function benchAsks(options: { callers: number; calls: number; durability: Durability; scratch: string }): Promise<{ asksPerS: number; ticksPerS: number }> {
  const log = options.durability === 'none' ? undefined : join(options.scratch, `asks-${options.durability}.log`);
  const host = createHost(system, { seed: 1, tickMs: 0, durability: options.durability, log });
  await host.start();
  const ticksBefore = host.tick;
  const started = performance.now();
  const asksPerS = await sustained(options.callers, options.calls, (i) => host.askJson('counter', i));
  const ticksPerS = ((host.tick - ticksBefore) / (performance.now() - started)) * 1000;
  await host.stop();
  return { asksPerS, ticksPerS };
}

export async function benchMapPeer(options: { callers: number; calls: number }): Promise<{ callsPerS: number }> {
  const map = new Map<number, number>();
  const get = async (key: number) => {
    map.set(key & 1023, (map.get(key & 1023) ?? 0) + 1);
    return map.get(key & 1023);
  };
  return { callsPerS: await sustained(options.callers, options.calls, get) };
}

export function benchFsync(options: { syncs: number; scratch: string }): { fsyncPerS: number } {
  const fd = openSync(join(options.scratch, 'fsync.bin'), 'w');
  const bytes = new Uint8Array(64);
  try {
    const started = performance.now();
    for (let i = 0; i < options.syncs; i++) {
      writeSync(fd, bytes);
      fsyncSync(fd);
    }
    return { fsyncPerS: (options.syncs / (performance.now() - started)) * 1000 };
  } finally {
    closeSync(fd);
  }
}
