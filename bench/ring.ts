/**
 * One-way worker -> main throughput of lockstep's SharedArrayBuffer ring against the peer a
 * user would otherwise reach for, `postMessage` with a small Uint8Array.
 *
 * Both benchmarks start the worker, wait until it reports 'ready' (tsx start-up is not
 * timed), then time from the 'go' message to the main thread having received the last
 * record. The main thread counts records and reads their length, nothing more.
 * - benchSabRing: the worker writes `payloadBytes` records into a 64 KiB ring, flushing
 *   every `flushEveryRecords`, blocking for space when full; the main thread consumes with
 *   `drain` and waits with `waitReadable` (Atomics.waitAsync), as the orchestrator would.
 * - benchPostMessage: the worker posts a fresh Uint8Array per message (cloned, not
 *   transferred); the main thread counts 'message' events.
 * Nothing is printed; callers print the results side by side with the core count.
 */
import { performance } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import { SabRing } from '../src/ring.ts';
import { startWorker } from '../src/workers.ts';
import type { RingProducerData } from './workers/ring-producer.ts';
import type { PostProducerData } from './workers/post-producer.ts';
import { ringCapacityBytesDefault } from '../src/limits.ts';

export interface SabRingBenchOptions {
  /** Records sent one way. 2,000,000 keeps a run near a second on 2 cores. */
  records?: number;
  payloadBytes?: number;
  /** Records per flush (one head store + at most one notify per batch). */
  flushEveryRecords?: number;
  ringCapacityBytes?: number;
}

export interface PostMessageBenchOptions {
  /** 200,000 rather than 2,000,000: at 0.07-0.2M msgs/s the larger count takes 10-30 s. */
  messages?: number;
  payloadBytes?: number;
}

const payloadBytesDefault = 64;
/** Amortises the head store and the wake-up over 64 records, roughly one tick's batch. */
const flushEveryRecordsDefault = 64;
/** A run that sees no progress for this long has a dead or stuck worker. */
const stallMs = 10_000;

function waitForMessage(worker: Worker, accept: (message: unknown) => boolean): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown) => {
      if (!accept(message)) return;
      cleanup();
      resolve(message);
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onExit = (code: number) => {
      cleanup();
      reject(new Error(`bench worker exited with code ${code} before it answered`));
    };
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.once('error', onError);
    worker.once('exit', onExit);
  });
}

export async function benchSabRing(opts: SabRingBenchOptions = {}): Promise<{ msgsPerS: number }> {
  const records = opts.records ?? 2_000_000;
  const payloadBytes = opts.payloadBytes ?? payloadBytesDefault;
  const flushEveryRecords = opts.flushEveryRecords ?? flushEveryRecordsDefault;
  const ring = SabRing.create(opts.ringCapacityBytes ?? ringCapacityBytesDefault);
  const workerData: RingProducerData = { ring: ring.buffer, records, payloadBytes, flushEveryRecords };
  const worker = startWorker(new URL('./workers/ring-producer.ts', import.meta.url), { workerData });
  try {
    await waitForMessage(worker, (message) => message === 'ready');
    const done = waitForMessage(worker, (message) => typeof message === 'object' && message !== null);
    done.catch(() => {}); // awaited below; a failure while draining surfaces there or as a stall
    let received = 0;
    let bytesSeen = 0;
    const count = (view: Uint8Array) => {
      received++;
      bytesSeen += view.length;
    };
    const startMs = performance.now();
    worker.postMessage('go');
    while (received < records) {
      if (ring.drain(count) === 0 && !(await ring.waitReadable(stallMs))) {
        throw new Error(`benchSabRing: no record for ${stallMs} ms after ${received} of ${records}`);
      }
    }
    const elapsedMs = performance.now() - startMs;
    await done;
    if (bytesSeen !== records * payloadBytes) throw new Error(`benchSabRing: saw ${bytesSeen} payload bytes`);
    return { msgsPerS: (records / elapsedMs) * 1000 };
  } finally {
    await worker.terminate();
  }
}

export async function benchPostMessage(opts: PostMessageBenchOptions = {}): Promise<{ msgsPerS: number }> {
  const messages = opts.messages ?? 200_000;
  const payloadBytes = opts.payloadBytes ?? payloadBytesDefault;
  const workerData: PostProducerData = { messages, payloadBytes };
  const worker = startWorker(new URL('./workers/post-producer.ts', import.meta.url), { workerData });
  try {
    await waitForMessage(worker, (message) => message === 'ready');
    let received = 0;
    let bytesSeen = 0;
    let startMs = 0;
    const lastArrivedMs = waitForMessage(worker, (message) => {
      if (!(message instanceof Uint8Array)) return false;
      received++;
      bytesSeen += message.length;
      return received === messages;
    }).then(() => performance.now());
    startMs = performance.now();
    worker.postMessage('go');
    const elapsedMs = (await lastArrivedMs) - startMs;
    if (bytesSeen !== messages * payloadBytes) throw new Error(`benchPostMessage: saw ${bytesSeen} payload bytes`);
    return { msgsPerS: (messages / elapsedMs) * 1000 };
  } finally {
    await worker.terminate();
  }
}
