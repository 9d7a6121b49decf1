/**
 * The orchestrator's end of the inference sessions: `call` sends a command record and
 * resolves with its reply, matched by job number. Two transports, one surface (what the
 * inference actor and the model manager use):
 *
 *   WorkerInferenceChannel    the SessionHost on a worker thread, over two rings. Waiting
 *                             never blocks the event loop: replies are polled briefly while
 *                             a tick settles (the worker answers a small run in
 *                             microseconds) and otherwise awaited with Atomics.waitAsync.
 *   InThreadInferenceChannel  the same SessionHost on the orchestrator's thread
 *                             (`workers: 0`): each command is served in turn, and a run
 *                             blocks the event loop while it computes.
 *
 * Both encode commands and decode replies with the same code (protocol.ts, `call` and
 * `receive` here) and refuse the same oversized batches, so an answer cannot depend on
 * the transport.
 */
import type { Worker } from 'node:worker_threads';
import { ConfigError } from '../errors.ts';
import { SabRing } from '../ring.ts';
import { startWorker } from '../workers.ts';
import { decodeRecordBody, encodeRecord, fastReplyHead, readHead, type ReplyHead } from './protocol.ts';
import type { SessionHost } from './session-host.ts';
import { inferenceRecordBytesMax, inferenceReplySpinPolls, inferenceReplyWaitSliceMs, inferenceRingBytes } from '../limits.ts';


export interface Reply {
  head: ReplyHead;
  binary: Uint8Array;
}

export interface InferenceChannelOptions {
  /** Serve the sessions on the orchestrator's thread (`workers: 0`) rather than on a worker. */
  inThread?: boolean;
}

function failedReply(error: string): Reply {
  return { head: { ok: false, error }, binary: new Uint8Array(0) };
}

export abstract class InferenceChannel {
  /** A channel to a new SessionHost: on a worker thread, or in-thread with `inThread`. */
  static open(options: InferenceChannelOptions = {}): InferenceChannel {
    return options.inThread === true ? new InThreadInferenceChannel() : new WorkerInferenceChannel();
  }

  protected readonly jobs = new Map<number, (reply: Reply) => void>();
  private nextJob = 1;
  protected dead: string | null = null;

  /** Sends a command; resolves with its reply (a failed reply if the host is gone). */
  call(op: number, slot: number, json: unknown, binary?: Uint8Array): Promise<Reply> {
    if (this.dead !== null) return Promise.resolve(failedReply(this.dead));
    const job = this.nextJob++;
    const record = encodeRecord(op, job, slot, json, binary);
    if (record.length > inferenceRecordBytesMax) {
      return Promise.resolve(failedReply(`the batch is ${record.length} bytes, more than the worker ring takes (${inferenceRecordBytesMax}); send smaller tensors`));
    }
    const reply = new Promise<Reply>((resolve) => this.jobs.set(job, resolve));
    this.transmit(job, record);
    return reply;
  }

  /** Hands a command record (job `job`, registered) to the host; its reply comes to `receive`. */
  protected abstract transmit(job: number, record: Uint8Array): void;

  /** Settles the job a reply record answers. The record is the channel's to keep. */
  protected receive(record: Uint8Array): void {
    const { job, aux } = readHead(record);
    const { json, binary } = decodeRecordBody<ReplyHead>(record);
    const resolve = this.jobs.get(job);
    this.jobs.delete(job);
    resolve?.({ head: json ?? fastReplyHead(aux), binary });
  }

  /** Fails every job still waiting with `reason`. */
  protected failPending(reason: string): void {
    for (const [job, resolve] of this.jobs) {
      this.jobs.delete(job);
      resolve(failedReply(reason));
    }
  }

  /**
   * While set, replies are polled for instead of slept on: the kernel is waiting for this
   * tick's runs and has nothing else to do. Only the worker transport has anything to do.
   */
  set spin(_on: boolean) {}

  /** Why the host is gone (its worker exited or failed, or the channel closed), or null while it serves. */
  get deadReason(): string | null {
    return this.dead;
  }

  /** Stops the host: its sessions are released; later calls get failed replies. */
  abstract close(): Promise<void>;

  /** Ends the worker now, as a crash would (tests of worker loss). */
  abstract kill(): Promise<void>;
}

