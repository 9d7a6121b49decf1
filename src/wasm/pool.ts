/**
 * The WASM worker pool: the agents of a runtime, each pinned to a lane, and the transport
 * that runs the lanes (transport.ts). Per tick the orchestrator queues commands in memory,
 * per lane; `barrier(tick)` hands the busy lanes to the transport, which runs them and
 * folds the results into per-agent outputs, and resolves when every lane is done.
 *
 *   workers: 1..64  WorkerTransport: one worker thread per lane, two SAB rings each
 *   workers: 0      InThreadTransport: one lane on the orchestrator's thread (simulation)
 *
 * Pinning is deterministic (agent id modulo lane count) but nothing depends on it: the
 * kernel applies the results in (priority desc, actor id) order whatever lane ran them,
 * and every lane runs the same AgentHost code on the same records, so a run gives the same
 * log with any worker count, 0 included.
 */
import type { Envelope } from '../envelope.ts';
import { envelopeBytes, envelopeHeaderBytes, envelopeSlotBytes, writeEnvelopeHeader } from '../envelope-layout.ts';
import { ConfigError } from '../errors.ts';
import type { MailboxSlabs } from '../slabs.ts';
import { InThreadTransport } from './in-thread-transport.ts';
import { Op, type AgentSetup } from './protocol.ts';
import { CommandQueue, type AgentTickOutput } from './records.ts';
import type { LaneWork, PoolTransport, WorkerFault } from './transport.ts';
import { WorkerTransport } from './worker-transport.ts';
import { watchdogMsDefault, watchdogMsMax, workerRingBytesDefault, workersMax } from '../limits.ts';

export type { AgentTickOutput } from './records.ts';
export type { WorkerFault } from './transport.ts';


export interface WasmPoolOptions {
  /** Worker threads, 1..64; 0 runs every agent on the orchestrator's thread (in-thread transport). */
  workers: number;
  /**
   * Idle workers kept started, so a dead worker is replaced at once rather than after a
   * thread start (default 1; started after the pool's first tick). Unused with workers: 0.
   */
  spareWorkers?: number;
  ringCapacityBytes?: number;
  /** Wall-clock limit of a worker's tick. Does not apply with workers: 0 (see in-thread-transport.ts). */
  watchdogMs?: number;
}

export interface BarrierResult {
  outputs: Map<number, AgentTickOutput>;
  faults: WorkerFault[];
}

/** The agents pinned to one lane and the commands queued for it, encoded. */
class Lane {
  readonly agents = new Set<number>();
  /** Two queues: one is being filled while the other's records are on their way. */
  commands = new CommandQueue();
  private spare = new CommandQueue();

  constructor(readonly index: number) {}

  /** Hands out the filled queue for a barrier and starts filling the other. */
  take(): CommandQueue {
    const taken = this.commands;
    this.spare.clear();
    this.commands = this.spare;
    this.spare = taken;
    return taken;
  }
}

export class WasmPool {
  private readonly transport: PoolTransport;
  private readonly lanes: Lane[];
  private readonly agentLane = new Map<number, Lane>();
  private nextToken = 1;

  constructor(
    options: WasmPoolOptions,
    /** Where envelopes for agents live, and what they publish goes (src/slabs.ts). */
    private readonly slabs: MailboxSlabs,
  ) {
    if (!(Number.isInteger(options.workers) && options.workers >= 0 && options.workers <= workersMax)) {
      throw new ConfigError(`workers must be an integer in 0..${workersMax} (0: every agent on the orchestrator's thread), got ${options.workers}`);
    }
    const ringBytes = options.ringCapacityBytes ?? workerRingBytesDefault;
    const watchdogMs = options.watchdogMs ?? watchdogMsDefault;
    if (!(watchdogMs === Infinity || (Number.isInteger(watchdogMs) && watchdogMs >= 1 && watchdogMs <= watchdogMsMax))) {
      throw new ConfigError(`watchdogMs must be an integer in 1..${watchdogMsMax} or Infinity (no watchdog), got ${watchdogMs}`);
    }
    const spareWorkers = options.spareWorkers ?? 1;
    if (!(Number.isInteger(spareWorkers) && spareWorkers >= 0 && spareWorkers <= workersMax)) {
      throw new ConfigError(`spareWorkers must be an integer in 0..${workersMax}, got ${options.spareWorkers}`);
    }
    this.transport = options.workers === 0 ? new InThreadTransport() : new WorkerTransport({ workers: options.workers, spareWorkers, ringBytes, watchdogMs });
    this.lanes = Array.from({ length: this.transport.lanes }, (_, index) => new Lane(index));
    slabs.setListener({
      created: (id, buffer) => this.transport.shareSlab(id, buffer),
      released: (id) => this.transport.releaseSlab(id),
    });
  }

  /** Worker threads (0 with the in-thread transport). */
  get size(): number {
    return this.transport.workers;
  }

  /** True when the agents run on the orchestrator's thread (workers: 0). */
  get inThread(): boolean {
    return this.transport.workers === 0;
  }

  /** The lane (worker) an agent runs on: a fixed rule, so a rerun pins the same way. */
  workerOf(agentId: number): number {
    return agentId % this.lanes.length;
  }

