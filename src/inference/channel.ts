/**
 * The orchestrator's end of the inference worker: commands go out on one ring, replies come
 * back on the other, matched by job number. Waiting never blocks the event loop: replies are
 * polled briefly while a tick settles (the worker answers a small run in microseconds) and
 * otherwise awaited with Atomics.waitAsync.
 */
import type { Worker } from 'node:worker_threads';
import { SabRing } from '../ring.ts';
import { startWorker } from '../workers.ts';
import { decodeRecordBody, encodeRecord, fastReplyHead, readHead, type ReplyHead } from './protocol.ts';

/** Per direction: a tick's batch of a few hundred requests of a small model fits many times over. */
export const inferenceRingBytes = 8 << 20;
/** Polls of the reply ring per event-loop turn while a tick settles (kept short: the worker needs the other core). */
const spinPolls = 500;
const waitSliceMs = 1;

export interface Reply {
  head: ReplyHead;
  binary: Uint8Array;
}

export class InferenceChannel {
  private readonly toWorker = SabRing.create(inferenceRingBytes);
  private readonly fromWorker = SabRing.create(inferenceRingBytes);
  private readonly worker: Worker;
  private readonly jobs = new Map<number, (reply: Reply) => void>();
  private nextJob = 1;
  private pumping = false;
  private dead: string | null = null;
  private readonly exited: Promise<void>;
  /** Set while the kernel waits for this tick's work: poll replies rather than sleep. */
  private spinning = false;
  /** Ends the pump's current sleep (settle wants it polling now). */
  private kick: (() => void) | null = null;

  constructor() {
    const entry = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
    this.worker = startWorker(entry, { workerData: { toWorker: this.toWorker.buffer, fromWorker: this.fromWorker.buffer } });
    // The worker sleeps on its ring between commands: it keeps the process alive only while
    // a command is outstanding (an Atomics.waitAsync alone does not).
    this.worker.unref();
    this.exited = new Promise((resolve) => {
      const down = (why: string) => {
        this.dead ??= why;
        resolve();
      };
      this.worker.once('error', (error) => down(`the inference worker failed: ${error.message}`));
      this.worker.once('exit', (code) => down(`the inference worker exited (code ${code})`));
    });
  }

  /** Sends a command; resolves with its reply (a failed reply if the worker is gone). */
  call(op: number, slot: number, json: unknown, binary?: Uint8Array): Promise<Reply> {
    if (this.dead !== null) return Promise.resolve({ head: { ok: false, error: this.dead }, binary: new Uint8Array(0) });
    const job = this.nextJob++;
    const record = encodeRecord(op, job, slot, json, binary);
    if (record.length > this.toWorker.recordBytesMax) {
      return Promise.resolve({
        head: { ok: false, error: `the batch is ${record.length} bytes, more than the worker ring takes (${this.toWorker.recordBytesMax}); send smaller tensors` },
        binary: new Uint8Array(0),
      });
    }
    const reply = new Promise<Reply>((resolve) => this.jobs.set(job, resolve));
    if (this.jobs.size === 1) this.worker.ref();
    void this.send(record);
    if (!this.pumping) void this.pump();
    return reply;
  }

  private async send(record: Uint8Array): Promise<void> {
    while (!this.toWorker.write(record)) {
      if (!(await this.toWorker.waitWritable(record.length, 1000)) && this.dead !== null) return;
    }
  }

  private drain(): number {
    let count = 0;
    this.fromWorker.drain((view) => {
      const record = view.slice();
      const { job, aux } = readHead(record);
      const { json, binary } = decodeRecordBody<ReplyHead>(record);
      const resolve = this.jobs.get(job);
      this.jobs.delete(job);
      resolve?.({ head: json ?? fastReplyHead(aux), binary });
      count++;
    });
    return count;
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      // Start after the caller's synchronous work (the rest of the tick's activations).
      await null;
      while (this.jobs.size > 0) {
        if (this.drain() > 0) {
          // Let the continuations run: they may send the next command.
          await null;
          continue;
        }
        if (this.dead !== null) {
          for (const [job, resolve] of this.jobs) {
            this.jobs.delete(job);
            resolve({ head: { ok: false, error: this.dead }, binary: new Uint8Array(0) });
          }
          break;
        }
        if (this.spinning) {
          let found = false;
          for (let poll = 0; poll < spinPolls && !found; poll++) found = this.drain() > 0;
          if (found) {
            await null;
            continue;
          }
          // Nothing yet: let the event loop turn (the worker may need this core), then poll again.
          await new Promise<void>((resolve) => setImmediate(resolve));
          continue;
        }
        const kicked = new Promise<void>((resolve) => (this.kick = resolve));
        await Promise.race([this.fromWorker.waitReadable(waitSliceMs), this.exited, kicked]);
        this.kick = null;
      }
    } finally {
      this.pumping = false;
      if (this.jobs.size === 0) this.worker.unref();
    }
  }

  /**
   * While set, the pump polls for replies instead of sleeping: the kernel is waiting for
   * this tick's runs and has nothing else to do. A pump asleep when it is set wakes at once.
   */
  set spin(on: boolean) {
    this.spinning = on;
    if (on) this.kick?.();
  }

  /** Why the worker is gone (it exited or failed), or null while it runs. */
  get deadReason(): string | null {
    return this.dead;
  }

  async close(): Promise<void> {
    if (this.dead === null) this.dead = 'the inference worker was stopped';
    await this.worker.terminate();
  }

  /** Ends the worker now, as a crash would (tests of worker loss). */
  async kill(): Promise<void> {
    await this.worker.terminate();
    await this.exited;
  }
}
