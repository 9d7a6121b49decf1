/**
 * The runtime facade: wires the kernel, the actor kinds and the replay log together.
 * This file and the package entry are the only places that import across layers.
 */
import { pino, type Logger } from 'pino';
import { JsActor, type ActorDefinition } from '../actors/js-actor.ts';
import { WasmAgentActor, WasmHost, assertTrusted, type WasmAgentDefinition } from '../actors/wasm-agent.ts';
import { jsonEncode } from './codec.ts';
import { canonicalConfigJson, resolveConfig, type RuntimeConfig } from './config.ts';
import { ConfigError, MailboxFullError } from './errors.ts';
import { ControlOp, Kernel, type ActorView, type KernelCounters } from './kernel.ts';
import { FileSink, LogWriter, MemorySink, type LogSink } from './log/writer.ts';
import { LOG_FORMAT_VERSION, type LogHeader, type TickRecord } from './log/types.ts';
import { Random } from './prng.ts';
import type { SpawnOptions, SystemBuilder, SystemDefinition } from './system.ts';
import { lockstepVersion } from './version.ts';
import { publicKeyId } from './wasm/signing.ts';

export interface RuntimeOptions extends Partial<RuntimeConfig> {
  /**
   * Where the replay log goes: a file path, a sink, or nothing for an in-memory log
   * (`runtime.logBytes()` returns it).
   */
  log?: string | LogSink;
  /** Structured logger; silent by default. */
  logger?: Logger;
  /**
   * Whether the system's embedded `inputs` generator runs. Replay turns it off and feeds
   * the logged inputs instead.
   */
  embeddedInputs?: boolean;
  /** Called with every record right after it is logged (replay compares them). */
  onRecord?: (record: TickRecord, body: Uint8Array) => void;
  /**
   * Worker threads for WASM agents (default 2). Not part of the run's config: a run gives
   * the same log whatever the worker count.
   */
  workers?: number;
  /** Public keys (PEM) whose signatures this runtime accepts on WASM agent modules. */
  trustedKeys?: readonly string[];
  /** Development only: accept unsigned WASM agent modules. Off by default. */
  allowUnsigned?: boolean;
  /** Wall-clock last resort for a worker that stops answering (a logged, nondeterministic fault). */
  watchdogMs?: number;
}

/** Default worker threads for WASM agents. */
export const workersDefault = 2;


export interface InjectOptions {
  /** 0..255, higher first. Defaults to 0. */
  priority?: number;
}

export interface RuntimeSnapshot {
  system: string;
  tick: number;
  seed: number;
  level: RuntimeConfig['level'];
  actors: (ActorView & { lastCrash: { tick: number; message: string } | null })[];
  counters: KernelCounters & { actors: number; topics: number };
  closed: boolean;
}

export interface RunOptions {
  onProgress?: (tick: number) => void;
  progressEvery?: number;
}

function assertTicks(ticks: number): void {
  if (!(Number.isInteger(ticks) && ticks >= 0)) throw new ConfigError(`ticks must be an integer >= 0, got ${ticks}`);
}

export interface RunSummary {
  ticks: number;
  counters: KernelCounters;
  chainHex: string;
}

/** The spawn options after defaults. */
interface ResolvedSpawn<Args> {
  name: string;
  args: Args;
  priority: number;
  mailboxCapacity: number | undefined;
}

export class Runtime {
  readonly config: RuntimeConfig;
  readonly system: SystemDefinition;
  readonly logger: Logger;
  private readonly kernel: Kernel;
  private readonly writer: LogWriter;
  private readonly memorySink: MemorySink | null;
  private readonly jsActors = new Map<string, JsActor<unknown, unknown>>();
  private readonly wasmActors = new Map<string, WasmAgentActor>();
  private readonly wasm: WasmHost;
  private readonly trustedKeyIds: ReadonlySet<string>;
  private readonly allowUnsigned: boolean;
  private readonly kindCounts = new Map<string, number>();
  private readonly inputRandom: Random;
  private readonly embeddedInputs: boolean;
  private readonly onRecord: RuntimeOptions['onRecord'];
  private closed = false;
  private finalChain = '';
  /** Set while a tick runs (a WASM tick awaits its barrier): the runtime takes no other call then. */
  private busy = false;

