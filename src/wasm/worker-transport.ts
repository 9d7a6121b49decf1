/**
 * The worker transport: one worker thread per lane, each running an AgentHost behind two
 * SharedArrayBuffer rings (commands in, results out; host-worker.ts is the thread's side).
 * Per tick `runTick` streams the queued commands into the rings, drains the results as
 * they come (never blocking the event loop: Atomics.waitAsync), and returns when every
 * busy worker has reported the tick done.
 *
 * A worker that dies (or that the wall-clock watchdog terminates, the one place lockstep
 * reads the clock) takes down only its own agents; it is replaced before `runTick` returns,
 * by a started spare when there is one. piscina is not used here: a pinned, stateful worker
 * driven over rings gets nothing from a task queue, and piscina's affinity balancer would
 * wait forever for a dead pinned worker (NOTES-DEPS); `bench/` keeps piscina as the
 * per-message peer.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { SabRing } from '../ring.ts';
import { startWorker } from '../workers.ts';
import type { MailboxSlabs } from '../slabs.ts';
import { Op, type AgentSetup, type PortMessage } from './protocol.ts';
import { decodeResult, queueLengthBytes, tickRecord, type AgentTickOutput, type CommandQueue } from './records.ts';
import type { LaneWork, PoolTransport, WorkerFault } from './transport.ts';
import { workerChunkRecords, workerResultSpinPollsNoSpareCore, workerResultSpinPollsSpareCore, workerResultWaitSliceMs, workerStackMb, workerStartupMs } from '../limits.ts';

const cores = availableParallelism();

export interface WorkerTransportOptions {
  workers: number;
  /** Idle workers kept started (started after the first tick, not to slow the start). */
  spareWorkers: number;
  ringBytes: number;
  /** Wall-clock limit of a tick on one worker, in ms, or Infinity (no watchdog). */
  watchdogMs: number;
}

interface WorkerRun {
  worker: PoolWorker;
  commands: CommandQueue;
  agents: ReadonlySet<number>;
  /** What to write next: -1 TICK_BEGIN, then the queue's records from this byte offset, then TICK_END at queue.length, then nothing (> queue.length). */
  cursor: number;
  done: boolean;
}

class PoolWorker {
  readonly toWorker: SabRing;
  readonly fromWorker: SabRing;
  readonly port: MessagePort;
  readonly worker: Worker;
  exited: Promise<string>;
  alive = true;
  /** Set after its first finished tick: until then it may still be starting (loading tsx, modules). */
  started = false;
  /** Fault injection: terminated during the next barrier, after its commands went out. */
  doomed = false;
  killedByFault = false;

  constructor(
    public index: number,
    ringBytes: number,
  ) {
    this.toWorker = SabRing.create(ringBytes);
    this.fromWorker = SabRing.create(ringBytes);
    const channel = new MessageChannel();
    this.port = channel.port1;
    // From sources (tsx, tests) the worker is host-worker.ts; from the build, host-worker.js.
    const entry = new URL(import.meta.url.endsWith('.ts') ? './host-worker.ts' : './host-worker.js', import.meta.url);
    this.worker = startWorker(entry, {
      workerData: { toWorker: this.toWorker.buffer, fromWorker: this.fromWorker.buffer, port: channel.port2 },
      // A stack deep enough that the metered call-depth limit, not V8's stack, ends a deep
      // recursion (V8's overflow point depends on the JIT tier and is not deterministic).
      resourceLimits: { stackSizeMb: workerStackMb },
      transferList: [channel.port2],
    });
    // The pool must never keep a process alive on its own.
    this.worker.unref();
    this.port.unref();
    this.exited = new Promise((resolve) => {
      // `this.index`, read at exit: a spare takes the index of the worker it replaces.
      this.worker.once('error', (error) => resolve(`worker ${this.index} failed: ${error.message}`));
      this.worker.once('exit', (code) => resolve(`worker ${this.index} exited with code ${code}`));
    });
    void this.exited.then(() => {
      this.alive = false;
    });
  }
}

