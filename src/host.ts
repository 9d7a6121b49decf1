/**
 * The host: a runtime embedded in a service. It runs the ticks (as fast as work arrives,
 * bounded by `maxTicksPerSecond`, and every `tickMs` while idle), takes requests in at tick
 * boundaries (`ask`, `tell`), and acknowledges them only once the log holds them durably
 * (`durability`). Wall-clock time only paces the loop; it decides nothing inside the
 * system: the log holds every input, so replay re-executes the run whatever the pacing was.
 *
 *   host.ask(actor, payload) ──queued──▶ injected at the next tick boundary (logged)
 *   tick loop: runtime.step() ──▶ its facts: replies and failed asks settle the asks
 *              durability: 'tick'     fsync after each tick (group commit: the ticks
 *                                     recorded while one fsync runs share the next)
 *                          'interval' fsync every `fsyncIntervalMs`
 *                          'none'     no fsync: acknowledged once recorded (tests)
 *              an ask resolves, a tell acknowledges, once its tick is durable
 *
 * A log that cannot be made durable (a full disk, an unwritable file) fails every waiting
 * acknowledgement with DurabilityError and the host takes no more inputs: nothing it
 * acknowledged before is lost.
 */
import { DurabilityError, RuntimeClosedError, UsageError, ConfigError, ArgumentError, describeValue } from './errors.ts';
import type { RuntimeEvents } from './events.ts';
import { checkKeys } from './options.ts';
import { Reply, createRuntime, type AskFromOutsideOptions, type InjectOptions, type Runtime, type RuntimeOptions, type RuntimeSnapshot } from './runtime.ts';
import type { SystemDefinition } from './system.ts';
import { withJsonPayload } from './codec.ts';
import { hostDrainTicksMaxDefault, hostFsyncIntervalMsDefault, hostTickMsDefault } from './limits.ts';

export type Durability = 'tick' | 'interval' | 'none';

export interface HostOptions extends RuntimeOptions {
  /** Milliseconds between ticks while no work waits (default 10). Ticks keep timers and restarts moving. */
  tickMs?: number;
  /** Most ticks a second while work waits; 0 (the default) for no bound. */
  maxTicksPerSecond?: number;
  /**
   * When an acknowledgement is given: 'tick' (the default with a file log) once the tick's
   * record is fsynced, 'interval' once the next periodic fsync ran, 'none' (the default
   * with an in-memory log) once recorded, with no fsync: a kill may lose it.
   */
  durability?: Durability;
  /** Milliseconds between fsyncs with `durability: 'interval'` (default 50). */
  fsyncIntervalMs?: number;
  /** Ticks `stop()` keeps running for the asks still waiting (default 100). */
  drainTicksMax?: number;
}

const hostOptionKeys: readonly string[] = ['tickMs', 'maxTicksPerSecond', 'durability', 'fsyncIntervalMs', 'drainTicksMax'];

/** An input waiting for the next tick boundary. */
interface Queued {
  inject: () => void;
  reject: (error: Error) => void;
}

/** An acknowledgement waiting for its tick to be durable. */
interface Ack {
  tick: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

type HostState = 'created' | 'running' | 'stopping' | 'stopped' | 'failed';

export class Host {
  /** The runtime the host drives (for inspection: `actor(name).state()`, `snapshot()`). */
  readonly runtime: Runtime;
  readonly durability: Durability;
  private readonly tickMs: number;
  private readonly tickIntervalMinMs: number;
  private readonly fsyncIntervalMs: number;
  private readonly drainTicksMax: number;
  private state: HostState = 'created';
  private failure: DurabilityError | null = null;
  private queue: Queued[] = [];
  private acks: Ack[] = [];
  /** The last tick recorded, and the last one known to be on disk. */
  private recordedTick = 0;
  private durableTick = 0;
  private syncing = false;
  private syncTimer: NodeJS.Timeout | null = null;
  private wake: (() => void) | null = null;
  private tickWaiters: Ack[] = [];
  private loop: Promise<void> | null = null;
  private stopping: Promise<string> | null = null;

