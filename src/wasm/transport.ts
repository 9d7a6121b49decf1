/**
 * How the pool reaches its agents: a transport runs each tick's commands on the lanes the
 * agents are pinned to and brings their results back. Two implement it:
 *
 *   WorkerTransport    (worker-transport.ts)    one worker thread per lane, two SAB rings
 *                                               each; watchdog, spares, killWorker faults
 *   InThreadTransport  (in-thread-transport.ts) one lane on the orchestrator's own thread
 *                                               (`workers: 0`, the simulation mode)
 *
 * Both run the same AgentHost on the same command records (records.ts) and decode its
 * results the same way, so what an agent does cannot depend on the transport; the pool
 * keeps the rest (pinning, queues, tokens), and the WASM host applies results at the
 * barrier in (priority desc, actor id) order whatever ran them.
 */
import type { MailboxSlabs } from '../slabs.ts';
import type { AgentSetup } from './protocol.ts';
import type { AgentTickOutput, CommandQueue } from './records.ts';

/** One lane's share of a tick, as the pool hands it to its transport. */
export interface LaneWork {
  /** The lane: a worker's index (0 for the in-thread lane). */
  readonly lane: number;
  /** Its commands, encoded (TICK_BEGIN and TICK_END are the transport's). */
  readonly commands: CommandQueue;
  /** The agents pinned to the lane: a fault there crashes them all. */
  readonly agents: ReadonlySet<number>;
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

export interface PoolTransport {
  /** Worker threads the agents run on; 0 when they run on the orchestrator's thread. */
  readonly workers: number;
  /** Lanes agents are pinned to, by agent id modulo this (>= 1). */
  readonly lanes: number;
  /** Hands the setup of a LOAD to its lane before the LOAD record is sent there. */
  stage(lane: number, setup: AgentSetup): void;
  /** Shares a new mailbox slab with every lane (before any DELIVER names it). */
  shareSlab(id: number, buffer: SharedArrayBuffer): void;
  /** Tells every lane that slab `id` is gone: no later DELIVER names it. */
  releaseSlab(id: number): void;
  /**
   * True when `lane` must take part in the next barrier even without commands: a fault is
   * due on it, or its worker died while agents (`hasAgents`) were pinned to it.
   */
  mustJoin(lane: number, hasAgents: boolean): boolean;
  /** True when a fault is due at the next barrier on some lane (`killDuringNextTick`). */
  faultDue(): boolean;
  /**
   * Runs tick `tick` on the lanes of `work` and folds their results into `outputs` (what an
   * agent published is placed in `slabs`).
   * Resolves, once every lane is done or has failed, with the failed lanes (already
   * replaced); the pool discards their agents' outputs and unpins them.
   */
  runTick(tick: number, work: readonly LaneWork[], outputs: Map<number, AgentTickOutput>, slabs: MailboxSlabs): Promise<WorkerFault[]>;
  /** Fault injection: worker `lane` dies in the middle of the next tick. `lane` < workers. */
  killDuringNextTick(lane: number): void;
  /** Kills worker `lane` now (fault injection, tests). `lane` < workers. */
  kill(lane: number): Promise<void>;
  close(): Promise<void>;
}
