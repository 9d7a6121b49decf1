/**
 * JS/TS actors: `defineActor` and the cell that runs one on the orchestrator thread.
 *
 * An actor's state is a plain value it returns from `init`, `receive` and `step`. All three
 * are synchronous: asynchronous work (I/O, timers, services) enters the system as injected
 * messages, so that everything an actor does is decided by the tick it runs in, the
 * messages it got and its seeded random stream.
 */
import type { Logger } from 'pino';
import { jsonEncode } from '../src/codec.ts';
import type { Envelope, Message } from '../src/envelope.ts';
import { ActorContractError, ConfigError } from '../src/errors.ts';
import { checkKeys } from '../src/options.ts';
import type { AskResult, Kernel, PublishResult, ReplyResult } from '../src/kernel.ts';
import { askTimeoutTicksDefault } from '../src/limits.ts';
import { Random } from '../src/prng.ts';
import { ActorCell } from './cell.ts';

export interface PublishOptions {
  /** 0..255, higher first. Defaults to the sending actor's priority. */
  priority?: number;
}

export interface AskOptions extends PublishOptions {
  /**
   * Ticks the target has to reply, from the tick it gets the ask (1: it must reply in that
   * tick). Past them the asker gets a message of kind `askTimeout`. Defaults to 100.
   */
  timeoutTicks?: number;
}

/**
 * A timer's id: the `correlation` of the messages it sends, and what `cancelTimer` takes.
 * A number, so a state that keeps one stays plain data.
 */
export type TimerId = number;

/** What an actor may do and see. Time is `tick`; randomness is `random()`. */
export interface ActorContext {
  /** This actor's id (its inbox topic is `actor/<id>`). */
  readonly self: number;
  /** This actor's unique instance name. */
  readonly name: string;
  /** The logical tick now running. */
  readonly tick: number;
  /** How many times this actor has been started (0 for the first run). */
  readonly incarnation: number;
  /** Structured logger (pino); silent unless the runtime was given one. */
  readonly log: Logger;
  /** The id of a declared topic, for hot paths that publish by id. */
  topic(name: string): number;
  /** The id of the actor named `name` (to tell who sent a message); throws ConfigError when there is none. */
  actorId(name: string): number;
  /** Publishes bytes to a topic; delivered next tick. A full subscriber refuses it: check `ok`. */
  publish(topic: string | number, payload: Uint8Array, options?: PublishOptions): PublishResult;
  /** Publishes a JSON value; values JSON would mangle (NaN, undefined, cycles...) are refused. */
  publishJson(topic: string | number, value: unknown, options?: PublishOptions): PublishResult;
  /** Sends bytes to one actor's inbox, by name or id. */
  send(to: string | number, payload: Uint8Array, options?: PublishOptions): PublishResult;
  sendJson(to: string | number, value: unknown, options?: PublishOptions): PublishResult;
  /**
   * Asks one actor: it gets a message of kind `ask` and answers with `reply`. The reply
   * comes to this actor's `receive` at a later tick as a message of kind `reply` whose
   * `correlation` is the returned `id`; with no reply in `timeoutTicks`, a message of kind
   * `askTimeout`; when the target goes down first, one of kind `askFailed` (its text says
   * why). A full target mailbox refuses the ask as it refuses a publish: check `ok`.
   */
  ask(to: string | number, payload: Uint8Array, options?: AskOptions): AskResult;
  askJson(to: string | number, value: unknown, options?: AskOptions): AskResult;
  /**
   * Answers `message`, an ask this actor received (from an actor, or from outside: a host's
   * `ask`). Returns `ask_settled` (and logs it) when the ask no longer waits: it timed out
   * or was answered. Throws ActorContractError when `message` is not an ask.
   */
  reply(message: Message, payload: Uint8Array, options?: PublishOptions): ReplyResult;
  replyJson(message: Message, value: unknown, options?: PublishOptions): ReplyResult;
  /**
   * Sends `payload` to this actor itself `ticks` ticks from now (1: the next tick), as a
   * message of kind `timer` whose `correlation` is the returned id. Ticks are logical time:
   * a host runs them as fast as work arrives and every `tickMs` while idle, so a timer says
   * "after n ticks", never "after n milliseconds". A timer belongs to this incarnation: a
   * crash, a stop or a restart cancels it.
   */
  after(ticks: number, payload: Uint8Array): TimerId;
  afterJson(ticks: number, value: unknown): TimerId;
  /** As `after`, then again every `ticks` ticks until cancelled. */
  every(ticks: number, payload: Uint8Array): TimerId;
  everyJson(ticks: number, value: unknown): TimerId;
  /** Cancels a timer of this actor; false when there is none with that id (it fired, or was cancelled). */
  cancelTimer(id: TimerId): boolean;
  /** A float in [0, 1) from this actor's seeded stream (run seed, actor id, incarnation). */
  random(): number;
  /** An integer in [0, bound) from the same stream. */
  randomInt(bound: number): number;
}

