/**
 * The WASM worker pool: a fixed set of worker threads, each hosting the agents pinned to
 * it, each joined to the orchestrator by two SharedArrayBuffer rings (commands in, results
 * out). Per tick the orchestrator queues commands in memory, then `barrier(tick)` streams
 * them into the rings, drains the results as they come (never blocking its event loop:
 * Atomics.waitAsync), and returns when every busy worker has reported the tick done.
 *
 * Pinning is deterministic (agent id modulo worker count) but nothing depends on it: the
 * kernel applies the results in (priority desc, actor id) order whatever worker ran them.
 *
 * A worker that dies (or that the wall-clock watchdog terminates, the one place lockstep
 * reads the clock) takes down only its own agents; it is replaced before the barrier
 * returns. piscina is not used here: a pinned, stateful worker driven over rings gets
 * nothing from a task queue, and piscina's affinity balancer would wait forever for a
 * dead pinned worker (NOTES-DEPS); `bench/` keeps piscina as the per-message peer.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import type { Envelope } from '../envelope.ts';
import { ConfigError } from '../errors.ts';
import { SabRing } from '../ring.ts';
import { startWorker } from '../workers.ts';
import {
  CrashKind,
  Op,
  Result,
  deliverHeaderBytes,
  readU32,
  writeU32,
  type AgentSetup,
  type CrashKindCode,
} from './protocol.ts';

/** 1 MiB per direction: a tick's commands for a few hundred agents fit without waiting. */
export const workerRingBytesDefault = 1 << 20;
/** Last resort for a worker that stops answering (an unmetered loop would be a lockstep bug). */
export const watchdogMsDefault = 10_000;
/** setTimeout holds at most 2^31-1 ms (and turns more into 1 ms): leave room for the start-up allowance. */
const watchdogMsMax = 2 ** 31 - 1 - 60_000;
/** Worker stack: 1,000 frames of up to ~30 KiB each. */
const workerStackMb = 32;
/** Allowance for a new worker's first tick (thread start, tsx, module instantiation). */
const workerStartupMs = 30_000;
export const workersMax = 64;
/** Longest single asynchronous wait before polling every worker again. */
const waitSliceMs = 1;
/**
 * Rounds of polling the workers before waiting asynchronously. With a core to spare, a
 * long poll (tens of microseconds) beats an Atomics.waitAsync wake-up through the event
 * loop; when the busy workers already fill every core, polling only takes CPU from them.
 */
const resultSpinPollsSpareCore = 2_000;
const resultSpinPollsNoSpareCore = 50;
const cores = availableParallelism();
/** Commands written per worker per round: small enough that workers start while the rest is encoded. */
const chunkRecords = 128;

interface WorkerRun {
  worker: PoolWorker;
  commands: Command[];
  /** Next command to write: -1 is TICK_BEGIN, commands.length is TICK_END. */
  next: number;
  /** Bytes of the record that did not fit, to wait for room for. */
  pendingBytes: number;
  done: boolean;
}

export interface WasmPoolOptions {
  workers: number;
  /**
   * Idle workers kept started, so a dead worker is replaced at once rather than after a
   * thread start (default 1; started after the pool's first tick).
   */
  spareWorkers?: number;
  ringCapacityBytes?: number;
  watchdogMs?: number;
}

export interface AgentTickOutput {
  publishes: { topic: number; priority: number; payload: Uint8Array }[];
  /** `name` is set when the topic id is no topic's (a refused inference lookup, host-worker.ts). */
  refused: { topic: number; code: number; name: string | null }[];
  logs: { level: number; text: string }[];
  crash: { kind: CrashKindCode; consumed: number; reason: string } | null;
  stopRequested: boolean;
  loaded: { ok: boolean; error: string } | null;
}

export interface WorkerFault {
  worker: number;
  /** The agents that were on it: all crashed. */
  agents: number[];
  reason: string;
  /** True when the wall-clock watchdog fired: a nondeterministic fault. */
  watchdog: boolean;
  /**
   * True unless the fault plan killed it (a logged input replay repeats): a worker that
   * dies on its own, is killed from outside (`runtime.killWorker`) or by the watchdog
   * leaves crashes in the log that replay cannot reproduce.
   */
  nondeterministic: boolean;
}

export interface BarrierResult {
  outputs: Map<number, AgentTickOutput>;
  faults: WorkerFault[];
}

