/**
 * The in-thread transport (`workers: 0`, the simulation mode): one lane, whose AgentHost
 * runs on the orchestrator's own thread. Each command is encoded exactly as for a worker,
 * handed to the host synchronously, and each result record the host writes is decoded
 * exactly as if it came off a ring; a whole tick is one synchronous stack, so a debugger
 * steps from the kernel into an agent's host calls and back.
 *
 * No thread means nothing can die or be killed: there are no worker faults, and the
 * wall-clock watchdog does not apply (it could not stop a synchronous loop on this thread
 * anyway); fuel metering and the call-depth limit bound every agent call, as on a worker.
 * The agents run on the orchestrator's stack (V8's default, about 1 MB, where a worker has
 * 32 MB): an agent with very large frames may overflow it before the call-depth limit,
 * which is reported as the nondeterministic V8 stack overflow crash.
 */
import type { MailboxSlabs } from '../slabs.ts';
import { AgentHost } from './agent-host.ts';
import { Op, type AgentSetup } from './protocol.ts';
import { decodePublishParts, decodeResult, tickRecord, type AgentTickOutput } from './records.ts';
import type { LaneWork, PoolTransport, WorkerFault } from './transport.ts';

export class InThreadTransport implements PoolTransport {
  readonly workers = 0;
  readonly lanes = 1;
  /** LOAD setups by token, staged until their LOAD record reaches the host. */
  private readonly staged = new Map<number, AgentSetup>();
  /** The shared mailbox slabs, as the host reads them. */
  private readonly slabs = new Map<number, Uint8Array>();
  private readonly host: AgentHost;
  private readonly tickScratch = new Uint8Array(12);
  /** Where the host's results go during `runTick`; null between ticks (it writes nothing then). */
  private outputs: Map<number, AgentTickOutput> | null = null;
  private mailboxes: MailboxSlabs | null = null;
  /** The tick of the last TICK_DONE the host wrote. */
  private doneTick = -1;

  constructor() {
    this.host = new AgentHost(
      {
        write: (record) => {
          if (this.outputs === null) throw new Error('assertion failed: the in-thread agent host wrote a result outside a tick');
          const done = decodeResult(record, null, 0, record.length, this.outputs, this.mailboxes!);
          if (done >= 0) this.doneTick = done;
        },
        writeParts: (head, headStart, headLength, body, bodyStart, bodyLength, headWords, bodyWords) => {
          if (this.outputs === null) throw new Error('assertion failed: the in-thread agent host wrote a result outside a tick');
          decodePublishParts(this.outputs, this.mailboxes!, head, headStart, headLength, body, bodyStart, bodyLength, headWords, bodyWords);
        },
        tickDone: () => {},
      },
      (_agentId, token) => {
        const setup = this.staged.get(token);
        this.staged.delete(token);
        return setup;
      },
      (id) => this.slabs.get(id),
    );
  }

  stage(_lane: number, setup: AgentSetup): void {
    this.staged.set(setup.token, setup);
  }

  shareSlab(id: number, buffer: SharedArrayBuffer): void {
    this.slabs.set(id, new Uint8Array(buffer));
  }

  releaseSlab(id: number): void {
    this.slabs.delete(id);
  }

  mustJoin(): boolean {
    return false;
  }

  faultDue(): boolean {
    return false;
  }

  async runTick(tick: number, work: readonly LaneWork[], outputs: Map<number, AgentTickOutput>, slabs: MailboxSlabs): Promise<WorkerFault[]> {
    this.outputs = outputs;
    this.mailboxes = slabs;
    try {
      for (const lane of work) {
        // The same records as a worker gets: TICK_BEGIN, the commands, TICK_END.
        this.host.handle(tickRecord(this.tickScratch, Op.tickBegin, tick));
        const queue = lane.commands;
        queue.forEach((start) => this.host.handleAt(queue.bytes, start));
        this.host.handle(tickRecord(this.tickScratch, Op.tickEnd, tick));
        if (this.doneTick !== tick) throw new Error(`assertion failed: the in-thread agent host did not finish tick ${tick}`);
      }
    } finally {
      this.outputs = null;
      this.mailboxes = null;
    }
    return [];
  }

  killDuringNextTick(): void {
    throw new Error('assertion failed: the pool refuses worker faults with workers: 0');
  }

  async kill(): Promise<void> {
    throw new Error('assertion failed: the pool refuses worker faults with workers: 0');
  }

  async close(): Promise<void> {
    this.staged.clear();
    this.slabs.clear();
  }
}