  constructor(system: SystemDefinition, options: HostOptions = {}) {
    const runtimeOptions: Record<string, unknown> = {};
    const hostOptions: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(options ?? {})) (hostOptionKeys.includes(key) ? hostOptions : runtimeOptions)[key] = value;
    checkKeys(hostOptions, hostOptionKeys, 'createHost options');
    this.tickMs = nonNegative(options.tickMs ?? hostTickMsDefault, 'tickMs');
    const rate = nonNegative(options.maxTicksPerSecond ?? 0, 'maxTicksPerSecond');
    this.tickIntervalMinMs = rate === 0 ? 0 : 1000 / rate;
    this.fsyncIntervalMs = nonNegative(options.fsyncIntervalMs ?? hostFsyncIntervalMsDefault, 'fsyncIntervalMs');
    this.drainTicksMax = nonNegative(options.drainTicksMax ?? hostDrainTicksMaxDefault, 'drainTicksMax');
    this.runtime = createRuntime(system, runtimeOptions as RuntimeOptions);
    this.durability = options.durability ?? (this.runtime.canSync ? 'tick' : 'none');
    if (!['tick', 'interval', 'none'].includes(this.durability)) {
      throw new ConfigError(`createHost: durability must be 'tick', 'interval' or 'none', got ${describeValue(this.durability)}`);
    }
    if (this.durability !== 'none' && !this.runtime.canSync) {
      throw new ConfigError(
        `createHost: durability '${this.durability}' needs a log that can be fsynced: give \`log\` a file path (or a sink with sync()); ` +
          "an in-memory log can only back durability 'none'",
      );
    }
  }

  /** What each tick did (the runtime's event bus). */
  get events(): RuntimeEvents {
    return this.runtime.events;
  }

  /** The tick most recently completed. */
  get tick(): number {
    return this.runtime.tick;
  }

  /** Starts the system (its actors' init runs in the first tick) and the tick loop. */
  async start(): Promise<void> {
    if (this.state !== 'created') throw new UsageError('invalid_argument', `host.start: the host is ${this.state}; start it once`);
    await this.runtime.start();
    this.state = 'running';
    if (this.durability === 'interval') this.syncTimer = setInterval(() => this.startSync(), this.fsyncIntervalMs);
    this.loop = this.runLoop();
  }