export interface ActorSpec<State, Args> {
  /** The kind of actor; instances get their own names when spawned. */
  name: string;
  /** Topics every instance subscribes to (its inbox is always subscribed). */
  subscribe?: readonly string[] | ((args: Args) => readonly string[]);
  init: (ctx: ActorContext, args: Args) => State;
  /** Handles one message. Returning undefined keeps the state as it was. */
  receive: (state: State, message: Message, ctx: ActorContext) => State | undefined | void;
  /** Runs once every tick the actor is scheduled, after its messages. */
  step?: (state: State, ctx: ActorContext) => State | undefined | void;
  /** Runs when the actor is stopped (not when it crashes). */
  stop?: (state: State, ctx: ActorContext) => void;
}

export interface ActorDefinition<State = unknown, Args = unknown> extends ActorSpec<State, Args> {
  readonly kind: 'js';
}

const actorSpecKeys: readonly string[] = ['name', 'subscribe', 'init', 'receive', 'step', 'stop'];

/**
 * Declares an actor kind. Throws ConfigError when the spec is not one (a missing receive,
 * a name that is not a string...), before anything runs.
 */
export function defineActor<State, Args = undefined>(spec: ActorSpec<State, Args>): ActorDefinition<State, Args> {
  if (spec === null || typeof spec !== 'object') throw new ConfigError('defineActor takes an object { name, init, receive, ... }');
  if (typeof spec.name !== 'string' || spec.name.length === 0) {
    throw new ConfigError('defineActor: `name` must be a non-empty string');
  }
  checkKeys(spec, actorSpecKeys, `defineActor '${spec.name}'`);
  for (const hook of ['init', 'receive'] as const) {
    if (typeof spec[hook] !== 'function') throw new ConfigError(`actor '${spec.name}': \`${hook}\` must be a function`);
  }
  for (const hook of ['step', 'stop'] as const) {
    if (spec[hook] !== undefined && typeof spec[hook] !== 'function') {
      throw new ConfigError(`actor '${spec.name}': \`${hook}\` must be a function when given`);
    }
  }
  if (spec.subscribe !== undefined && typeof spec.subscribe !== 'function' && !Array.isArray(spec.subscribe)) {
    throw new ConfigError(`actor '${spec.name}': \`subscribe\` must be an array of topic names or a function of the args`);
  }
  return Object.freeze({ ...spec, kind: 'js' as const });
}

export interface JsActorOptions<Args> {
  name: string;
  args: Args;
  priority: number;
  seed: number;
  logger: Logger;
}

/** The error an injected crash carries (see the fault plan). */
export class InjectedFault extends Error {
  override readonly name = 'InjectedFault';
}

/** Runs one JS actor for the kernel, on the orchestrator thread. */
export class JsActor<State, Args> extends ActorCell implements ActorContext {
  readonly kind = 'js' as const;
  readonly hasStep: boolean;
  readonly log: Logger;
  /** The last crash with the value thrown (for tests; `lastCrash` has its text). */
  lastError: unknown = null;

  private state: State | undefined;
  private random_: Random;
  private readonly args: Args;
  private readonly seed: number;