class WorkerInferenceChannel extends InferenceChannel {
  private readonly toWorker = SabRing.create(inferenceRingBytes);
  private readonly fromWorker = SabRing.create(inferenceRingBytes);
  private readonly worker: Worker;
  private pumping = false;
  private readonly exited: Promise<void>;
  /** Set while the kernel waits for this tick's work: poll replies rather than sleep. */
  private spinning = false;
  /** Ends the pump's current sleep (settle wants it polling now). */
  private kick: (() => void) | null = null;

  constructor() {
    super();
    if (this.toWorker.recordBytesMax !== inferenceRecordBytesMax) {
      throw new Error(`assertion failed: the inference ring takes ${this.toWorker.recordBytesMax}-byte records, not ${inferenceRecordBytesMax}`);
    }
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

  protected transmit(_job: number, record: Uint8Array): void {
    if (this.jobs.size === 1) this.worker.ref();
    void this.send(record);
    if (!this.pumping) void this.pump();
  }

  private async send(record: Uint8Array): Promise<void> {
    while (!this.toWorker.write(record)) {
      if (!(await this.toWorker.waitWritable(record.length, 1000)) && this.dead !== null) return;
    }
  }

  private drain(): number {
    return this.fromWorker.drain((view) => this.receive(view.slice()));
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
          this.failPending(this.dead);
          break;
        }
        if (this.spinning) {
          let found = false;
          for (let poll = 0; poll < inferenceReplySpinPolls && !found; poll++) found = this.drain() > 0;
          if (found) {
            await null;
            continue;
          }
          // Nothing yet: let the event loop turn (the worker may need this core), then poll again.
          await new Promise<void>((resolve) => setImmediate(resolve));
          continue;
        }
        const kicked = new Promise<void>((resolve) => (this.kick = resolve));
        await Promise.race([this.fromWorker.waitReadable(inferenceReplyWaitSliceMs), this.exited, kicked]);
        this.kick = null;
      }
    } finally {
      this.pumping = false;
      if (this.jobs.size === 0) this.worker.unref();
    }
  }

  /** A pump asleep when it is set wakes at once. */
  override set spin(on: boolean) {
    this.spinning = on;
    if (on) this.kick?.();
  }

  async close(): Promise<void> {
    if (this.dead === null) this.dead = 'the inference worker was stopped';
    await this.worker.terminate();
  }

  async kill(): Promise<void> {
    await this.worker.terminate();
    await this.exited;
  }
}

/**
 * The SessionHost on the orchestrator's thread. onnxruntime-node is imported when the
 * first channel opens (a runtime with workers: 0 and models), not with lockstep. Commands
 * are served in the order sent, one at a time, as the worker serves its ring.
 */
class InThreadInferenceChannel extends InferenceChannel {
  private readonly host: Promise<SessionHost>;
  /** The last command served or waiting its turn. */
  private queue: Promise<void> = Promise.resolve();

  constructor() {
    super();
    this.host = import('./session-host.ts').then(({ SessionHost }) => new SessionHost({ replyBytesMax: inferenceRecordBytesMax }));
    // A failed start (no ONNX Runtime binary) surfaces as failed replies, and in deadReason.
    this.host.catch((error: unknown) => {
      this.dead ??= `the in-thread inference host could not start: ${(error as Error).message}`;
    });
  }

  protected transmit(job: number, record: Uint8Array): void {
    this.queue = this.queue.then(async () => {
      let reply: Uint8Array;
      try {
        reply = await (await this.host).handle(record);
      } catch (error) {
        // handle() answers every failure itself; only a failed start lands here.
        this.jobs.get(job)?.(failedReply(this.dead ?? (error as Error).message));
        this.jobs.delete(job);
        return;
      }
      this.receive(reply);
    });
  }

  async close(): Promise<void> {
    if (this.dead === null) this.dead = 'the inference host was stopped';
    await this.queue;
    try {
      await (await this.host).close();
    } catch {
      // Never started: nothing to release.
    }
  }

  async kill(): Promise<void> {
    throw new ConfigError("no inference worker to kill: with workers: 0 the inference sessions run on the orchestrator's thread");
  }
}
