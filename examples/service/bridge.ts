/**
 * The bridge between asynchronous HTTP requests and the synchronous, tick-driven actor
 * system: it injects each request as a message, runs the ticks, and settles each request
 * from what the ticks recorded.
 *
 *   request(topic, message) ──injectJson──▶ taken in at the next tick boundary (logged)
 *   tick loop: runtime.step() ──▶ TickRecord ──▶ injected inputs: learn each request's seq
 *                                             ├─▶ drops of those seqs: retry, or 503
 *                                             └─▶ lifecycle events: restart counters
 *              gateway's state (this tick's replies) ──▶ resolve the waiting requests
 *              requests past their deadline tick ──▶ 504
 *
 * Wall-clock time only paces the loop (as fast as the event loop allows while requests
 * wait, every `idleTickMs` otherwise); it never decides anything inside the system, and
 * the bridge itself reads the system only after a tick: the log holds every input, so
 * replay re-executes the run whatever the pacing was.
 *
 * A dropped request is safe to retry, whatever it does: a drop record means the actor
 * never processed it (an actor that crashes on a message consumes it, and that one is not
 * dropped). A request without a reply by its deadline may have been processed, so it is
 * never retried: the client gets 504 and decides.
 */
import { MailboxFullError, jsonDecode, type Runtime, type TickRecord } from 'lockstep';
import { names, type GatewayState } from './system.ts';

/** What a request ends with: an HTTP status and a JSON body. */
export interface Outcome {
  status: number;
  body: Record<string, unknown>;
}

export interface BridgeOptions {
  /** Most requests waiting for a reply at once; more are answered 503 at once. */
  pendingMax?: number;
  /** Ticks a request may wait for its reply before it is answered 504. */
  replyTicksMax?: number;
  /** Times a dropped request is injected again before it is answered 503. */
  retriesMax?: number;
  /** Ticks between a drop and the retry (lets a supervisor's restart land first). */
  retryDelayTicks?: number;
  /** Milliseconds between ticks while nothing waits (keeps restarts and health moving). */
  idleTickMs?: number;
  /** The log is flushed to its file every this many ticks. */
  flushEveryTicks?: number;
  /** Ticks a shutdown keeps running to answer the requests still waiting. */
  drainTicksMax?: number;
}

export const bridgeDefaults: Required<BridgeOptions> = Object.freeze({
  // Below the gateway's mailbox bound (1024): every reply of a tick fits in it.
  pendingMax: 512,
  replyTicksMax: 200,
  retriesMax: 4,
  retryDelayTicks: 2,
  idleTickMs: 10,
  flushEveryTicks: 50,
  drainTicksMax: 100,
});

interface PendingRequest {
  id: string;
  topic: string;
  message: Record<string, unknown>;
  deadlineTick: number;
  retriesLeft: number;
  /** Injection seqs of this request's attempts (the log's key for drops). */
  seqs: number[];
  resolve: (outcome: Outcome) => void;
}

interface Retry {
  atTick: number;
  request: PendingRequest;
}

/** Counters since the service started, for /health. */
export interface BridgeCounters {
  requests: number;
  answered: number;
  retried: number;
  dropped: number;
  timedOut: number;
  refused: number;
}

export class RequestBridge {
  readonly options: Required<BridgeOptions>;
  readonly counters: BridgeCounters = { requests: 0, answered: 0, retried: 0, dropped: 0, timedOut: 0, refused: 0 };
  /** Restarts and crashes of each actor since the service started (the log's lifecycle events). */
  readonly restarts = new Map<string, number>();
  readonly crashes = new Map<string, number>();
  private readonly pending = new Map<string, PendingRequest>();
  /** Injection seq → request id, for the attempts still waiting. */
  private readonly requestBySeq = new Map<number, string>();
  /** Topics whose injected payloads are requests (carry an `id`). */
  private readonly requestTopics = new Set<number>();
  private retries: Retry[] = [];
  private nextRequest = 1;
  private ticksSinceFlush = 0;
  private timer: NodeJS.Immediate | NodeJS.Timeout | null = null;
  private timerIsIdle = false;
  private draining: { deadlineTick: number; done: (digest: string) => void } | null = null;
  private closing: Promise<string> | null = null;
  private closedDigest: string | null = null;
  /** True while a tick (or the closing) is awaited: the loop runs one at a time. */
  private ticking = false;