  /**
   * Builds the system (its `setup` runs now) and writes the log header.
   * Throws ConfigError for a bad config or system definition.
   */
  constructor(system: SystemDefinition, options: RuntimeOptions = {}) {
    const { log, logger, embeddedInputs, onRecord, workers, trustedKeys, allowUnsigned, watchdogMs, ...overrides } = options;
    this.system = system;
    this.config = resolveConfig(system.config, overrides);
    this.logger = logger ?? pino({ level: 'silent' });
    this.embeddedInputs = embeddedInputs ?? true;
    this.onRecord = onRecord;
    this.inputRandom = new Random(this.config.seed, 0, 0);
    this.kernel = new Kernel({
      tickTasksMax: this.config.tickTasksMax,
      mailboxCapacity: this.config.mailboxCapacity,
      payloadBytesMax: this.config.payloadBytesMax,
      level: this.config.level,
    });
    this.trustedKeyIds = new Set((trustedKeys ?? []).map((pem) => publicKeyId(pem)));
    this.allowUnsigned = allowUnsigned ?? false;
    this.wasm = new WasmHost(this.kernel, {
      workers: workers ?? workersDefault,
      seed: this.config.seed,
      payloadBytesMax: this.config.payloadBytesMax,
      watchdogMs,
      logger: this.logger,
    });
    this.kernel.setParticipant(this.wasm);
    this.kernel.setControlHandler((op, actorId) => this.applyControl(op, actorId));
    if (log === undefined) {
      this.memorySink = new MemorySink();
      this.writer = new LogWriter(this.memorySink);
    } else {
      this.memorySink = null;
      this.writer = new LogWriter(typeof log === 'string' ? new FileSink(log) : log);
    }
    this.writer.writeHeader(this.header());

    for (const topic of system.topics ?? []) this.kernel.declareTopic(topic);
    const builder: SystemBuilder = {
      seed: this.config.seed,
      spawn: (definition, spawnOptions) => this.spawn(definition, spawnOptions),
      declareTopic: (name) => this.kernel.declareTopic(name),
    };
    system.setup(builder);
  }

  /** The log header this runtime writes: everything a replay needs to start the same run. */
  header(): LogHeader {
    return {
      formatVersion: LOG_FORMAT_VERSION,
      systemName: this.system.name,
      seed: this.config.seed,
      level: this.config.level,
      configJson: canonicalConfigJson(this.config),
      versions: [{ name: 'lockstep', version: lockstepVersion }],
    };
  }

  get tick(): number {
    return this.kernel.tick;
  }

  /**
   * Adds an actor. It takes mail at once and runs init at the next tick boundary.
   * Returns its id. Throws ConfigError for a duplicate name or a bad option.
   */
  spawn<State, Args>(definition: ActorDefinition<State, Args> | WasmAgentDefinition, options: SpawnOptions<Args> = {}): number {
    this.assertOpen('spawn');
    if (definition !== null && typeof definition === 'object' && definition.kind === 'wasm') return this.spawnWasm(definition, options);
    if (definition === null || typeof definition !== 'object' || definition.kind !== 'js') {
      throw new ConfigError('spawn takes an actor definition made with defineActor(...) or loadWasmAgent(...)');
    }
    const resolved = this.resolveSpawn(definition.name, options);
    const actor = new JsActor(definition, this.kernel, {
      name: resolved.name,
      args: resolved.args,
      priority: resolved.priority,
      seed: this.config.seed,
      logger: this.logger,
    });
    const id = this.kernel.admit(actor, actor.subscriptions(), resolved.mailboxCapacity);
    actor.admitted(id);
    this.jsActors.set(resolved.name, actor as JsActor<unknown, unknown>);
    return id;
  }

  private spawnWasm<Args>(definition: WasmAgentDefinition, options: SpawnOptions<Args>): number {
    assertTrusted(definition, this.trustedKeyIds, this.allowUnsigned);
    const resolved = this.resolveSpawn(definition.name, options);
    const actor = new WasmAgentActor(definition, resolved.name, resolved.priority, this.kernel, this.wasm);
    const id = this.kernel.admit(actor, definition.manifest.capabilities.subscribe, resolved.mailboxCapacity);
    actor.admitted(id);
    this.wasmActors.set(resolved.name, actor);
    return id;
  }

  private resolveSpawn<Args>(kind: string, options: SpawnOptions<Args>): ResolvedSpawn<Args> {
    const count = (this.kindCounts.get(kind) ?? 0) + 1;
    this.kindCounts.set(kind, count);
    const name = options.name ?? `${kind}-${count}`;
    if (typeof name !== 'string' || name.length === 0) throw new ConfigError('spawn: `name` must be a non-empty string');
    return {
      name,
      args: options.args as Args,
      priority: options.priority ?? 0,
      mailboxCapacity: options.mailboxCapacity,
    };
  }

  /** The id of a declared topic; throws UnknownTopicError with what to do. */
  topic(name: string): number {
    return this.kernel.topicId(name);
  }

  topicName(id: number): string {
    return this.kernel.topicName(id);
  }

  actorName(id: number): string {
    return this.kernel.actorName(id);
  }

  actorId(name: string): number {
    return this.kernel.actorId(name);
  }

