/**
 * Producer for benchSabRing (bench/ring.ts): once told 'go', writes `records` records of
 * `payloadBytes` into the ring as fast as it can, flushing every `flushEveryRecords` and
 * blocking for space when the ring is full, then reports 'done'.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SabRing } from '../../src/ring.ts';

export interface RingProducerData {
  ring: SharedArrayBuffer;
  records: number;
  payloadBytes: number;
  flushEveryRecords: number;
}

const port = parentPort;
if (port === null) throw new Error('bench/workers/ring-producer.ts runs as a worker thread only');
const { ring: buffer, records, payloadBytes, flushEveryRecords } = workerData as RingProducerData;
const ring = SabRing.attach(buffer);
const payload = new Uint8Array(payloadBytes);

port.once('message', () => {
  let waitsForSpace = 0;
  for (let index = 0; index < records; index++) {
    // One changing byte, as a real sender's payload changes; the rest is what it is.
    if (payloadBytes > 0) payload[0] = index & 0xff;
    while (!ring.tryWrite(payload)) {
      waitsForSpace++;
      ring.waitWritableSync(payloadBytes);
    }
    if ((index + 1) % flushEveryRecords === 0) ring.flush();
  }
  ring.flush();
  port.postMessage({ done: true, waitsForSpace });
});
port.postMessage('ready');
