/**
 * The runtime facade: wires the kernel, the actor kinds and the replay log together.
 * This file and the package entry are the only places that import across layers.
 */
import { pino, type Logger } from 'pino';
import { JsActor, type ActorDefinition } from '../actors/js-actor.ts';
import { isSupervisorSpec, type ChildSpec, type SupervisorSpec } from '../supervisors/spec.ts';
import { Supervision, type ChildCounts, type ChildInfo, type SupervisedActor, type SupervisorView } from '../supervisors/supervision.ts';
import { WasmAgentActor, WasmHost, assertTrusted, type AgentTrust, type WasmAgentDefinition } from '../actors/wasm-agent.ts';
import { InferenceActor } from '../actors/inference.ts';
import { InferenceChannel } from './inference/channel.ts';
import { ModelManager, loadModelRegistry, resolveInferenceConfig, type InferenceConfig, type ModelCacheStats, type ResolvedInference } from './inference/models.ts';
import { jsonEncode } from './codec.ts';
import { canonicalConfigJson, configDefaults, resolveConfig, type RuntimeConfig } from './config.ts';
import { ConfigError, MailboxFullError } from './errors.ts';
import { checkFaultPlan, malformedBytes, type FaultPlan } from './faults.ts';
import { ControlOp, Kernel, type ActorView, type KernelCounters } from './kernel.ts';
import { FileSink, LogWriter, MemorySink, type LogSink } from './log/writer.ts';
import { LOG_FORMAT_VERSION, type InferenceRecord, type LogHeader, type TickRecord } from './log/types.ts';
import { Random } from './prng.ts';
import type { SpawnOptions, SystemBuilder, SystemDefinition } from './system.ts';
import { lockstepVersion } from './version.ts';
import { checkKeys } from './options.ts';
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
   * the same log whatever the worker count. 0 runs every WASM agent and the inference
   * sessions on the orchestrator's thread (a simulation mode for tests and debugging).
   */
  workers?: number;
  /**
   * Public keys (Ed25519, PEM) whose signatures this runtime accepts on WASM agents. This is
   * the one place trust is set: every agent is checked against it when it is spawned.
   */
  trustedKeys?: readonly string[];
  /** Development only: run WASM agents without checking their signatures. Off by default. */
  allowUnsigned?: boolean;
  /**
   * Wall-clock last resort for a worker that stops answering (a logged, nondeterministic
   * fault). Does not apply with `workers: 0`: fuel metering bounds every agent call.
   */
  watchdogMs?: number;
  /** Idle worker threads kept started, so a dead worker is replaced at once (default 1). */
  spareWorkers?: number;
  /**
   * Faults to inject (ADR-011; see src/faults.ts). Each is taken in as an input of the tick
   * it is due in, so it is logged and replay applies it without the plan.
   */
  faults?: FaultPlan;
  /** Replaces the system's inference config (a config, or a registry file's path). */
  inference?: InferenceConfig | string;
  /**
   * Replay's hook: the answers the recorded run logged whole at `tick`, by
   * `${requester}:${seq}`; the inference actor substitutes them rather than running.
   */
  recordedInference?: (tick: number) => ReadonlyMap<string, InferenceRecord> | null;
}

/** The inference part of a snapshot. */
export interface InferenceView {
  actor: string;
  provider: ResolvedInference['provider'];
  models: { name: string; sha256: string; bytes: number; loaded: boolean; provider: string | null; unavailable: string | null }[];
  cache: ModelCacheStats & { hitRate: number; cacheBytes: number };
  requests: number;
  answered: number;
  errors: number;
  runs: number;
}

/** The model manager's verbs (see `Runtime.models`). */
export interface ModelsHandle {
  /** Loads a model now (warm-up included); resolves with an error text, or null when loaded. */
  load(name: string): Promise<string | null>;
  /** Releases a model's session; its next request loads it again. */
  unload(name: string): Promise<void>;
  /** Loaded models, least recently used first. */
  loaded(): string[];
  readonly stats: ModelCacheStats;
  readonly hitRate: number;
}