  /**
   * Queues an external input; it enters at the next tick boundary and is logged there.
   * Throws MailboxFullError when a subscriber is full (nothing enqueued: retry after a tick),
   * UnknownTopicError, PayloadTooLargeError.
   */
  inject(topic: string | number, payload: Uint8Array, options: InjectOptions = {}): void {
    this.assertOpen('inject');
    if (!(payload instanceof Uint8Array)) {
      throw new ConfigError('inject takes a Uint8Array payload; use injectJson for values');
    }
    const topicId = typeof topic === 'number' ? topic : this.kernel.topicId(topic);
    this.kernel.inject(topicId, payload, options.priority ?? 0);
  }

  /** Injects a JSON value (values JSON would mangle are refused with PayloadEncodingError). */
  injectJson(topic: string | number, value: unknown, options: InjectOptions = {}): void {
    this.inject(topic, jsonEncode(value), options);
  }

  /**
   * Runs one tick and logs it; returns its record. A system with WASM agents needs
   * `stepAsync` (their work finishes on worker threads): this throws ConfigError for it.
   */
  step(): TickRecord {
    this.assertOpen('step');
    if (this.hasWasmAgents) {
      throw new ConfigError('this system has WASM agents, whose ticks finish on worker threads: use stepAsync/runAsync');
    }
    this.injectEmbeddedInputs();
    return this.logRecord(this.kernel.runTick());
  }

  /** Runs one tick, waiting for WASM agents without blocking the event loop; logs it. */
  async stepAsync(): Promise<TickRecord> {
    this.assertOpen('stepAsync');
    this.busy = true;
    try {
      this.injectEmbeddedInputs();
      return this.logRecord(await this.kernel.runTickAsync());
    } finally {
      this.busy = false;
    }
  }

  /**
   * Takes the system's embedded inputs for the next tick. One that meets a full mailbox is
   * refused and logged (not thrown): the generator ran for this tick and must not run again.
   */
  private injectEmbeddedInputs(): void {
    if (!this.embeddedInputs || this.system.inputs === undefined) return;
    const inputs = this.system.inputs(this.kernel.tick + 1, this.inputRandom) ?? [];
    for (const input of inputs) {
      const topic = this.kernel.topicId(input.topic);
      try {
        this.kernel.inject(topic, input.payload, input.priority ?? 0);
      } catch (error) {
        if (!(error instanceof MailboxFullError)) throw error;
        this.kernel.recordRefusal(0, topic, `refused: embedded input, ${error.message}`);
      }
    }
  }

  private logRecord(record: TickRecord): TickRecord {
    const body = this.writer.appendTick(record);
    this.onRecord?.(record, body);
    return record;
  }

  /** Runs `ticks` ticks (JS actors only; see `runAsync`). `onProgress` is called every `progressEvery` ticks. */
  run(ticks: number, options: RunOptions = {}): RunSummary {
    assertTicks(ticks);
    const every = options.progressEvery ?? 1000;
    for (let i = 0; i < ticks; i++) {
      this.step();
      if (options.onProgress !== undefined && this.kernel.tick % every === 0) options.onProgress(this.kernel.tick);
    }
    return this.summary();
  }

  /** Runs `ticks` ticks of any system, JS actors and WASM agents alike. */
  async runAsync(ticks: number, options: RunOptions = {}): Promise<RunSummary> {
    assertTicks(ticks);
    const every = options.progressEvery ?? 1000;
    for (let i = 0; i < ticks; i++) {
      await this.stepAsync();
      if (options.onProgress !== undefined && this.kernel.tick % every === 0) options.onProgress(this.kernel.tick);
    }
    return this.summary();
  }

  private summary(): RunSummary {
    return { ticks: this.kernel.tick, counters: { ...this.kernel.counters }, chainHex: this.writer.chainHex };
  }

  /** True when the system has WASM agents (and so needs stepAsync, runAsync, closeAsync). */
  get hasWasmAgents(): boolean {
    return this.wasm.agentCount > 0;
  }

  /** Kills WASM worker `index` now (fault injection); its agents crash at the next tick's barrier. */
  async killWorker(index: number): Promise<void> {
    await this.wasm.killWorker(index);
  }

  /** Suspends an actor: it keeps taking mail but is not scheduled. */
  suspend(name: string): void {
    this.assertOpen('suspend');
    this.anyActor(name);
    this.kernel.control(ControlOp.suspend, this.kernel.actorId(name));
  }

  /** Resumes a suspended actor at the next tick boundary. */
  resume(name: string): void {
    this.assertOpen('resume');
    this.anyActor(name);
    this.kernel.control(ControlOp.resume, this.kernel.actorId(name));
  }

  /**
   * Stops an actor at the next tick boundary: its stop hook runs, its queued mail is
   * dropped (and logged as such). Like suspend and resume, the request is an input: it is
   * in the log and replay applies it at the same tick.
   */
  stopActor(name: string): void {
    this.assertOpen('stopActor');
    this.anyActor(name);
    this.kernel.control(ControlOp.stop, this.kernel.actorId(name));
  }