type Command =
  | { op: typeof Op.deliver; agent: number; envelope: Envelope }
  | { op: typeof Op.init | typeof Op.shutdown | typeof Op.unload | typeof Op.step | typeof Op.exhaustFuel; agent: number }
  | { op: typeof Op.load; agent: number; token: number };

class PoolWorker {
  readonly toWorker: SabRing;
  readonly fromWorker: SabRing;
  readonly port: MessagePort;
  readonly worker: Worker;
  readonly agents = new Set<number>();
  commands: Command[] = [];
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

function emptyOutput(): AgentTickOutput {
  return { publishes: [], refused: [], logs: [], crash: null, stopRequested: false, loaded: null };
}

const utf8 = new TextDecoder();

export class WasmPool {
  private readonly workers: PoolWorker[] = [];
  private readonly agentWorker = new Map<number, PoolWorker>();
  private readonly ringBytes: number;
  private readonly watchdogMs: number;
  private nextToken = 1;
  private scratch = new Uint8Array(4096);
  private closed = false;
  private readonly spares: PoolWorker[] = [];
  private readonly sparesWanted: number;

  constructor(options: WasmPoolOptions) {
    if (!(Number.isInteger(options.workers) && options.workers >= 1 && options.workers <= workersMax)) {
      throw new ConfigError(`workers must be an integer in 1..${workersMax}, got ${options.workers}`);
    }
    this.ringBytes = options.ringCapacityBytes ?? workerRingBytesDefault;
    this.watchdogMs = options.watchdogMs ?? watchdogMsDefault;
    if (!(this.watchdogMs === Infinity || (Number.isInteger(this.watchdogMs) && this.watchdogMs >= 1 && this.watchdogMs <= watchdogMsMax))) {
      throw new ConfigError(`watchdogMs must be an integer in 1..${watchdogMsMax} or Infinity (no watchdog), got ${this.watchdogMs}`);
    }
    this.sparesWanted = options.spareWorkers ?? 1;
    if (!(Number.isInteger(this.sparesWanted) && this.sparesWanted >= 0 && this.sparesWanted <= workersMax)) {
      throw new ConfigError(`spareWorkers must be an integer in 0..${workersMax}, got ${options.spareWorkers}`);
    }
    for (let i = 0; i < options.workers; i++) this.workers.push(new PoolWorker(i, this.ringBytes));
  }

  /** Starts spare workers up to the wanted count (after the first tick, not to slow the start). */
  private topUpSpares(): void {
    for (let i = this.spares.filter((spare) => spare.alive).length; i < this.sparesWanted; i++) {
      this.spares.push(new PoolWorker(-1, this.ringBytes));
    }
  }

  get size(): number {
    return this.workers.length;
  }

  /** The worker an agent runs on: a fixed rule, so a rerun pins the same way. */
  workerOf(agentId: number): number {
    return agentId % this.workers.length;
  }

  /** Queues an agent's module for its worker; the LOADED result comes at the next barrier. */
  load(setup: Omit<AgentSetup, 'token'>): void {
    const worker = this.workers[this.workerOf(setup.agentId)]!;
    const token = this.nextToken++;
    // Posted now, before the LOAD record is written at the barrier: the worker finds it waiting.
    worker.port.postMessage({ ...setup, token } satisfies AgentSetup);
    worker.agents.add(setup.agentId);
    this.agentWorker.set(setup.agentId, worker);
    worker.commands.push({ op: Op.load, agent: setup.agentId, token });
  }

  init(agentId: number): void {
    this.queue({ op: Op.init, agent: agentId });
  }

  deliver(agentId: number, envelope: Envelope): void {
    this.queue({ op: Op.deliver, agent: agentId, envelope });
  }

  step(agentId: number): void {
    this.queue({ op: Op.step, agent: agentId });
  }

  shutdown(agentId: number): void {
    this.queue({ op: Op.shutdown, agent: agentId });
  }

  /** Forgets an agent (after a crash); its instance is dropped at the next barrier. */
  unload(agentId: number): void {
    const worker = this.agentWorker.get(agentId);
    if (worker === undefined) return;
    worker.commands.push({ op: Op.unload, agent: agentId });
    worker.agents.delete(agentId);
    this.agentWorker.delete(agentId);
  }