  constructor(
    readonly runtime: Runtime,
    options: BridgeOptions = {},
  ) {
    this.options = { ...bridgeDefaults, ...options };
    // Crashes and restarts, for /health, as the event bus tells them after each tick.
    runtime.events.on('lifecycle', (event) => {
      if (event.to !== 'restarting' && event.to !== 'crashed') return;
      const counts = event.to === 'restarting' ? this.restarts : this.crashes;
      counts.set(event.actor, (counts.get(event.actor) ?? 0) + 1);
    });
  }

  get waiting(): number {
    return this.pending.size;
  }

  get closed(): boolean {
    return this.closedDigest !== null;
  }

  /** Starts the tick loop (once). */
  start(): void {
    if (this.timer === null && !this.closed && !this.ticking) this.schedule();
  }

  /**
   * Sends `message` (plus a fresh `id`) to `topic` and resolves with the reply's status and
   * body, or with 503 (refused, dropped, shutting down) or 504 (no reply in time). Rejects
   * only on a programmer error (a topic the system does not declare).
   */
  request(topic: string, message: Record<string, unknown>): Promise<Outcome> {
    this.counters.requests++;
    if (this.draining !== null || this.closed) return Promise.resolve(this.refuse('shutting_down', 'the service is shutting down'));
    if (this.pending.size >= this.options.pendingMax) {
      return Promise.resolve(this.refuse('busy', `${this.options.pendingMax} requests are already waiting; retry shortly`));
    }
    const id = `r${this.nextRequest++}`;
    return new Promise<Outcome>((resolve) => {
      const request: PendingRequest = {
        id,
        topic,
        message: { ...message, id },
        deadlineTick: this.runtime.tick + 1 + this.options.replyTicksMax,
        retriesLeft: this.options.retriesMax,
        seqs: [],
        resolve,
      };
      const refused = this.inject(request);
      if (refused !== null) {
        resolve(refused);
        return;
      }
      this.pending.set(id, request);
      this.kick();
    });
  }

  /** Requests a crash of actor `name` at the next tick (a logged input); throws for an unknown name. */
  crash(name: string): number {
    this.runtime.actor(name).crash();
    this.kick();
    return this.runtime.tick + 1;
  }

  /**
   * Stops taking requests, keeps ticking until the waiting ones are answered (at most
   * `drainTicksMax` ticks), answers the rest 503, then closes the runtime: the tree stops
   * in OTP order and the log gets its final record. Resolves with the run's digest.
   */
  close(): Promise<string> {
    this.closing ??= new Promise<string>((done) => {
      this.draining = { deadlineTick: this.runtime.tick + this.options.drainTicksMax, done };
      this.kick();
    });
    return this.closing;
  }

  // ── the tick loop ──────────────────────────────────────────────────────────────────

  private schedule(): void {
    if (this.closed) return;
    if (this.pending.size > 0 || this.retries.length > 0 || this.draining !== null) {
      this.timerIsIdle = false;
      this.timer = setImmediate(() => this.loop());
    } else {
      this.timerIsIdle = true;
      this.timer = setTimeout(() => this.loop(), this.options.idleTickMs);
    }
  }

  /**
   * Runs the next tick soon: cuts an idle wait short, or starts the loop (a shutdown that
   * comes before `start` still closes the runtime). Never called from inside a tick.
   */
  private kick(): void {
    // A tick under way schedules the next one when it ends.
    if (this.closed || this.ticking || (this.timer !== null && !this.timerIsIdle)) return;
    if (this.timer !== null) clearTimeout(this.timer as NodeJS.Timeout);
    this.timerIsIdle = false;
    this.timer = setImmediate(() => this.loop());
  }

  /**
   * One turn of the loop: a tick (or the end of a drain), then the next turn is scheduled.
   * A failure rejects unhandled and so ends the process, as an exception in a timer would.
   */
  private loop(): void {
    this.timer = null;
    if (this.closed) return;
    this.ticking = true;
    void this.turn().then(() => {
      this.ticking = false;
      this.schedule();
    });
  }

  private async turn(): Promise<void> {
    if (this.draining !== null && (this.pending.size === 0 || this.runtime.tick >= this.draining.deadlineTick)) {
      await this.finishDrain();
      return;
    }
    await this.tick();
  }

  /** One tick, then everything it tells the waiting requests. */
  private async tick(): Promise<void> {
    const record = await this.runtime.step();
    this.learnSeqs(record);
    this.settleReplies();
    this.settleDrops(record);
    this.settleDeadlines();
    this.runDueRetries();
    if (++this.ticksSinceFlush >= this.options.flushEveryTicks) {
      this.runtime.flush();
      this.ticksSinceFlush = 0;
    }
  }