/** Default worker threads for WASM agents. */
export const workersDefault = 2;

/** Every key `createRuntime` reads: its own options and the run config's fields. */
const runtimeOptionKeys: readonly string[] = [
  ...Object.keys(configDefaults),
  'log', 'logger', 'embeddedInputs', 'onRecord', 'workers', 'trustedKeys', 'allowUnsigned', 'watchdogMs', 'spareWorkers', 'faults', 'inference', 'recordedInference',
];
const spawnOptionKeys: readonly string[] = ['name', 'args', 'priority', 'mailboxCapacity'];
const runOptionKeys: readonly string[] = ['onProgress', 'progressEvery'];


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
  /** The inference actor and its models; null without one. */
  inference: InferenceView | null;
  /** The supervision trees, each with its children's states. */
  supervisors: SupervisorView[];
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
  private readonly trust: AgentTrust;
  /** Definitions whose signature this runtime has verified (a restart does not verify again). */
  private readonly trustedDefinitions = new WeakSet<WasmAgentDefinition>();
  private readonly kindCounts = new Map<string, number>();
  private readonly inputRandom: Random;
  private readonly embeddedInputs: boolean;
  private readonly onRecord: RuntimeOptions['onRecord'];
  private readonly supervision: Supervision;
  private readonly faultPlan: FaultPlan | null;
  private nextFault = 0;
  private closed = false;
  private finalChain = '';
  /** Set while a tick runs (a WASM tick awaits its barrier): the runtime takes no other call then. */
  private busy = false;
  private readonly inference: { config: ResolvedInference; manager: ModelManager; actor: InferenceActor } | null = null;
  private channel: InferenceChannel | null = null;
  private started = false;
  private gpu = false;

  /**
   * Builds the system (its `setup` runs now) and writes the log header.
   * Throws ConfigError for a bad config or system definition.
   */
  constructor(system: SystemDefinition, options: RuntimeOptions = {}) {
    checkKeys(options ?? {}, runtimeOptionKeys, 'createRuntime options');
    const { log, logger, embeddedInputs, onRecord, workers, trustedKeys, allowUnsigned, watchdogMs, spareWorkers, faults, inference, recordedInference, ...overrides } =
      options;
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
    // Each key is checked now (ConfigError for one that is not an Ed25519 public key PEM),
    // not at the first agent that needs it.
    for (const pem of trustedKeys ?? []) publicKeyId(pem);
    this.trust = Object.freeze({ trustedKeysPem: Object.freeze([...(trustedKeys ?? [])]), allowUnsigned: allowUnsigned ?? false });
    this.wasm = new WasmHost(this.kernel, {
      workers: workers ?? workersDefault,
      seed: this.config.seed,
      payloadBytesMax: this.config.payloadBytesMax,
      watchdogMs,
      spareWorkers,
      logger: this.logger,
    });
    this.kernel.addParticipant(this.wasm);
    this.kernel.setControlHandler((op, target, extra) => this.applyControl(op, target, extra));
    this.supervision = new Supervision(this.kernel, {
      spawnWorker: (start, name, spec) =>
        this.spawnActor(start, { name, args: spec.args, priority: spec.priority, mailboxCapacity: spec.mailboxCapacity }),
    });
    this.kernel.setBoundaryHandler((tick) => this.supervision.atBoundary(tick));
    this.faultPlan = faults === undefined ? null : checkFaultPlan(faults);
    if (log === undefined) {
      this.memorySink = new MemorySink();
      this.writer = new LogWriter(this.memorySink);
    } else {
      this.memorySink = null;
      this.writer = new LogWriter(typeof log === 'string' ? new FileSink(log) : log);
    }

    const inferenceConfig = inference ?? system.inference;
    if (inferenceConfig !== undefined) {
      const config = typeof inferenceConfig === 'string' ? loadModelRegistry(inferenceConfig) : resolveInferenceConfig(inferenceConfig);
      const manager = new ModelManager(config, () => this.inferenceChannel());
      const actor = new InferenceActor(this.kernel, {
        name: config.actorName,
        priority: config.priority,
        manager,
        channel: () => this.inferenceChannel(),
        logOutputs: config.logOutputs,
        logger: this.logger,
        recorded: recordedInference,
      });
      actor.admitted(this.kernel.admit(actor, actor.subscriptions(), config.mailboxCapacity));
      this.kernel.addParticipant(actor);
      // A requester that goes down, or restarts, loses its kept state: its next incarnation
      // starts afresh (at 'restarting' too: a request it sent before going down may have been
      // answered, to nobody, while it was down).
      this.kernel.setLifecycleListener((id, to) => {
        if (to === 'crashed' || to === 'stopped' || to === 'failed' || to === 'restarting') actor.forgetRequester(id);
      });
      this.inference = { config, manager, actor };
    } else {
      // Nothing to start: the header is complete now.
      this.started = true;
      this.writer.writeHeader(this.header());
    }

    for (const topic of system.topics ?? []) this.kernel.declareTopic(topic);
    const builder: SystemBuilder = {
      seed: this.config.seed,
      spawn: (definition, spawnOptions) => this.spawn(definition, spawnOptions),
      declareTopic: (name) => this.kernel.declareTopic(name),
      register: (definition) => {
        this.assertTreeTrusted(definition);
        this.supervision.register(definition);
      },
    };
    system.setup(builder);
  }

  /**
   * The log header this runtime writes: everything a replay needs to start the same run.
   * With an inference actor it is complete only after `start()` (it says whether a GPU
   * served the models).
   */
  header(): LogHeader {
    const inference = this.inference;
    return {
      formatVersion: LOG_FORMAT_VERSION,
      systemName: this.system.name,
      seed: this.config.seed,
      level: this.config.level,
      configJson: canonicalConfigJson(this.config),
      versions: [{ name: 'lockstep', version: lockstepVersion }],
      models: inference === null ? [] : inference.manager.versions(),
      gpu: this.gpu,
      inferenceJson: inference === null ? '' : inferenceJson(inference.config),
    };
  }

  /**
   * Starts what the run needs before its first tick: the inference worker, the preloaded
   * models (and so the GPU decision), then the log header. `step`, `run` and `close` call
   * it; call it first to pay model loading before the first tick.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const inference = this.inference;
    if (inference !== null) {
      const { config, manager } = inference;
      // A GPU asked for is probed at start, so the header can say whether one served.
      const probe = config.preload.length > 0 || config.provider !== 'webgpu' ? config.preload : manager.names();
      for (const name of probe) {
        const loaded = await manager.load(name);
        if (loaded.ok && loaded.fallback !== undefined) this.logger.warn({ model: name }, loaded.fallback);
        if (!loaded.ok) this.logger.warn({ model: name }, loaded.error);
      }
      this.gpu = manager.names().some((name) => manager.entry(name)!.provider === 'webgpu');
    }
    this.writer.writeHeader(this.header());
  }

  /**
   * The inference worker, started on first use. One that died (a crash in ONNX Runtime, a
   * kill) is replaced here: its sessions are gone, so every model loads again at its next
   * request. The answers of the run it died in were run_failed errors, which replay cannot
   * reproduce (like a WASM worker's death, a nondeterministic fault).
   */
  private inferenceChannel(): InferenceChannel {
    const dead = this.channel?.deadReason ?? null;
    if (dead !== null && !this.closed) {
      this.logger.warn({ reason: dead }, 'the inference worker died; starting a new one');
      this.inference?.manager.forgetSessions();
      this.channel = null;
    }
    this.channel ??= InferenceChannel.open({ inThread: this.wasm.inThread });
    return this.channel;
  }

  /** Kills the inference worker now (fault injection): runs in flight fail, the next request starts a new worker. */
  async killInferenceWorker(): Promise<void> {
    await this.channel?.kill();
  }

  /** The model manager's verbs: load, unload, what is loaded, cache stats. Throws ConfigError without models. */
  get models(): ModelsHandle {
    const inference = this.inference;
    if (inference === null) throw new ConfigError(`system '${this.system.name}' has no models; give it an \`inference\` config`);
    const manager = inference.manager;
    return {
      load: async (name: string) => {
        this.assertOpen('models.load');
        const loaded = await manager.load(name);
        return loaded.ok ? null : loaded.error;
      },
      unload: async (name: string) => {
        this.assertOpen('models.unload');
        await manager.unload(name);
      },
      loaded: () => manager.loaded(),
      get stats() {
        return manager.stats;
      },
      get hitRate() {
        return manager.hitRate;
      },
    };
  }

  get tick(): number {
    return this.kernel.tick;
  }

  /**
   * Adds an actor. It takes mail at once and runs init at the next tick boundary.
   * Returns its id. Throws ConfigError for a duplicate name or a bad option.
   */
  spawn<State, Args>(definition: ActorDefinition<State, Args> | WasmAgentDefinition | SupervisorSpec, options: SpawnOptions<Args> = {}): number {
    this.assertOpen('spawn');
    checkKeys(options ?? {}, spawnOptionKeys, `spawn '${String((definition as { name?: unknown })?.name ?? 'supervisor')}'`);
    if (isSupervisorSpec(definition)) {
      // Every WASM agent of the tree is checked now, not when a restart or startChild needs it.
      this.assertTreeTrusted(definition);
      const resolved = this.resolveSpawn('supervisor', options);
      return this.supervision.startTree(definition, resolved.name, resolved.priority);
    }
    return this.spawnActor(definition as ActorDefinition<State, Args> | WasmAgentDefinition, options).self;
  }

  private spawnActor<State, Args>(definition: ActorDefinition<State, Args> | WasmAgentDefinition, options: SpawnOptions<Args>): SupervisedActor {
    if (definition !== null && typeof definition === 'object' && definition.kind === 'wasm') return this.spawnWasm(definition, options);
    if (definition === null || typeof definition !== 'object' || definition.kind !== 'js') {
      throw new ConfigError('spawn takes an actor definition made with defineActor(...) or loadWasmAgent(...), or a supervisor(...) tree');
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
    return actor;
  }

  /** Checks trust for a WASM agent, once per definition per runtime. Throws AdmissionError or ConfigError. */
  private assertAgentTrusted(definition: WasmAgentDefinition): void {
    if (this.trustedDefinitions.has(definition)) return;
    assertTrusted(definition, this.trust);
    this.trustedDefinitions.add(definition);
  }

  /** `assertAgentTrusted` for every WASM agent a start names, nested trees included. */
  private assertTreeTrusted(start: ChildSpec['start']): void {
    if (start === null || typeof start !== 'object') return;
    if (start.kind === 'wasm') this.assertAgentTrusted(start);
    else if (start.kind === 'supervisor') for (const child of start.children) this.assertTreeTrusted(child.start);
  }

  private spawnWasm<Args>(definition: WasmAgentDefinition, options: SpawnOptions<Args>): WasmAgentActor {
    this.assertAgentTrusted(definition);
    for (const model of definition.manifest.capabilities.models) {
      const registered = this.inference?.manager.names() ?? [];
      if (!registered.includes(model)) {
        throw new ConfigError(
          `WASM agent '${definition.name}' may call model '${model}' (its manifest's capabilities.models), but ` +
            (registered.length === 0 ? `system '${this.system.name}' has no models; give it an \`inference\` config` : `the system registers only ${registered.join(', ')}`),
        );
      }
    }
    const resolved = this.resolveSpawn(definition.name, options);
    const actor = new WasmAgentActor(definition, resolved.name, resolved.priority, this.kernel, this.wasm);
    const id = this.kernel.admit(actor, definition.manifest.capabilities.subscribe, resolved.mailboxCapacity);
    actor.admitted(id);
    this.wasmActors.set(resolved.name, actor);
    return actor;
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
   * Runs one tick and logs it; resolves with its record. WASM agents and the inference
   * actor finish their part on worker threads: the event loop stays free meanwhile. A
   * system with neither finishes the tick synchronously inside the call.
   */
  async step(): Promise<TickRecord> {
    this.assertOpen('step');
    this.busy = true;
    try {
      if (!this.started) await this.start();
      this.injectEmbeddedInputs();
      return this.logRecord(await this.kernel.runTick());
    } finally {
      this.busy = false;
    }
  }

  /**
   * Takes the system's embedded inputs for the next tick. One that meets a full mailbox is
   * refused and logged (not thrown): the generator ran for this tick and must not run again.
   */
  private injectEmbeddedInputs(): void {
    if (this.embeddedInputs) this.injectDueFaults(this.kernel.tick + 1);
    if (!this.embeddedInputs || this.system.inputs === undefined) return;
    const inputs = this.system.inputs(this.kernel.tick + 1, this.inputRandom) ?? [];
    for (const input of inputs) {
      const topic = this.kernel.topicId(input.topic);
      try {
        this.kernel.inject(topic, input.payload, input.priority ?? 0);
      } catch (error) {
        if (!(error instanceof MailboxFullError)) throw error;
        this.kernel.refuseInput(`refused: embedded input, ${error.message}`);
      }
    }
  }

  /**
   * Takes in the faults due at `tick` as inputs. A fault that names no current actor (or
   * finds no room) is logged as refused, never thrown: the plan must not stop the run.
   */
  private injectDueFaults(tick: number): void {
    const plan = this.faultPlan;
    if (plan === null) return;
    while (this.nextFault < plan.faults.length && plan.faults[this.nextFault]!.tick <= tick) {
      const index = this.nextFault++;
      const fault = plan.faults[index]!;
      if (fault.tick < tick) continue;
      try {
        if (fault.kind === 'killWorker') {
          this.kernel.control(ControlOp.killWorker, fault.worker);
        } else if (fault.kind === 'malformed') {
          const topic = fault.actor !== undefined ? this.kernel.inboxTopicOf(this.kernel.actorId(fault.actor)) : this.kernel.topicId(fault.topic!);
          this.kernel.inject(topic, malformedBytes(plan, index, fault.bytes ?? 16), 0);
        } else {
          this.kernel.control(fault.kind === 'crash' ? ControlOp.crash : ControlOp.exhaustFuel, this.kernel.actorId(fault.actor));
        }
      } catch (error) {
        this.kernel.refuseInput(`refused: fault plan, ${fault.kind} at tick ${tick}: ${(error as Error).message}`);
      }
    }
  }

  private logRecord(record: TickRecord): TickRecord {
    const body = this.writer.appendTick(record);
    this.onRecord?.(record, body);
    return record;
  }

  /** Runs `ticks` ticks. `onProgress` is called every `progressEvery` ticks. */
  async run(ticks: number, options: RunOptions = {}): Promise<RunSummary> {
    assertTicks(ticks);
    checkKeys(options, runOptionKeys, 'run options');
    const every = options.progressEvery ?? 1000;
    for (let i = 0; i < ticks; i++) {
      await this.step();
      if (options.onProgress !== undefined && this.kernel.tick % every === 0) options.onProgress(this.kernel.tick);
    }
    return this.summary();
  }

  private summary(): RunSummary {
    return { ticks: this.kernel.tick, counters: { ...this.kernel.counters }, chainHex: this.writer.chainHex };
  }

  /** True when the system has WASM agents (and so a worker pool). */
  private get hasWasmAgents(): boolean {
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

  /** Carries out a control request taken in at a tick boundary; returns null or why it was refused. */
  private applyControl(op: ControlOp, target: number, extra: Uint8Array): string | null {
    if (op === ControlOp.killWorker) {
      if (!this.hasWasmAgents) return 'killWorker: this system has no WASM worker pool';
      const refusal = this.wasm.pool().killRefusal(target);
      if (refusal !== null) return `killWorker: ${refusal}`;
      this.wasm.pool().killDuringNextTick(target);
      return null;
    }
    if (op === ControlOp.supervisor) return this.supervision.applyVerb(target, extra);
    if (op === ControlOp.stop) {
      this.kernel.stopActor(target, 'stopped by request');
      return null;
    }
    if (op === ControlOp.crash && this.supervision.isSupervisor(target)) return this.supervision.crashSupervisor(target, 'crash');
    const name = this.kernel.actorName(target);
    const actor = this.jsActors.get(name) ?? this.wasmActors.get(name);
    if (actor === undefined || actor.self !== target) return `actor #${target} takes no ${controlOpName(op)} request`;
    if (op === ControlOp.suspend) actor.suspend();
    else if (op === ControlOp.resume) actor.resume();
    else if (op === ControlOp.crash) {
      // An actor that is down, not yet started or restarting at this boundary cannot crash:
      // say so in the log rather than let the fault pass as applied.
      const before = actor.lifecycleState;
      actor.injectCrash('crash');
      if (actor.lifecycleState === before) return `crash: '${name}' is ${before}, not running`;
    } else if (op === ControlOp.exhaustFuel) {
      if (!(actor instanceof WasmAgentActor)) return `exhaustFuel: '${name}' is a JS actor; only WASM agents burn fuel`;
      if (!actor.exhaustFuel()) return `exhaustFuel: '${name}' is ${actor.lifecycleState}, not running`;
    }
    return null;
  }

  // ── supervision ─────────────────────────────────────────────────────────────────

  /**
   * The supervision verbs of the supervisor named `name` (OTP's startChild, terminateChild,
   * restartChild, deleteChild, whichChildren, countChildren). The changing verbs are checked
   * at once (a SupervisorError with OTP's reason), then taken in at the next tick boundary
   * as logged inputs, so replay repeats them; the reading verbs answer now.
   */
  supervisor(name: string): SupervisorHandle {
    this.supervision.supervisorNamed(name);
    const request = (verb: 'terminateChild' | 'restartChild' | 'deleteChild', id: string) => {
      this.assertOpen(verb);
      const payload = this.supervision.prepareVerb(name, verb, id);
      this.kernel.control(ControlOp.supervisor, this.kernel.actorId(name), payload);
    };
    return {
      name,
      startChild: (specOrArgs: ChildSpec | unknown) => {
        this.assertOpen('startChild');
        const { name: child, payload } = this.supervision.prepareStartChild(name, specOrArgs);
        this.kernel.control(ControlOp.supervisor, this.kernel.actorId(name), payload);
        return child;
      },
      terminateChild: (id: string) => request('terminateChild', id),
      restartChild: (id: string) => request('restartChild', id),
      deleteChild: (id: string) => request('deleteChild', id),
      whichChildren: () => this.supervision.whichChildren(name),
      countChildren: () => this.supervision.countChildren(name),
    };
  }

  /** Requests a crash of an actor or supervisor at the next tick boundary (a logged input). */
  crashActor(name: string): void {
    this.assertOpen('crashActor');
    this.kernel.control(ControlOp.crash, this.kernel.actorId(name));
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
      const crash = this.jsActors.get(view.name)?.lastCrash ?? this.wasmActors.get(view.name)?.lastCrash ?? this.supervision.lastCrashOf(view.id);
      return { ...view, lastCrash: crash === null ? null : { tick: crash.tick, message: crash.message } };
    });
    return {
      system: this.system.name,
      tick: this.kernel.tick,
      seed: this.config.seed,
      level: this.config.level,
      actors,
      inference: this.inferenceView(),
      supervisors: this.supervision.views(),
      counters: { ...this.kernel.counters, actors: this.kernel.actorCount(), topics: this.kernel.topicList().length },
      closed: this.closed,
    };
  }

  private inferenceView(): InferenceView | null {
    const inference = this.inference;
    if (inference === null) return null;
    const { manager, actor, config } = inference;
    return {
      actor: actor.name,
      provider: config.provider,
      models: manager.names().map((name) => {
        const entry = manager.entry(name)!;
        return { ...entry.version, loaded: entry.loaded, provider: entry.provider, unavailable: entry.unavailable };
      }),
      cache: { ...manager.stats, loadMicros: [...manager.stats.loadMicros], hitRate: manager.hitRate, cacheBytes: config.cacheBytes },
      ...actor.counters,
    };
  }

  /** The inference actor (benchmarks read its run timings). */
  get inferenceActor(): InferenceActor | null {
    return this.inference?.actor ?? null;
  }

  /**
   * Ends the run: stops actors in reverse start order (WASM agents run agent_shutdown on
   * their workers), logs a final record and the end marker, flushes the log and stops the
   * worker threads. Resolves with the final hash chain (the run's digest); closing again
   * resolves with the same digest.
   */
  async close(): Promise<string> {
    if (this.closed) return this.finalChain;
    this.assertOpen('close');
    this.busy = true;
    try {
      if (!this.started) await this.start();
      const ticks = this.kernel.tick;
      this.supervision.closing = true;
      const digest = this.finish(ticks, await this.kernel.shutdown(this.supervision.shutdownOrder()));
      await this.wasm.close();
      await this.channel?.close();
      return digest;
    } finally {
      this.busy = false;
    }
  }

  /** Stops the worker pool without logging a shutdown (replay, after a divergence). */
  async abandon(): Promise<void> {
    this.closed = true;
    await this.wasm.close();
    await this.channel?.close();
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
      throw new ConfigError(`${what}: a tick is still running; await step()/run() before calling the runtime again`);
    }
  }
}