export class WorkerTransport implements PoolTransport {
  private readonly pool: PoolWorker[] = [];
  private readonly spares: PoolWorker[] = [];
  /** The shared mailbox slabs not yet released: a worker started later is given them first. */
  private readonly slabs = new Map<number, SharedArrayBuffer>();
  private readonly tickScratch = new Uint8Array(12);
  private closed = false;

  constructor(private readonly options: WorkerTransportOptions) {
    for (let i = 0; i < options.workers; i++) this.pool.push(this.startWorker(i));
  }

  /** A new worker, given every live slab before anything else reaches it. */
  private startWorker(index: number): PoolWorker {
    const worker = new PoolWorker(index, this.options.ringBytes);
    for (const [id, buffer] of this.slabs) worker.port.postMessage({ kind: 'slab', id, buffer } satisfies PortMessage);
    return worker;
  }

  private post(message: PortMessage): void {
    for (const worker of [...this.pool, ...this.spares]) if (worker.alive) worker.port.postMessage(message);
  }

  shareSlab(id: number, buffer: SharedArrayBuffer): void {
    this.slabs.set(id, buffer);
    this.post({ kind: 'slab', id, buffer });
  }

  releaseSlab(id: number): void {
    if (!this.slabs.delete(id)) return;
    this.post({ kind: 'release', id });
  }

  get workers(): number {
    return this.pool.length;
  }

  get lanes(): number {
    return this.pool.length;
  }

  stage(lane: number, setup: AgentSetup): void {
    // Posted now, before the LOAD record is written at the barrier: the worker finds it waiting.
    this.pool[lane]!.port.postMessage({ kind: 'setup', setup } satisfies PortMessage);
  }

  mustJoin(lane: number, hasAgents: boolean): boolean {
    const worker = this.pool[lane]!;
    // A worker that died between ticks is found at the barrier even if it has nothing to do.
    return worker.doomed || (!worker.alive && hasAgents);
  }

  faultDue(): boolean {
    return this.pool.some((worker) => worker.doomed);
  }

  /**
   * Whatever a worker killed by fault injection did in its tick is discarded and all its
   * agents crash, so the outcome does not depend on how far it got: the log is the same
   * every run.
   */
  killDuringNextTick(lane: number): void {
    this.pool[lane]!.doomed = true;
  }

  /** Starts spare workers up to the wanted count (after the first tick, not to slow the start). */
  private topUpSpares(): void {
    for (let i = this.spares.filter((spare) => spare.alive).length; i < this.options.spareWorkers; i++) {
      this.spares.push(this.startWorker(-1));
    }
  }