  /**
   * Why worker `index` cannot be killed, or null when it can: it does not exist, or there
   * are no workers at all (workers: 0). The text completes "killWorker: ...".
   */
  killRefusal(index: number): string | null {
    if (this.inThread) {
      return `no worker ${index}: with workers: 0 every WASM agent runs on the orchestrator's thread, so there is no worker to kill`;
    }
    if (!(Number.isInteger(index) && index >= 0 && index < this.size)) return `no worker ${index}; the pool has ${this.size}`;
    return null;
  }

  /** Queues an agent's module for its lane; the LOADED result comes at the next barrier. */
  load(setup: Omit<AgentSetup, 'token'>): void {
    const lane = this.lanes[this.workerOf(setup.agentId)]!;
    const token = this.nextToken++;
    this.transport.stage(lane.index, { ...setup, token } satisfies AgentSetup);
    lane.agents.add(setup.agentId);
    this.agentLane.set(setup.agentId, lane);
    lane.commands.push(Op.load, setup.agentId, token);
  }

  /**
   * Opens an agent's share of this tick (before its INIT, or its messages and step): the
   * seq of its last accepted publish, and what its `backpressure()` returns.
   */
  agentTick(agentId: number, seq: number, backpressure: number): void {
    this.laneOf(agentId).commands.pushAgentTick(agentId, seq, backpressure);
  }

  init(agentId: number): void {
    this.laneOf(agentId).commands.push(Op.init, agentId);
  }

  /**
   * Queues one message for an agent: a reference to its envelope in a shared mailbox slab.
   * An envelope published before any WASM agent subscribed to its topic has no slab yet: it
   * is placed in one now.
   */
  deliver(agentId: number, envelope: Envelope): void {
    let slab = envelope.slab;
    let at = envelope.slabAt;
    const length = envelope.payloadLength;
    if (slab === null) {
      at = this.slabs.allocate(envelopeSlotBytes(length));
      slab = this.slabs.lastSlab!;
      writeEnvelopeHeader(slab.view, at, envelope.topic, envelope.sender, envelope.seq, envelope.tick, envelope.priority, length);
      slab.bytes.set(envelope.payload, at + envelopeHeaderBytes);
    }
    this.laneOf(agentId).commands.pushDeliver(agentId, slab.id, at, envelopeBytes(length));
  }

  step(agentId: number, tick: number): void {
    this.laneOf(agentId).commands.push(Op.step, agentId, tick);
  }

  shutdown(agentId: number): void {
    this.laneOf(agentId).commands.push(Op.shutdown, agentId);
  }

  /** Forgets an agent (after a crash); its instance is dropped at the next barrier. */
  unload(agentId: number): void {
    const lane = this.agentLane.get(agentId);
    if (lane === undefined) return;
    lane.commands.push(Op.unload, agentId);
    lane.agents.delete(agentId);
    this.agentLane.delete(agentId);
  }

  /** Fault injection: the agent's next call this tick finds its fuel spent (and traps). */
  exhaustFuel(agentId: number): void {
    this.laneOf(agentId).commands.push(Op.exhaustFuel, agentId);
  }

  /**
   * Fault injection: worker `index` is terminated in the middle of the next tick, after its
   * commands went out. Whatever it did that tick is discarded and all its agents crash, so
   * the outcome does not depend on how far it got: the log is the same every run. Throws
   * ConfigError for a worker that does not exist (any, with workers: 0).
   */
  killDuringNextTick(index: number): void {
    const refusal = this.killRefusal(index);
    if (refusal !== null) throw new ConfigError(refusal);
    this.transport.killDuringNextTick(index);
  }

  hasWork(): boolean {
    for (const lane of this.lanes) if (lane.commands.count > 0) return true;
    return this.transport.faultDue();
  }

  private laneOf(agentId: number): Lane {
    const lane = this.agentLane.get(agentId);
    if (lane === undefined) throw new Error(`assertion failed: agent ${agentId} is not loaded in the pool`);
    return lane;
  }

  /**
   * Runs tick `tick` on every lane that has commands and collects what the agents did.
   * Resolves when all of them are done, or have died (reported as faults: their agents'
   * outputs are discarded, and the agents are no longer pinned; the worker is replaced).
   */
  async barrier(tick: number): Promise<BarrierResult> {
    const outputs = new Map<number, AgentTickOutput>();
    const work: LaneWork[] = [];
    for (const lane of this.lanes) {
      if (lane.commands.count === 0 && !this.transport.mustJoin(lane.index, lane.agents.size > 0)) continue;
      work.push({ lane: lane.index, commands: lane.take(), agents: lane.agents });
    }
    const faults = await this.transport.runTick(tick, work, outputs, this.slabs);
    for (const fault of faults) {
      const lane = this.lanes[fault.worker]!;
      for (const agent of fault.agents) {
        outputs.delete(agent);
        lane.agents.delete(agent);
        this.agentLane.delete(agent);
      }
    }
    return { outputs, faults };
  }

  /** Kills worker `index` now (fault injection and tests); the next barrier reports it. Throws ConfigError as killDuringNextTick. */
  async kill(index: number): Promise<void> {
    const refusal = this.killRefusal(index);
    if (refusal !== null) throw new ConfigError(refusal);
    await this.transport.kill(index);
  }

  /** Agents currently pinned to worker `index` (the one lane, 0, with workers: 0). */
  agentsOn(index: number): number[] {
    return [...(this.lanes[index]?.agents ?? [])];
  }

  async close(): Promise<void> {
    await this.transport.close();
  }
}