  /** Carries out a control request taken in at a tick boundary. */
  private applyControl(op: ControlOp, actorId: number): void {
    const name = this.kernel.actorName(actorId);
    const actor = this.jsActors.get(name) ?? this.wasmActors.get(name);
    if (actor === undefined) return;
    if (op === ControlOp.suspend) actor.suspend();
    else if (op === ControlOp.resume) actor.resume();
    else if (op === ControlOp.stop) this.kernel.stopActor(actorId, 'stopped by request');
  }

  private anyActor(name: string): { suspend(): void; resume(): void } {
    const actor = this.jsActors.get(name) ?? this.wasmActors.get(name);
    if (actor === undefined) throw new ConfigError(`no actor named '${name}'`);
    return actor;
  }

  /** The current state value of a JS actor (for tests and inspection). */
  actorState<State = unknown>(name: string): State | undefined {
    return this.jsActor(name).currentState as State | undefined;
  }

  private jsActor(name: string): JsActor<unknown, unknown> {
    const actor = this.jsActors.get(name);
    if (actor === undefined) {
      if (this.wasmActors.has(name)) {
        throw new ConfigError(`'${name}' is a WASM agent: its state lives in its own linear memory; observe it through what it publishes`);
      }
      throw new ConfigError(`no actor named '${name}'`);
    }
    return actor;
  }

  /** A cheap, pull-based view of the runtime. */
  snapshot(): RuntimeSnapshot {
    const actors = this.kernel.actorViews().map((view) => {
      const crash = this.jsActors.get(view.name)?.lastCrash ?? this.wasmActors.get(view.name)?.lastCrash ?? null;
      return { ...view, lastCrash: crash === null ? null : { tick: crash.tick, message: crash.message } };
    });
    return {
      system: this.system.name,
      tick: this.kernel.tick,
      seed: this.config.seed,
      level: this.config.level,
      actors,
      counters: { ...this.kernel.counters, actors: this.kernel.actorCount(), topics: this.kernel.topicList().length },
      closed: this.closed,
    };
  }

  /**
   * Ends the run: stops actors in reverse start order, logs a final record and the end
   * marker, and flushes the log. Returns the final hash chain (the run's digest). A system
   * with WASM agents needs `closeAsync` (their shutdown runs on workers).
   */
  close(): string {
    if (this.closed) return this.finalChain;
    this.assertOpen('close');
    if (this.hasWasmAgents) {
      throw new ConfigError('this system has WASM agents, whose shutdown runs on worker threads: use closeAsync');
    }
    const ticks = this.kernel.tick;
    return this.finish(ticks, this.kernel.shutdown());
  }

  /** `close` for any system: waits for WASM agents' shutdown, then stops the worker pool. */
  async closeAsync(): Promise<string> {
    if (this.closed) return this.finalChain;
    this.assertOpen('closeAsync');
    this.busy = true;
    try {
      const ticks = this.kernel.tick;
      const digest = this.finish(ticks, await this.kernel.shutdownAsync());
      await this.wasm.close();
      return digest;
    } finally {
      this.busy = false;
    }
  }

  /** Stops the worker pool without logging a shutdown (replay, after a divergence). */
  async abandon(): Promise<void> {
    this.closed = true;
    await this.wasm.close();
  }

  private finish(ticks: number, record: TickRecord): string {
    this.logRecord(record);
    this.writer.close({ ticks, reason: 'shutdown' });
    this.closed = true;
    this.finalChain = this.writer.chainHex;
    return this.finalChain;
  }

  /**
   * Pushes buffered log records to the file. A file log is otherwise written in ~1 MiB
   * chunks; a service that must not lose more than a few ticks on a kill flushes after them.
   */
  flush(): void {
    this.writer.flush();
  }

  /** The bytes of an in-memory log (when no `log` option was given). */
  logBytes(): Uint8Array {
    if (this.memorySink === null) throw new ConfigError('logBytes() is only for in-memory logs; this runtime logs to a file or sink');
    return this.memorySink.bytes();
  }

  get chainHex(): string {
    return this.writer.chainHex;
  }

  /** Replay's way in: an input exactly as logged (topic id, priority, payload). */
  injectRecorded(topic: number, payload: Uint8Array, priority: number): void {
    this.kernel.inject(topic, payload, priority);
  }

  private assertOpen(what: string): void {
    if (this.closed) throw new ConfigError(`${what}: the runtime is closed; create a new one`);
    if (this.busy) {
      throw new ConfigError(`${what}: a tick is still running; await stepAsync/runAsync before calling the runtime again`);
    }
  }
}

/** Creates a runtime for `system`. See `RuntimeOptions`. */
export function createRuntime(system: SystemDefinition, options: RuntimeOptions = {}): Runtime {
  return new Runtime(system, options);
}