  /**
   * One loop serves all busy workers: commands go out in chunks so every worker starts
   * early and works while the orchestrator still encodes, results are drained as they
   * arrive, and only when no worker can make progress does it wait (Atomics.waitAsync).
   */
  async runTick(tick: number, work: readonly LaneWork[], outputs: Map<number, AgentTickOutput>, slabs: MailboxSlabs): Promise<WorkerFault[]> {
    const faults: WorkerFault[] = [];
    const runs: WorkerRun[] = work.map((lane) => ({ worker: this.pool[lane.lane]!, commands: lane.commands, agents: lane.agents, cursor: -1, done: false }));
    const spinPolls = runs.length < cores ? workerResultSpinPollsSpareCore : workerResultSpinPollsNoSpareCore;
    const watchdogMs = this.options.watchdogMs;
    let watchdogFired = false;
    // A worker's first tick includes its own start-up, which the watchdog must not count.
    const startupMs = runs.some((run) => !run.worker.started) ? workerStartupMs : 0;
    const watchdog =
      watchdogMs === Infinity
        ? undefined
        : setTimeout(() => {
            watchdogFired = true;
            for (const run of runs) if (!run.done) void run.worker.worker.terminate();
          }, watchdogMs + startupMs);
    const fail = (run: WorkerRun, reason: string) => {
      run.done = true;
      const index = run.worker.index;
      faults.push({
        worker: index,
        agents: [...run.agents],
        reason: run.worker.killedByFault
          ? `worker ${index} killed by fault injection during tick ${tick}`
          : watchdogFired
            ? `watchdog: worker ${index} did not finish tick ${tick} within ${watchdogMs} ms and was terminated`
            : reason,
        watchdog: watchdogFired && !run.worker.killedByFault,
        nondeterministic: !run.worker.killedByFault,
      });
    };
    try {
      for (;;) {
        let pending = 0;
        for (let poll = 0; poll < spinPolls; poll++) {
          pending = 0;
          // Every worker's commands are staged before any is woken: a woken worker can take
          // this thread's core, and the next worker's commands would wait behind it.
          for (const run of runs) if (!run.done && run.worker.alive) this.writeChunk(run, tick);
          for (const run of runs) if (!run.done && run.worker.alive) run.worker.toWorker.flush();
          for (const run of runs) {
            if (run.done) continue;
            if (!run.worker.alive) {
              fail(run, await run.worker.exited);
              continue;
            }
            if (run.worker.doomed && run.cursor > run.commands.length) {
              // Killed once its commands are out; the loop sees it dead on a later pass.
              run.worker.doomed = false;
              run.worker.killedByFault = true;
              void run.worker.worker.terminate();
            }
            if (run.worker.doomed || run.worker.killedByFault) {
              // Never done, whatever it reports: terminate() is asynchronous, and a worker
              // that finishes the tick before it dies must not count as done, or its agents
              // would crash a tick later in some runs and not others. Its results are
              // drained only so that it never blocks on a full ring; they are discarded with
              // its agents' outputs once it is found dead.
              run.worker.fromWorker.drain(() => {});
              pending++;
              continue;
            }
            run.worker.fromWorker.drainRecords((bytes, words, start, length) => {
              if (decodeResult(bytes, words, start, length, outputs, slabs) === tick) {
                run.done = true;
                run.worker.started = true;
              }
            });
            if (!run.done) pending++;
          }
          if (pending === 0) break;
        }
        if (pending === 0) break;
        // No worker answered within the polls: sleep on the first pending worker's results,
        // bounded, then poll all of them again. One waiter at a time: a waiter left pending
        // would make every flush on the other side pay for a notify.
        const first = runs.find((run) => !run.done)!;
        await Promise.race([first.worker.fromWorker.waitReadable(workerResultWaitSliceMs), first.worker.exited]);
      }
    } finally {
      clearTimeout(watchdog);
    }
    for (const fault of faults) await this.replace(fault.worker);
    this.topUpSpares();
    return faults;
  }

  /** Stages up to `workerChunkRecords` more records of `run` (as many as fit); the caller flushes them. */
  private writeChunk(run: WorkerRun, tick: number): void {
    const queue = run.commands;
    if (run.cursor > queue.length) return;
    const ring = run.worker.toWorker;
    for (let written = 0; written <= workerChunkRecords; written++) {
      if (run.cursor < 0) {
        if (!ring.tryWrite(tickRecord(this.tickScratch, Op.tickBegin, tick))) break;
        run.cursor = 0;
      } else if (run.cursor === queue.length) {
        if (!ring.tryWrite(tickRecord(this.tickScratch, Op.tickEnd, tick))) break;
        run.cursor = queue.length + 1;
        break;
      } else {
        const length = queue.lengthAt(run.cursor);
        if (!ring.tryWriteParts(queue.bytes, run.cursor + queueLengthBytes, length, queue.bytes, 0, 0, queue.words)) break;
        run.cursor += queueLengthBytes + length;
      }
    }
  }

  /**
   * Puts a worker in place of a dead one: a started spare when there is one (no thread
   * start to wait for), else a new thread. The dead worker's agents are gone (they crashed).
   */
  private async replace(index: number): Promise<void> {
    const dead = this.pool[index]!;
    if (dead.alive) await dead.worker.terminate();
    if (this.closed) return;
    let replacement: PoolWorker | undefined;
    while (replacement === undefined && this.spares.length > 0) {
      const spare = this.spares.shift()!;
      if (spare.alive) replacement = spare;
    }
    replacement ??= this.startWorker(index);
    replacement.index = index;
    this.pool[index] = replacement;
  }

  async kill(lane: number): Promise<void> {
    const worker = this.pool[lane]!;
    await worker.worker.terminate();
    await worker.exited;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.pool, ...this.spares].map((worker) => worker.worker.terminate()));
  }
}