  /** Fault injection: the agent's next call this tick finds its fuel spent (and traps). */
  exhaustFuel(agentId: number): void {
    this.queue({ op: Op.exhaustFuel, agent: agentId });
  }

  /**
   * Fault injection: worker `index` is terminated in the middle of the next tick, after its
   * commands went out. Whatever it did that tick is discarded and all its agents crash, so
   * the outcome does not depend on how far it got: the log is the same every run.
   */
  killDuringNextTick(index: number): void {
    const worker = this.workers[index];
    if (worker === undefined) throw new ConfigError(`no worker ${index}; the pool has ${this.workers.length}`);
    worker.doomed = true;
  }

  hasWork(): boolean {
    return this.workers.some((worker) => worker.commands.length > 0 || worker.doomed);
  }

  private queue(command: Command): void {
    const worker = this.agentWorker.get(command.agent);
    if (worker === undefined) throw new Error(`assertion failed: agent ${command.agent} is not loaded in the pool`);
    worker.commands.push(command);
  }

  /**
   * Runs tick `tick` on every worker that has commands and collects what the agents did.
   * Resolves when all of them are done, or have died (reported as faults, and replaced).
   *
   * One loop serves all busy workers: commands go out in chunks so every worker starts
   * early and works while the orchestrator still encodes, results are drained as they
   * arrive, and only when no worker can make progress does it wait (Atomics.waitAsync).
   */
  async barrier(tick: number): Promise<BarrierResult> {
    const outputs = new Map<number, AgentTickOutput>();
    const faults: WorkerFault[] = [];
    // A worker that died between ticks is found here even if it has nothing to do.
    const runs: WorkerRun[] = this.workers
      .filter((worker) => worker.commands.length > 0 || worker.doomed || (!worker.alive && worker.agents.size > 0))
      .map((worker) => {
        const run: WorkerRun = { worker, commands: worker.commands, next: -1, pendingBytes: 0, done: false };
        worker.commands = [];
        return run;
      });
    const spinPolls = runs.length < cores ? resultSpinPollsSpareCore : resultSpinPollsNoSpareCore;
    let watchdogFired = false;
    // A worker's first tick includes its own start-up, which the watchdog must not count.
    const startupMs = runs.some((run) => !run.worker.started) ? workerStartupMs : 0;
    const watchdog =
      this.watchdogMs === Infinity
        ? undefined
        : setTimeout(() => {
            watchdogFired = true;
            for (const run of runs) if (!run.done) void run.worker.worker.terminate();
          }, this.watchdogMs + startupMs);
    const fail = (run: WorkerRun, reason: string) => {
      run.done = true;
      const index = run.worker.index;
      faults.push({
        worker: index,
        agents: [...run.worker.agents],
        reason: run.worker.killedByFault
          ? `worker ${index} killed by fault injection during tick ${tick}`
          : watchdogFired
            ? `watchdog: worker ${index} did not finish tick ${tick} within ${this.watchdogMs} ms and was terminated`
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
          for (const run of runs) {
            if (run.done) continue;
            if (!run.worker.alive) {
              fail(run, await run.worker.exited);
              continue;
            }
            this.writeChunk(run, tick);
            if (run.worker.doomed && run.next > run.commands.length) {
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
            run.worker.fromWorker.drain((view) => {
              if (this.decode(view, outputs) === tick) {
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
        await Promise.race([first.worker.fromWorker.waitReadable(waitSliceMs), first.worker.exited]);
      }
    } finally {
      clearTimeout(watchdog);
    }
    for (const fault of faults) {
      for (const agent of fault.agents) outputs.delete(agent);
      await this.replace(fault.worker);
    }
    this.topUpSpares();
    return { outputs, faults };
  }

  /** Writes up to `chunkRecords` more commands of `run` (as many as fit), then publishes them. */
  private writeChunk(run: WorkerRun, tick: number): void {
    if (run.next > run.commands.length) return;
    const ring = run.worker.toWorker;
    const last = Math.min(run.commands.length, run.next + chunkRecords);
    run.pendingBytes = 0;
    while (run.next <= last) {
      const record = this.encode(run.commands, run.next, tick);
      if (!ring.tryWrite(record)) {
        run.pendingBytes = record.length;
        break;
      }
      run.next++;
    }
    ring.flush();
  }

  private encode(commands: Command[], index: number, tick: number): Uint8Array {
    if (index < 0 || index >= commands.length) {
      const record = this.scratchOf(12);
      writeU32(record, 0, index < 0 ? Op.tickBegin : Op.tickEnd);
      writeU32(record, 4, 0);
      writeU32(record, 8, tick >>> 0);
      return record.subarray(0, 12);
    }
    const command = commands[index]!;
    if (command.op === Op.deliver) {
      const envelope = command.envelope;
      const length = deliverHeaderBytes + envelope.payload.length;
      const record = this.scratchOf(length);
      writeU32(record, 0, Op.deliver);
      writeU32(record, 4, command.agent);
      writeU32(record, 8, envelope.topic);
      writeU32(record, 12, envelope.sender);
      writeU32(record, 16, envelope.seq >>> 0);
      writeU32(record, 20, envelope.priority);
      record.set(envelope.payload, deliverHeaderBytes);
      return record.subarray(0, length);
    }
    const record = this.scratchOf(12);
    writeU32(record, 0, command.op);
    writeU32(record, 4, command.agent);
    writeU32(record, 8, command.op === Op.load ? command.token : command.op === Op.step ? tick >>> 0 : 0);
    return record.subarray(0, 12);
  }

  private scratchOf(bytes: number): Uint8Array {
    if (this.scratch.length < bytes) this.scratch = new Uint8Array(Math.max(bytes, this.scratch.length * 2));
    return this.scratch;
  }

  /** Folds one result record into `outputs`; returns the tick of a TICK_DONE, else -1. */
  private decode(view: Uint8Array, outputs: Map<number, AgentTickOutput>): number {
    const op = readU32(view, 0);
    const agent = readU32(view, 4);
    if (op === Result.tickDone) return readU32(view, 8);
    let output = outputs.get(agent);
    if (output === undefined) {
      output = emptyOutput();
      outputs.set(agent, output);
    }
    switch (op) {
      case Result.publish:
        output.publishes.push({ topic: readU32(view, 8), priority: readU32(view, 12), payload: view.slice(16) });
        break;
      case Result.refused:
        output.refused.push({ topic: readU32(view, 8), code: readU32(view, 12), name: view.length > 16 ? utf8.decode(view.subarray(16)) : null });
        break;
      case Result.log:
        output.logs.push({ level: readU32(view, 8), text: utf8.decode(view.subarray(12)) });
        break;
      case Result.crash:
        output.crash = { kind: readU32(view, 8) as CrashKindCode, consumed: readU32(view, 12), reason: utf8.decode(view.subarray(16)) };
        break;
      case Result.stop:
        output.stopRequested = true;
        break;
      case Result.loaded:
        output.loaded = { ok: readU32(view, 8) === 1, error: utf8.decode(view.subarray(12)) };
        if (!output.loaded.ok) output.crash = { kind: CrashKind.instantiate, consumed: 0, reason: output.loaded.error };
        break;
      default:
        throw new Error(`assertion failed: unknown result opcode ${op}`);
    }
    return -1;
  }

  /**
   * Puts a worker in place of a dead one: a started spare when there is one (no thread
   * start to wait for), else a new thread. The dead worker's agents are gone (they crashed).
   */
  private async replace(index: number): Promise<void> {
    const dead = this.workers[index]!;
    for (const agent of dead.agents) this.agentWorker.delete(agent);
    if (dead.alive) await dead.worker.terminate();
    if (this.closed) return;
    let replacement: PoolWorker | undefined;
    while (replacement === undefined && this.spares.length > 0) {
      const spare = this.spares.shift()!;
      if (spare.alive) replacement = spare;
    }
    replacement ??= new PoolWorker(index, this.ringBytes);
    replacement.index = index;
    this.workers[index] = replacement;
  }

  /** Kills worker `index` now (fault injection and tests); the next barrier reports it. */
  async kill(index: number): Promise<void> {
    const worker = this.workers[index];
    if (worker === undefined) throw new ConfigError(`no worker ${index}; the pool has ${this.workers.length}`);
    await worker.worker.terminate();
    await worker.exited;
  }

  /** Agents currently pinned to worker `index`. */
  agentsOn(index: number): number[] {
    return [...(this.workers[index]?.agents ?? [])];
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.workers, ...this.spares].map((worker) => worker.worker.terminate()));
  }
}
