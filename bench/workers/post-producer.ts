/**
 * Producer for benchPostMessage (bench/ring.ts): once told 'go', posts `messages` fresh
 * `payloadBytes` Uint8Arrays to the main thread (structured clone, no transfer: what a
 * user writing `port.postMessage(bytes)` gets), then reports 'done'.
 */
import { parentPort, workerData } from 'node:worker_threads';

export interface PostProducerData {
  messages: number;
  payloadBytes: number;
}

const port = parentPort;
if (port === null) throw new Error('bench/workers/post-producer.ts runs as a worker thread only');
const { messages, payloadBytes } = workerData as PostProducerData;

port.once('message', () => {
  for (let index = 0; index < messages; index++) {
    const payload = new Uint8Array(payloadBytes);
    if (payloadBytes > 0) payload[0] = index & 0xff;
    port.postMessage(payload);
  }
  port.postMessage('done');
});
port.postMessage('ready');
