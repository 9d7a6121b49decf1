/**
 * The inference worker: a thread that binds a SessionHost (session-host.ts, which owns the
 * ONNX Runtime sessions) to its two rings, so `session.run` (which blocks its thread:
 * NOTES-DEPS) never blocks the orchestrator's event loop. It takes command records off one
 * ring one at a time, in order, and writes each reply to the other.
 */
import { workerData } from 'node:worker_threads';
import { SabRing } from '../ring.ts';
import { SessionHost } from './session-host.ts';

const { toWorker, fromWorker } = workerData as { toWorker: SharedArrayBuffer; fromWorker: SharedArrayBuffer };
const commands = SabRing.attach(toWorker);
const replies = SabRing.attach(fromWorker);
const host = new SessionHost({ replyBytesMax: replies.recordBytesMax });

async function serve(): Promise<void> {
  for (;;) {
    const record = commands.tryRead();
    // Idle: sleep on the ring. Polling for the next command instead (tried: up to ~1 ms)
    // made ticks slower here: on 2 cores the polling thread takes time from the orchestrator.
    if (record === null) {
      commands.waitReadableSync();
      continue;
    }
    const reply = await host.handle(record);
    while (!replies.write(reply)) replies.waitWritableSync(reply.length);
  }
}

void serve();
