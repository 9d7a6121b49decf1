import { afterEach, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { SabRing } from '../src/ring.ts';
import { startWorker } from '../src/workers.ts';
import {
  checkRingRecord,
  encodeRingRecord,
  ringTestBodyBytesMax,
  ringTestPrefixBytes,
  type RingWorkerData,
  type RingWorkerReport,
} from './fixtures/ring-worker.ts';

/** 64 KiB holds ~560 records of ~116 B, so a million records wrap it ~1,800 times. */
const ringCapacityBytes = 64 * 1024;
const flushEveryRecords = 64;
/** A waitReadable/waitWritable that sees no progress for this long means the worker stalled or died. */
const stallMs = 10_000;

let worker: Worker | undefined;
afterEach(async () => {
  await worker?.terminate();
  worker = undefined;
});

function startRingWorker(data: RingWorkerData): { report: Promise<RingWorkerReport>; failure: () => unknown } {
  const started = startWorker(new URL('./fixtures/ring-worker.ts', import.meta.url), { workerData: data });
  worker = started;
  let failure: unknown = null;
  const report = new Promise<RingWorkerReport>((resolve, reject) => {
    started.once('message', resolve);
    started.once('error', (error) => {
      failure = error;
      reject(error);
    });
  });
  report.catch(() => {}); // surfaced through failure() while the main thread is busy
  return { report, failure: () => failure };
}

it('a real worker streams 1,000,000 checksummed records through a 64 KiB ring in order', async () => {
  const recordsTotal = 1_000_000;
  const ring = SabRing.create(ringCapacityBytes);
  const { report, failure } = startRingWorker({ mode: 'produce', ring: ring.buffer, records: recordsTotal, flushEveryRecords });

  let received = 0;
  while (received < recordsTotal) {
    if (failure() !== null) throw failure();
    // waitAsync: the orchestrator thread never blocks while it waits for the worker.
    if (!(await ring.waitReadable(stallMs))) {
      throw new Error(`no record for ${stallMs} ms after ${received} records (worker failure: ${String(failure())})`);
    }
    ring.drain((view) => {
      const problem = checkRingRecord(view, received);
      if (problem !== null) throw new Error(`record ${received}: ${problem}`);
      received++;
    });
  }

  const { records, waitsForSpace } = await report;
  expect(received).toBe(recordsTotal);
  expect(records).toBe(recordsTotal);
  // The ring is small enough that the worker had to block for space; otherwise the
  // backpressure path went untested.
  expect(waitsForSpace).toBeGreaterThan(0);
  expect(ring.tryRead()).toBeNull();
  expect(ring.usedBytes()).toBe(0);
});

it('a real worker blocking in waitReadableSync receives 200,000 records from the main thread in order', async () => {
  const recordsTotal = 200_000;
  const ring = SabRing.create(ringCapacityBytes);
  const { report, failure } = startRingWorker({ mode: 'consume', ring: ring.buffer, records: recordsTotal, flushEveryRecords });

  const scratch = new Uint8Array(ringTestPrefixBytes + ringTestBodyBytesMax);
  const view = new DataView(scratch.buffer);
  let waitsForSpace = 0;
  for (let index = 0; index < recordsTotal; index++) {
    const record = scratch.subarray(0, encodeRingRecord(index, scratch, view));
    while (!ring.tryWrite(record)) {
      if (failure() !== null) throw failure();
      waitsForSpace++;
      // The orchestrator's way to wait for space: flushes, then waits without blocking.
      if (!(await ring.waitWritable(record.length, stallMs))) {
        throw new Error(`no space freed for ${stallMs} ms at record ${index}`);
      }
    }
    if ((index + 1) % flushEveryRecords === 0) ring.flush();
  }
  ring.flush();

  const result = await report;
  expect(result.problem).toBeNull();
  expect(result.records).toBe(recordsTotal);
  expect(waitsForSpace).toBeGreaterThan(0);
  expect(ring.usedBytes()).toBe(0);
});