  constructor(
    readonly definition: ActorDefinition<State, Args>,
    kernel: Kernel,
    options: JsActorOptions<Args>,
  ) {
    super(options.name, options.priority, kernel);
    this.hasStep = definition.step !== undefined;
    this.args = options.args;
    this.seed = options.seed;
    this.log = options.logger.child({ actor: options.name });
    this.random_ = new Random(options.seed, 0, 0);
  }

  /** Topics this instance subscribes to, from its definition and args. */
  subscriptions(): readonly string[] {
    const subscribe = this.definition.subscribe;
    if (subscribe === undefined) return [];
    const topics = typeof subscribe === 'function' ? subscribe(this.args) : subscribe;
    if (!Array.isArray(topics) || topics.some((t) => typeof t !== 'string')) {
      throw new ConfigError(`actor '${this.name}': subscribe must give an array of topic names`);
    }
    return topics;
  }

  /** Called once the kernel has given the actor its id. */
  override admitted(id: number): void {
    this.random_ = new Random(this.seed, id, this.incarnation);
    super.admitted(id, this.name);
  }

  // ── KernelActor ───────────────────────────────────────────────────────────────────

  start(): void {
    this.lifecycle.send('INIT');
    try {
      const state = this.definition.init(this, this.args);
      if (isThenable(state)) throw promiseReturned(this.name, 'init');
      this.state = state;
    } catch (error) {
      this.crash(error, 'in init');
      return;
    }
    this.lifecycle.send('READY');
  }

  activate(batch: readonly Envelope[]): number {
    const receive = this.definition.receive;
    let state = this.state as State;
    let i = 0;
    try {
      for (; i < batch.length; i++) {
        const next = receive(state, batch[i]!, this);
        if (next !== undefined) {
          if (isThenable(next)) throw promiseReturned(this.name, 'receive');
          state = next;
        }
      }
      this.state = state;
      const step = this.definition.step;
      if (step !== undefined) {
        const next = step(state, this);
        if (next !== undefined) {
          if (isThenable(next)) throw promiseReturned(this.name, 'step');
          this.state = next;
        }
      }
      return batch.length;
    } catch (error) {
      this.state = state;
      const message = batch[i];
      const where =
        message === undefined
          ? 'in step'
          : `receiving ${message.topicName} #${message.seq} from ${this.kernel.actorName(message.sender)}`;
      this.crash(error, where);
      // The message it crashed on counts as consumed: it was handed over.
      return Math.min(i + 1, batch.length);
    }
  }

  stop(reason: string): void {
    const hook = this.definition.stop;
    if (this.lifecycle.can('STOP')) this.lifecycle.send('STOP', reason);
    if (this.lifecycle.state !== 'stopping') return;
    if (hook !== undefined && this.state !== undefined) {
      try {
        hook(this.state, this);
      } catch (error) {
        this.crash(error, 'in stop');
        return;
      }
    }
    this.lifecycle.send('STOPPED');
  }

  /**
   * Starts the actor again after it crashed or stopped (its supervisor decides): a new
   * incarnation, with no state until init runs and a fresh random stream. The caller then
   * readmits it to the kernel, which runs init at the next step 2 of a tick.
   */
  restart(detail: string): void {
    this.lifecycle.send('RESTART', detail);
    this.incarnation++;
    this.state = undefined;
    this.random_ = new Random(this.seed, this.self, this.incarnation);
  }

  /** Stops the actor without running its stop hook (a supervisor's brutal_kill). */
  kill(reason: string): void {
    if (!this.lifecycle.can('STOP')) return;
    this.lifecycle.send('STOP', reason);
    if (this.lifecycle.state === 'stopping') this.lifecycle.send('STOPPED');
    this.kernel.actorWentDown(this.self);
  }

  /** Crashes the actor now, as if its code had thrown (fault injection). */
  injectCrash(reason: string): void {
    if (!this.lifecycle.can('CRASH')) return;
    this.crash(new InjectedFault(reason), 'fault injected');
    this.kernel.actorWentDown(this.self);
  }

  /** The actor's current state value (for tests and snapshots). */
  get currentState(): State | undefined {
    return this.state;
  }