/** A supervisor's verbs; see `Runtime.supervisor`. */
export interface SupervisorHandle {
  readonly name: string;
  /**
   * Adds a child at the next tick boundary and returns its actor name. For
   * simple_one_for_one, pass the new child's args (a JSON value); otherwise a child spec
   * whose `start` was registered in setup (and whose args are a JSON value).
   */
  startChild(specOrArgs: ChildSpec | unknown): string;
  /** Stops a child (its spec stays, except temporary and simple_one_for_one children). */
  terminateChild(id: string): void;
  /** Starts a terminated child again. */
  restartChild(id: string): void;
  /** Removes a terminated child's spec. */
  deleteChild(id: string): void;
  whichChildren(): ChildInfo[];
  countChildren(): ChildCounts;
}

/** The inference config as the header records it: canonical JSON, paths left out (they are the machine's). */
function inferenceJson(config: ResolvedInference): string {
  return JSON.stringify({
    cacheBytes: config.cacheBytes,
    logOutputs: config.logOutputs,
    models: config.models.map((model) => ({ batch: model.batch, name: model.name, sessionOptions: model.sessionOptions, state: model.state, warmup: model.warmup })),
    provider: config.provider,
  });
}

function controlOpName(op: ControlOp): string {
  return (Object.entries(ControlOp).find(([, value]) => value === op)?.[0]) ?? `#${op}`;
}

/** Creates a runtime for `system`. See `RuntimeOptions`. */
export function createRuntime(system: SystemDefinition, options: RuntimeOptions = {}): Runtime {
  return new Runtime(system, options);
}