  private async finishDrain(): Promise<void> {
    const draining = this.draining!;
    for (const request of [...this.pending.values()]) {
      this.settle(request, { status: 503, body: { error: 'shutting_down', message: `no reply within the ${this.options.drainTicksMax} ticks a shutdown waits` } });
    }
    this.retries = [];
    const digest = await this.runtime.close();
    this.closedDigest = digest;
    draining.done(digest);
  }

  // ── what a tick record tells ───────────────────────────────────────────────────────

  /** The log numbers each input; drops name inputs by that number (sender 0, seq). */
  private learnSeqs(record: TickRecord): void {
    for (const input of record.injected) {
      if (!this.isRequestTopic(input.topic)) continue;
      const id = requestIdOf(input.payload);
      if (id === null) continue;
      const request = this.pending.get(id);
      if (request === undefined) continue;
      request.seqs.push(input.seq);
      this.requestBySeq.set(input.seq, id);
    }
  }

  private isRequestTopic(topic: number): boolean {
    return this.requestTopics.has(topic);
  }

  /** The gateway keeps the replies of the last tick it ran in; only this tick's are new. */
  private settleReplies(): void {
    const gateway = this.runtime.actor(names.gateway).state<GatewayState>();
    if (gateway === undefined || gateway.tick !== this.runtime.tick) return;
    for (const reply of gateway.replies) {
      const request = this.pending.get(reply.id);
      // Unknown ids: a request already answered 504, whose reply came late.
      if (request === undefined) continue;
      this.counters.answered++;
      this.settle(request, { status: reply.status, body: reply.body });
    }
  }

  private settleDrops(record: TickRecord): void {
    for (const drop of record.drops) {
      if (drop.sender !== 0) continue;
      const id = this.requestBySeq.get(drop.seq);
      const request = id === undefined ? undefined : this.pending.get(id);
      if (request === undefined) continue;
      this.requestBySeq.delete(drop.seq);
      if (request.retriesLeft > 0) {
        request.retriesLeft--;
        this.counters.retried++;
        this.retries.push({ atTick: this.runtime.tick + this.options.retryDelayTicks, request });
        continue;
      }
      this.counters.dropped++;
      this.settle(request, {
        status: 503,
        body: { error: 'dropped', message: `the request was dropped ${this.options.retriesMax + 1} times (last: ${drop.reason}); retry later`, reason: drop.reason },
      });
    }
  }

  private settleDeadlines(): void {
    const tick = this.runtime.tick;
    for (const request of this.pending.values()) {
      if (tick < request.deadlineTick) continue;
      this.counters.timedOut++;
      this.settle(request, {
        status: 504,
        body: { error: 'timeout', message: `no reply within ${this.options.replyTicksMax} ticks; the request may or may not have been carried out` },
      });
    }
  }

  private runDueRetries(): void {
    if (this.retries.length === 0) return;
    const tick = this.runtime.tick;
    const due = this.retries.filter((retry) => retry.atTick <= tick);
    this.retries = this.retries.filter((retry) => retry.atTick > tick);
    for (const { request } of due) {
      if (!this.pending.has(request.id)) continue;
      const refused = this.inject(request);
      if (refused !== null) this.settle(request, refused);
    }
  }

  // ── helpers ────────────────────────────────────────────────────────────────────────

  /** Injects one attempt; returns null, or the outcome when the system refused it. */
  private inject(request: PendingRequest): Outcome | null {
    try {
      this.requestTopics.add(this.runtime.topic(request.topic));
      this.runtime.injectJson(request.topic, request.message);
      return null;
    } catch (error) {
      if (error instanceof MailboxFullError) return this.refuse('busy', `${error.message}; retry shortly`);
      throw error;
    }
  }

  private settle(request: PendingRequest, outcome: Outcome): void {
    this.pending.delete(request.id);
    for (const seq of request.seqs) this.requestBySeq.delete(seq);
    request.resolve(outcome);
  }

  private refuse(error: string, message: string): Outcome {
    this.counters.refused++;
    return { status: 503, body: { error, message } };
  }
}

/** The `id` of a request payload, or null for anything else (the fault plan's garbage bytes). */
function requestIdOf(payload: Uint8Array): string | null {
  try {
    const { id } = jsonDecode(payload) as { id?: unknown };
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}