  private crash(error: unknown, where: string): void {
    const text = error instanceof Error ? `${error.name}: ${error.message}` : `thrown value: ${String(error)}`;
    const message = `${where}: ${text}`;
    this.lastCrash = { tick: this.kernel.tick, message };
    this.lastError = error;
    this.log.warn({ tick: this.kernel.tick, err: error }, `actor crashed ${where}`);
    this.lifecycle.send('CRASH', message);
  }

  // ── ActorContext ──────────────────────────────────────────────────────────────────

  get tick(): number {
    return this.kernel.tick;
  }

  actorId(name: string): number {
    return this.kernel.actorId(name);
  }

  topic(name: string): number {
    return this.kernel.topicId(name);
  }

  publish(topic: string | number, payload: Uint8Array, options?: PublishOptions): PublishResult {
    if (!(payload instanceof Uint8Array)) {
      throw new ActorContractError(
        `actor '${this.name}': publish takes a Uint8Array payload, got ${describe(payload)}; use publishJson for values`,
      );
    }
    const topicId = typeof topic === 'number' ? topic : this.kernel.topicId(topic);
    return this.kernel.publish(topicId, payload, options?.priority ?? this.priority);
  }

  publishJson(topic: string | number, value: unknown, options?: PublishOptions): PublishResult {
    return this.publish(topic, jsonEncode(value), options);
  }

  send(to: string | number, payload: Uint8Array, options?: PublishOptions): PublishResult {
    const id = typeof to === 'number' ? to : this.kernel.actorId(to);
    return this.publish(this.kernel.inboxTopicOf(id), payload, options);
  }

  sendJson(to: string | number, value: unknown, options?: PublishOptions): PublishResult {
    return this.send(to, jsonEncode(value), options);
  }

  ask(to: string | number, payload: Uint8Array, options?: AskOptions): AskResult {
    assertBytes(this.name, 'ask', payload, 'askJson');
    const id = typeof to === 'number' ? to : this.kernel.actorId(to);
    return this.kernel.ask(id, payload, options?.priority ?? this.priority, options?.timeoutTicks ?? askTimeoutTicksDefault);
  }

  askJson(to: string | number, value: unknown, options?: AskOptions): AskResult {
    return this.ask(to, jsonEncode(value), options);
  }

  reply(message: Message, payload: Uint8Array, options?: PublishOptions): ReplyResult {
    assertBytes(this.name, 'reply', payload, 'replyJson');
    return this.kernel.reply(message, payload, options?.priority ?? this.priority);
  }

  replyJson(message: Message, value: unknown, options?: PublishOptions): ReplyResult {
    return this.reply(message, jsonEncode(value), options);
  }

  after(ticks: number, payload: Uint8Array): TimerId {
    assertBytes(this.name, 'after', payload, 'afterJson');
    return this.kernel.startTimer(ticks, payload, 0);
  }

  afterJson(ticks: number, value: unknown): TimerId {
    return this.after(ticks, jsonEncode(value));
  }

  every(ticks: number, payload: Uint8Array): TimerId {
    assertBytes(this.name, 'every', payload, 'everyJson');
    return this.kernel.startTimer(ticks, payload, ticks);
  }

  everyJson(ticks: number, value: unknown): TimerId {
    return this.every(ticks, jsonEncode(value));
  }

  cancelTimer(id: TimerId): boolean {
    return this.kernel.cancelTimer(id);
  }

  random(): number {
    return this.random_.next();
  }

  randomInt(bound: number): number {
    return this.random_.int(bound);
  }
}

function isThenable(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function promiseReturned(actor: string, hook: string): ActorContractError {
  return new ActorContractError(
    `actor '${actor}': ${hook} returned a Promise; ${hook} must be synchronous and return the new state. ` +
      'Do asynchronous work outside the actor and bring its result in with runtime.inject',
  );
}

function assertBytes(actor: string, what: string, payload: unknown, jsonTwin: string): void {
  if (!(payload instanceof Uint8Array)) {
    throw new ActorContractError(`actor '${actor}': ${what} takes a Uint8Array payload, got ${describe(payload)}; use ${jsonTwin} for values`);
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return typeof value;
}