  /**
   * Asks a JS actor and resolves with its reply (made with `ctx.reply`) once the tick of the
   * reply is durable. Rejects with AskTimeoutError, AskFailedError (the actor went down:
   * the reason, not a timeout), MailboxFullError (at once: nothing was enqueued),
   * DurabilityError, or RuntimeClosedError once the host stops.
   */
  ask(actor: string | number, payload: Uint8Array, options: AskFromOutsideOptions = {}): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      this.enqueue(reject, () => {
        this.runtime.ask(actor, payload, options).then((reply) => this.afterDurable(reply.tick, () => resolve(reply), reject), reject);
      });
    });
  }

  /** Asks with a JSON value. */
  askJson(actor: string | number, value: unknown, options: AskFromOutsideOptions = {}): Promise<Reply> {
    return withJsonPayload(value, (payload) => this.ask(actor, payload, options));
  }

  /**
   * Publishes `payload` to `topic` from outside; resolves once the tick that took it in is
   * durable. Rejects with MailboxFullError (nothing enqueued), DurabilityError, RuntimeClosedError.
   */
  tell(topic: string | number, payload: Uint8Array, options: InjectOptions = {}): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.enqueue(reject, () => {
        this.runtime.inject(topic, payload, options);
        // Taken in by the next tick: acknowledged once that tick is durable.
        this.afterDurable(this.runtime.tick + 1, resolve, reject);
      });
    });
  }

  /** Tells a JSON value. */
  tellJson(topic: string | number, value: unknown, options: InjectOptions = {}): Promise<void> {
    return withJsonPayload(value, (payload) => this.tell(topic, payload, options));
  }

  snapshot(): RuntimeSnapshot {
    return this.runtime.snapshot();
  }

  /**
   * Runs `fn` at the next tick boundary, where the runtime takes inputs and handle requests
   * (`host.runtime.actor(name).crash()`, `inject`), and resolves with what it returns;
   * rejects with what it throws.
   */
  atBoundary<T>(fn: (runtime: Runtime) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.enqueue(reject, () => resolve(fn(this.runtime)));
    });
  }

  /** Resolves once `count` more ticks have run (a wait in logical time: a retry's back-off). */
  ticks(count: number): Promise<void> {
    if (!(Number.isInteger(count) && count >= 0)) return Promise.reject(new ArgumentError(`host.ticks: count must be an integer >= 0, got ${describeValue(count)}`));
    if (this.state !== 'running' && this.state !== 'created') return Promise.reject(new RuntimeClosedError(`host.ticks (the host is ${this.state})`));
    const at = this.runtime.tick + count;
    if (count === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      // Ticks pass at the host's pace: a waiter is not work that hurries them.
      this.tickWaiters.push({ tick: at, resolve, reject });
    });
  }

  /**
   * Stops: takes no more inputs, runs ticks until the asks still waiting are answered (at
   * most `drainTicksMax`), stops the tree in order, writes the end of the log, fsyncs and
   * closes it. Resolves with the run's digest (the log's final hash chain). Asks still
   * waiting then reject with AskFailedError.
   */
  stop(): Promise<string> {
    this.stopping ??= this.stopNow();
    return this.stopping;
  }

  private async stopNow(): Promise<string> {
    const wasRunning = this.state === 'running';
    if (this.state === 'created' || this.state === 'running') this.state = 'stopping';
    // Inputs taken before stop() still go in (the loop's next tick takes them); a host that
    // never started refuses them.
    if (!wasRunning) for (const queued of this.queue.splice(0)) queued.reject(new RuntimeClosedError('host input (the host stopped before it started)'));
    this.wake?.();
    if (wasRunning) await this.loop;
    if (this.syncTimer !== null) clearInterval(this.syncTimer);
    for (const waiter of this.tickWaiters.splice(0)) waiter.reject(new RuntimeClosedError('host.ticks (the host stopped)'));
    if (this.failure !== null) {
      await this.runtime.abandon();
      this.state = 'failed';
      throw this.failure;
    }
    try {
      const digest = await this.runtime.close();
      // close() fsynced the log: every tick it recorded is durable.
      this.durableTick = this.runtime.tick;
      this.settleAcks();
      this.state = 'stopped';
      return digest;
    } catch (error) {
      this.fail(error);
      throw this.failure;
    }
  }

  // ── the loop ──────────────────────────────────────────────────────────────────────

  private enqueue(reject: (error: Error) => void, inject: () => void): void {
    if (this.failure !== null) {
      reject(this.failure);
      return;
    }
    if (this.state !== 'running' && this.state !== 'created') {
      reject(new RuntimeClosedError(`host input (the host is ${this.state})`));
      return;
    }
    this.queue.push({ inject, reject });
    this.wake?.();
  }

  /** Injects what waited for the tick boundary; an input refused (a full mailbox) rejects at once. */
  private takeQueued(): void {
    const queued = this.queue;
    this.queue = [];
    for (const entry of queued) {
      try {
        entry.inject();
      } catch (error) {
        entry.reject(error as Error);
      }
    }
  }

  private async runLoop(): Promise<void> {
    let drainTicks = 0;
    let lastTickStarted = -Infinity;
    while (this.failure === null) {
      if (this.state === 'stopping') {
        if ((this.queue.length === 0 && this.runtime.asksWaiting === 0) || drainTicks >= this.drainTicksMax) return;
        drainTicks++;
      }
      this.takeQueued();
      lastTickStarted = performance.now();
      try {
        const record = await this.runtime.step();
        this.recordedTick = record.tick;
      } catch (error) {
        this.fail(error);
        return;
      }
      if (this.tickWaiters.length > 0) this.settleTickWaiters();
      if (this.durability === 'tick') this.startSync();
      else if (this.durability === 'none') {
        this.durableTick = this.recordedTick;
        this.settleAcks();
      }
      const busy = this.queue.length > 0 || this.runtime.hasPendingWork() || this.state === 'stopping';
      await this.pace(busy, lastTickStarted);
    }
  }

  /**
   * Waits before the next tick: with work, until `maxTicksPerSecond` allows it (one turn of
   * the event loop at least, so requests and fsync completions get in); without, `tickMs`
   * or until an input arrives.
   */
  private pace(busy: boolean, lastTickStarted: number): Promise<void> {
    const waitMs = busy ? Math.max(0, lastTickStarted + this.tickIntervalMinMs - performance.now()) : this.tickMs;
    return new Promise<void>((resolve) => {
      const done = () => {
        this.wake = null;
        clearTimeout(timer);
        clearImmediate(immediate);
        resolve();
      };
      let timer: NodeJS.Timeout | undefined;
      let immediate: NodeJS.Immediate | undefined;
      if (waitMs <= 0) immediate = setImmediate(done);
      else timer = setTimeout(done, waitMs);
      // An input ends an idle wait (a bounded busy wait stays bounded), at the next turn of
      // the event loop, never inside the caller's own call: a caller that asks again in the
      // reply's callback must not keep the loop in microtasks, starving timers and I/O.
      if (!busy) {
        this.wake = () => {
          this.wake = null;
          clearTimeout(timer);
          immediate ??= setImmediate(done);
        };
      }
    });
  }

  // ── durability ────────────────────────────────────────────────────────────────────

  private settleTickWaiters(): void {
    const waiting: Ack[] = [];
    for (const waiter of this.tickWaiters) {
      if (waiter.tick <= this.runtime.tick) waiter.resolve();
      else waiting.push(waiter);
    }
    this.tickWaiters = waiting;
  }

  private afterDurable(tick: number, resolve: () => void, reject: (error: Error) => void): void {
    if (this.failure !== null) reject(this.failure);
    else if (tick <= this.durableTick) resolve();
    else this.acks.push({ tick, resolve, reject });
  }

  private settleAcks(): void {
    if (this.acks.length === 0) return;
    const waiting: Ack[] = [];
    for (const ack of this.acks) {
      if (ack.tick <= this.durableTick) ack.resolve();
      else waiting.push(ack);
    }
    this.acks = waiting;
  }

  /**
   * Starts an fsync covering every tick recorded so far, unless one runs: then the ticks
   * recorded meanwhile wait for the next (group commit), started when it completes.
   */
  private startSync(): void {
    if (this.syncing || this.failure !== null || this.recordedTick <= this.durableTick) return;
    this.syncing = true;
    const covered = this.recordedTick;
    this.runtime.sync().then(
      () => {
        this.syncing = false;
        this.durableTick = Math.max(this.durableTick, covered);
        this.settleAcks();
        if (this.durability === 'tick') this.startSync();
      },
      (error: unknown) => {
        this.syncing = false;
        this.fail(error);
      },
    );
  }

  private fail(error: unknown): void {
    if (this.failure !== null) return;
    const text = error instanceof Error ? error.message : String(error);
    this.failure = new DurabilityError(
      `the host's log could not be written or made durable (${text}); it takes no more inputs. ` +
        'Everything acknowledged before is on disk: free space or fix the log path, then resume from the log',
      { cause: error },
    );
    for (const ack of this.acks.splice(0)) ack.reject(this.failure);
    for (const waiter of this.tickWaiters.splice(0)) waiter.reject(this.failure);
    for (const queued of this.queue.splice(0)) queued.reject(this.failure);
    this.wake?.();
  }
}

function nonNegative(value: number, what: string): number {
  if (!(typeof value === 'number' && Number.isFinite(value) && value >= 0)) {
    throw new ArgumentError(`createHost: ${what} must be a number >= 0, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * Builds a host for `system`: a runtime (all of `RuntimeOptions`) plus the tick loop and the
 * acknowledgement contract. Call `start()`, then `ask`/`tell`; `stop()` at the end.
 * Throws ConfigError for a bad option or a durability the log cannot give.
 */
export function createHost(system: SystemDefinition, options: HostOptions = {}): Host {
  return new Host(system, options);
}
