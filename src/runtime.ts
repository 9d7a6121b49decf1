/**
 * The runtime facade: the verbs (`start`, `step`, `run`, `close`), the actor registry and
 * its handles, and the wiring of the layers: the kernel (scheduling and mailboxes), the
 * actor kinds and their executors (JS cells here, the WASM host, the inference actor),
 * supervision, the fault injector, the recorder (the log) and the event bus. This file and
 * the package entry are the only places that import across layers.
 *
 * One tick, seen from here: the fault plan's due faults and the system's embedded inputs
 * are taken in; the kernel runs the tick (its executors settle at the barrier) and
 * reports its facts; the recorder turns them into the log's record; then the event bus
 * hands out what the tick did.
 */
import { pino, type Logger } from 'pino';
import { ActorCell } from '../actors/cell.ts';
import { InferenceActor } from '../actors/inference.ts';
import { JsActor, type ActorDefinition } from '../actors/js-actor.ts';
import type { LifecycleState } from '../actors/lifecycle.ts';
import { WasmAgentActor, WasmHost, assertTrusted, type AgentTrust, type WasmAgentDefinition } from '../actors/wasm-agent.ts';
import { isSupervisorSpec, type ChildSpec, type SupervisorSpec } from '../supervisors/spec.ts';
import { Supervision, supervisionChannel, type ChildCounts, type ChildInfo, type SupervisedActor, type SupervisorView } from '../supervisors/supervision.ts';
import { jsonDecode, jsonEncode, utf8Decode, withJsonPayload } from './codec.ts';
import { canonicalConfigJson, configDefaults, resolveConfig, type RuntimeConfig } from './config.ts';
import {
  ArgumentError,
  AskFailedError,
  AskTimeoutError,
  ConfigError,
  MailboxFullError,
  RuntimeClosedError,
  TickInProgressError,
  UsageError,
  describeValue,
} from './errors.ts';
import { EventBus, type RuntimeEvents } from './events.ts';
import { FaultInjector, checkFaultPlan, type FaultPlan } from './faults.ts';
import { InferenceChannel } from './inference/channel.ts';
import { ModelManager, loadModelRegistry, resolveInferenceConfig, type InferenceConfig, type ModelCacheStats, type ResolvedInference } from './inference/models.ts';
import { Kernel, type ActorView, type KernelCounters } from './kernel.ts';
import { LOG_FORMAT_VERSION, type InferenceRecord, type LogHeader, type TickRecord } from './log/types.ts';
import { FileSink, type LogSink } from './log/writer.ts';
import { checkKeys } from './options.ts';
import { Random } from './prng.ts';
import { Recorder } from './recorder.ts';
import type { SpawnOptions, SystemBuilder, SystemDefinition } from './system.ts';
import type { TickFacts } from './tick-facts.ts';
import { askTimeoutTicksDefault } from './limits.ts';
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
}

/**
 * What replay changes in a runtime (src/replay.ts); not part of the public options.
 * @internal
 */
export interface ReplayHooks {
  /** The system's embedded input generator does not run: the logged inputs are fed instead. */
  embeddedInputs: false;
  /** The answers the recorded run logged whole at `tick`, by `${requester}:${seq}`; substituted. */
  recordedInference: (tick: number) => ReadonlyMap<string, InferenceRecord> | null;
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

/**
 * One actor, by name (`runtime.actor(name)`). The requests that change an actor (suspend,
 * resume, stop, crash, exhaustFuel) are inputs taken in at the next tick boundary, on the
 * reserved control topic: they are in the log and replay applies them at the same tick.
 */
export interface ActorHandle {
  readonly id: number;
  readonly name: string;
  readonly kind: 'js' | 'wasm' | 'supervisor' | 'inference';
  /** Its lifecycle state now. */
  lifecycle(): LifecycleState;
  /**
   * A JS actor's state value now (for tests and inspection; do not change it). Throws
   * ConfigError for another kind: a WASM agent's state lives in its own memory.
   */
  state<State = unknown>(): State | undefined;
  /** Keeps it taking mail, not scheduled (JS actors and WASM agents). */
  suspend(): void;
  resume(): void;
  /** Stops it: its stop hook runs, its queued mail is dropped with a reason. */
  stop(): void;
  /** Crashes it, as if its code had failed (fault injection; supervisors too). */
  crash(): void;
  /** Spends a WASM agent's fuel for the tick: its next call traps (fault injection). Throws ConfigError for another kind. */
  exhaustFuel(): void;
}

/** Default worker threads for WASM agents. */
export const workersDefault = 2;

/** Every key `createRuntime` reads: its own options and the run config's fields. */
const runtimeOptionKeys: readonly string[] = [
  ...Object.keys(configDefaults),
  'log', 'logger', 'workers', 'trustedKeys', 'allowUnsigned', 'watchdogMs', 'spareWorkers', 'faults', 'inference',
];
const spawnOptionKeys: readonly string[] = ['name', 'args', 'priority', 'mailboxCapacity'];
const runOptionKeys: readonly string[] = ['onProgress', 'progressEvery'];

/**
 * Control channels the runtime owns (see the kernel's control topic): requests that name
 * an actor. The numbers are in every log that holds one of them: they never change.
 */
const RuntimeChannel = { suspend: 1, resume: 2, stop: 3 } as const;

export interface InjectOptions {
  /** 0..255, higher first. Defaults to 0. */
  priority?: number;
}

export interface AskFromOutsideOptions extends InjectOptions {
  /**
   * Ticks the actor has to reply, counted from the tick that takes the ask in (1: it must
   * reply in that tick). Then the ask rejects with AskTimeoutError. Defaults to 100.
   */
  timeoutTicks?: number;
}

/** What an ask from outside resolves with: the reply an actor made with `ctx.reply`. */
export class Reply {
  constructor(
    /** The actor that replied. */
    readonly actor: string,
    /** The tick the reply was made in. */
    readonly tick: number,
    readonly payload: Uint8Array,
  ) {}

  /** The payload parsed as JSON; throws PayloadEncodingError on malformed JSON. */
  json<T = unknown>(): T {
    return jsonDecode(this.payload) as T;
  }

  /** The payload decoded as UTF-8 text. */
  text(): string {
    return utf8Decode(this.payload);
  }
}

interface WaitingAsk {
  actor: string;
  timeoutTicks: number;
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
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
  if (!(Number.isInteger(ticks) && ticks >= 0)) throw new ArgumentError(`run: ticks must be an integer >= 0, got ${describeValue(ticks)}`);
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

/**
 * A running system: built from its definition by `createRuntime`, stepped with `step`/`run`,
 * ended with `close`. One call at a time: await each verb before the next.
 */
export class Runtime {
  readonly config: RuntimeConfig;
  readonly system: SystemDefinition;
  readonly logger: Logger;
  /** What each tick did, for whoever watches (see src/events.ts). */
  readonly events: RuntimeEvents;
  private readonly bus: EventBus;
  private readonly kernel: Kernel;
  private readonly recorder: Recorder;
  private readonly wasm: WasmHost;
  private readonly trust: AgentTrust;
  /** Definitions whose signature this runtime has verified (a restart does not verify again). */
  private readonly trustedDefinitions = new WeakSet<WasmAgentDefinition>();
  private readonly kindCounts = new Map<string, number>();
  private readonly inputRandom: Random;
  private readonly embeddedInputs: boolean;
  private readonly supervision: Supervision;
  private readonly faults: FaultInjector;
  private closed = false;
  private finalChain = '';
  /** Set while a tick runs (a WASM tick awaits its barrier): the runtime takes no other call then. */
  private busy = false;
  private readonly inference: { config: ResolvedInference; manager: ModelManager; actor: InferenceActor } | null = null;
  private channel: InferenceChannel | null = null;
  private started = false;
  private gpu = false;
  /** Asks from outside waiting for their reply, by the seq of their input. */
  private readonly asks = new Map<number, WaitingAsk>();

  /**
   * Builds the system (its `setup` runs now) and, without models to load first, writes the
   * log header. Throws ConfigError for a bad config or system definition, AdmissionError
   * for a WASM agent this runtime does not trust. Users call `createRuntime`.
   * @internal
   */
  constructor(system: SystemDefinition, options: RuntimeOptions = {}, hooks?: ReplayHooks) {
    checkKeys(options ?? {}, runtimeOptionKeys, 'createRuntime options');
    const { log, logger, workers, trustedKeys, allowUnsigned, watchdogMs, spareWorkers, faults, inference, ...overrides } = options;
    this.system = system;
    this.config = resolveConfig(system.config, overrides);
    this.logger = logger ?? pino({ level: 'silent' });
    this.bus = new EventBus(this.logger);
    this.events = this.bus;
    this.embeddedInputs = hooks?.embeddedInputs ?? true;
    this.inputRandom = new Random(this.config.seed, 0, 0);
    this.kernel = new Kernel({
      tickTasksMax: this.config.tickTasksMax,
      mailboxCapacity: this.config.mailboxCapacity,
      payloadBytesMax: this.config.payloadBytesMax,
      keepEnvelopes: this.config.level === 'full',
    });
    this.kernel.onLifecycle((event) => {
      if (event.actor === 0 || !this.bus.wants('lifecycle')) return;
      const { actor: actorId, from, to, detail } = event;
      this.bus.queue({ kind: 'lifecycle', tick: this.recordTick(), actorId, actor: this.kernel.actorName(actorId), from, to, detail });
    });
    this.kernel.onDrop((drop) => {
      if (!this.bus.wants('drop')) return;
      this.bus.queue({
        kind: 'drop',
        tick: this.recordTick(),
        actor: drop.actor === 0 ? null : this.kernel.actorName(drop.actor),
        topic: this.topicNameOrId(drop.topic),
        sender: this.kernel.actorName(drop.sender),
        seq: drop.seq,
        reason: drop.reason,
      });
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
      workerChanged: ({ worker, change, agents, reason }) =>
        this.bus.queue({ kind: 'worker', tick: this.recordTick(), worker, change, agents: agents.map((id) => this.kernel.actorName(id)), reason }),
    });
    this.kernel.addExecutor(this.wasm);
    this.openRuntimeChannels();
    this.supervision = new Supervision(this.kernel, {
      spawnWorker: (start, name, spec) =>
        this.spawnActor(start, { name, args: spec.args, priority: spec.priority, mailboxCapacity: spec.mailboxCapacity }),
      decided: (decision) => this.bus.queue({ kind: 'supervision', tick: this.recordTick(), ...decision }),
    });
    this.kernel.setBoundaryHandler((tick) => this.supervision.atBoundary(tick));
    this.kernel.openControlChannel(supervisionChannel, { targetsActor: true }, (target, bytes) => this.supervision.applyVerb(target, bytes));
    this.faults = new FaultInjector(this.kernel, faults === undefined ? null : checkFaultPlan(faults), {
      crash: (target) => this.crashTarget(target),
      exhaustFuel: (target) => this.exhaustFuelTarget(target),
      killWorker: (index) => this.killWorkerTarget(index),
      taken: (fault) => this.bus.queue({ kind: 'fault', tick: this.recordTick(), ...fault }),
    });
    this.recorder = new Recorder(log === undefined ? null : typeof log === 'string' ? new FileSink(log) : log);

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
        recorded: hooks?.recordedInference,
        record: (answer) => this.recorder.addInference(answer),
        ranBatch: (batch) => this.bus.queue({ kind: 'inference', tick: this.recordTick(), ...batch }),
      });
      actor.admitted(this.kernel.admit(actor, actor.subscriptions(), config.mailboxCapacity));
      this.kernel.addExecutor(actor);
      // A requester that goes down, or restarts, loses its kept state: its next incarnation
      // starts afresh (at 'restarting' too: a request it sent before going down may have been
      // answered, to nobody, while it was down).
      this.kernel.onLifecycle(({ actor: id, to }) => {
        if (to === 'crashed' || to === 'stopped' || to === 'failed' || to === 'restarting') actor.forgetRequester(id);
      });
      this.inference = { config, manager, actor };
    } else {
      // Nothing to start: the header is complete now.
      this.started = true;
      this.recorder.writeHeader(this.header());
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

  /** The tick whose record an event belongs to: the one running, or (between ticks) the next. */
  private recordTick(): number {
    return this.kernel.recordTick;
  }

  private topicNameOrId(id: number): string {
    const topic = this.kernel.topicList()[id];
    return topic === undefined ? `#${id}` : topic.name;
  }

  /**
   * The log header this runtime writes: everything a replay needs to start the same run.
   * With an inference actor it is complete only after `start()` (it says whether a GPU
   * served the models).
   * @internal
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
    this.recorder.writeHeader(this.header());
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
    if (inference === null) throw new UsageError('not_supported', `system '${this.system.name}' has no models; give it an \`inference\` config`);
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

  // ── actors ────────────────────────────────────────────────────────────────────────

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
    actor.admitted(this.kernel.admit(actor, actor.subscriptions(), resolved.mailboxCapacity));
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
    actor.admitted(this.kernel.admit(actor, definition.manifest.capabilities.subscribe, resolved.mailboxCapacity));
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

  /** The cell of actor `id`: every actor the kernel admitted is one (the one registry). */
  private cellOf(id: number): ActorCell | undefined {
    const actor = this.kernel.actorAt(id);
    return actor instanceof ActorCell ? actor : undefined;
  }

  /**
   * The actor named `name`: its id, kind and lifecycle, a JS actor's state, and the
   * requests that change it. Throws ConfigError when there is none.
   */
  actor(name: string): ActorHandle {
    const id = this.kernel.actorId(name);
    const cell = this.cellOf(id)!;
    const requestable = (what: string, kinds: readonly ActorCell['kind'][]) => {
      this.assertOpen(what);
      if (!kinds.includes(cell.kind)) throw new UsageError('not_supported', `${what}: '${name}' is ${kindPhrase[cell.kind]}, which takes no ${what} request`);
    };
    return {
      id,
      name,
      kind: cell.kind,
      lifecycle: () => cell.lifecycleState,
      state: <State>() => {
        if (cell instanceof JsActor) return cell.currentState as State | undefined;
        if (cell.kind === 'wasm') {
          throw new UsageError('not_supported', `'${name}' is a WASM agent: its state lives in its own linear memory; observe it through what it publishes`);
        }
        throw new UsageError('not_supported', `'${name}' is ${kindPhrase[cell.kind]}: it has no state value; see runtime.snapshot()`);
      },
      suspend: () => {
        requestable('suspend', ['js', 'wasm']);
        this.kernel.control(RuntimeChannel.suspend, id);
      },
      resume: () => {
        requestable('resume', ['js', 'wasm']);
        this.kernel.control(RuntimeChannel.resume, id);
      },
      stop: () => {
        requestable('stop', ['js', 'wasm']);
        this.kernel.control(RuntimeChannel.stop, id);
      },
      crash: () => {
        requestable('crash', ['js', 'wasm', 'supervisor']);
        this.faults.crash(id);
      },
      exhaustFuel: () => {
        requestable('exhaustFuel', ['wasm']);
        this.faults.exhaustFuel(id);
      },
    };
  }

  /** Carries out requests on the runtime's channels: suspend, resume, stop. */
  private openRuntimeChannels(): void {
    const onCell = (what: string, run: (cell: JsActor<unknown, unknown> | WasmAgentActor) => void) => (target: number) => {
      const cell = this.cellOf(target);
      if (!(cell instanceof JsActor || cell instanceof WasmAgentActor)) return `actor #${target} takes no ${what} request`;
      run(cell);
      return null;
    };
    this.kernel.openControlChannel(RuntimeChannel.suspend, { targetsActor: true }, onCell('suspend', (cell) => cell.suspend()));
    this.kernel.openControlChannel(RuntimeChannel.resume, { targetsActor: true }, onCell('resume', (cell) => cell.resume()));
    this.kernel.openControlChannel(RuntimeChannel.stop, { targetsActor: true }, (target) => {
      this.kernel.stopActor(target, 'stopped by request');
      return null;
    });
  }

  private crashTarget(target: number): string | null {
    if (this.supervision.isSupervisor(target)) return this.supervision.crashSupervisor(target, 'crash');
    const cell = this.cellOf(target);
    if (!(cell instanceof JsActor || cell instanceof WasmAgentActor)) return `actor #${target} takes no crash request`;
    // An actor that is down, not yet started or restarting at this boundary cannot crash:
    // say so in the log rather than let the fault pass as applied.
    const before = cell.lifecycleState;
    cell.injectCrash('crash');
    return cell.lifecycleState === before ? `crash: '${cell.name}' is ${before}, not running` : null;
  }

  private exhaustFuelTarget(target: number): string | null {
    const cell = this.cellOf(target);
    if (cell instanceof JsActor) return `exhaustFuel: '${cell.name}' is a JS actor; only WASM agents burn fuel`;
    if (!(cell instanceof WasmAgentActor)) return `actor #${target} takes no exhaustFuel request`;
    return cell.exhaustFuel() ? null : `exhaustFuel: '${cell.name}' is ${cell.lifecycleState}, not running`;
  }

  private killWorkerTarget(index: number): string | null {
    if (this.wasm.agentCount === 0) return 'killWorker: this system has no WASM worker pool';
    const refusal = this.wasm.pool().killRefusal(index);
    if (refusal !== null) return `killWorker: ${refusal}`;
    this.wasm.pool().killDuringNextTick(index);
    return null;
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

  // ── inputs ────────────────────────────────────────────────────────────────────────

  /**
   * Queues an external input; it enters at the next tick boundary and is logged there.
   * Throws MailboxFullError when a subscriber is full (nothing enqueued: retry after a tick),
   * UnknownTopicError, PayloadTooLargeError.
   */
  inject(topic: string | number, payload: Uint8Array, options: InjectOptions = {}): void {
    this.assertOpen('inject');
    if (!(payload instanceof Uint8Array)) {
      throw new ArgumentError(`inject takes a Uint8Array payload, got ${describeValue(payload)}; use injectJson for values`);
    }
    const topicId = typeof topic === 'number' ? topic : this.kernel.topicId(topic);
    this.kernel.inject(topicId, payload, options.priority ?? 0);
  }

  /** Injects a JSON value (values JSON would mangle are refused with PayloadEncodingError). */
  injectJson(topic: string | number, value: unknown, options: InjectOptions = {}): void {
    this.inject(topic, jsonEncode(value), options);
  }

  /**
   * Replay's way in: an input exactly as logged (topic id, priority, payload; for an ask,
   * its timeoutTicks).
   * @internal
   */
  injectRecorded(topic: number, payload: Uint8Array, priority: number, timeoutTicks = 0): void {
    this.kernel.inject(topic, payload, priority, timeoutTicks);
  }

  /**
   * Asks a JS actor from outside: the payload reaches it at the next tick as a message of
   * kind `ask`, and the promise resolves with what it answers with `ctx.reply`. It rejects
   * with AskTimeoutError (naming the actor and the tick) when no reply came within
   * `timeoutTicks`, with AskFailedError (saying why) when the actor went down or never got
   * the ask, and at once with MailboxFullError when its mailbox is full (nothing was
   * enqueued). The ask is an input: the log holds it, and replay asks again.
   */
  ask(actor: string | number, payload: Uint8Array, options: AskFromOutsideOptions = {}): Promise<Reply> {
    try {
      this.assertOpen('ask');
      if (!(payload instanceof Uint8Array)) {
        throw new ArgumentError(`ask takes a Uint8Array payload, got ${describeValue(payload)}; use askJson for values`);
      }
      const id = typeof actor === 'number' ? actor : this.kernel.actorId(actor);
      const cell = this.cellOf(id);
      if (cell === undefined) throw new ArgumentError(`ask: there is no actor with id ${describeValue(actor)}`);
      if (cell.kind !== 'js') {
        throw new UsageError('not_supported', `ask: '${cell.name}' is ${kindPhrase[cell.kind]}; only JS actors reply (ctx.reply). Tell it with inject instead`);
      }
      const timeoutTicks = options.timeoutTicks ?? askTimeoutTicksDefault;
      if (!(Number.isInteger(timeoutTicks) && timeoutTicks >= 1)) {
        throw new ArgumentError(`ask: timeoutTicks must be an integer >= 1, got ${describeValue(timeoutTicks)}`);
      }
      const seq = this.kernel.inject(this.kernel.inboxTopicOf(id), payload, options.priority ?? 0, timeoutTicks);
      return new Promise((resolve, reject) => this.asks.set(seq, { actor: cell.name, timeoutTicks, resolve, reject }));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Asks with a JSON value (values JSON would mangle are refused with PayloadEncodingError). */
  askJson(actor: string | number, value: unknown, options: AskFromOutsideOptions = {}): Promise<Reply> {
    return withJsonPayload(value, (payload) => this.ask(actor, payload, options));
  }

  /** Asks from outside still waiting for their reply. */
  get asksWaiting(): number {
    return this.asks.size;
  }

  /** True when the next tick has messages to deliver, actors to start or timers due: a host runs it at once. */
  hasPendingWork(): boolean {
    return this.kernel.hasPendingWork();
  }

  /** Settles the asks a tick answered or failed. */
  private settleAsks(facts: TickFacts): void {
    for (const reply of facts.replies) {
      const ask = this.asks.get(reply.correlation);
      if (ask === undefined) continue;
      this.asks.delete(reply.correlation);
      ask.resolve(new Reply(this.kernel.actorName(reply.actor), facts.tick, reply.payload));
    }
    for (const failure of facts.askFailures) {
      const ask = this.asks.get(failure.correlation);
      if (ask === undefined) continue;
      this.asks.delete(failure.correlation);
      ask.reject(failure.timedOut ? new AskTimeoutError(ask.actor, facts.tick, ask.timeoutTicks) : new AskFailedError(ask.actor, failure.reason, failure.received));
    }
  }

  /** Rejects the asks still waiting when the runtime ends (close settles them first; this catches the rest). */
  private rejectWaitingAsks(why: string): void {
    for (const ask of this.asks.values()) ask.reject(new AskFailedError(ask.actor, why));
    this.asks.clear();
  }

  /**
   * Takes in what is due for the next tick: the fault plan's faults, then the system's
   * embedded inputs. An embedded input that meets a full mailbox is refused and logged
   * (not thrown): the generator ran for this tick and must not run again.
   */
  private takeInputs(): void {
    if (!this.embeddedInputs) return;
    this.faults.takeDue(this.kernel.tick + 1);
    if (this.system.inputs === undefined) return;
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

  // ── the verbs ─────────────────────────────────────────────────────────────────────

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
      this.takeInputs();
      const facts = await this.kernel.runTick();
      return this.recordAndTell(facts);
    } finally {
      this.busy = false;
    }
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
    return { ticks: this.kernel.tick, counters: { ...this.kernel.counters }, chainHex: this.recorder.chainHex };
  }

  /** The recorder logs the tick; then the event bus tells what it did. */
  private recordAndTell(facts: TickFacts): TickRecord {
    const { record, bytes } = this.recorder.record(facts);
    this.bus.flush({ kind: 'tick', tick: record.tick, record, bytes });
    if (this.asks.size > 0) this.settleAsks(facts);
    return record;
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
      this.recordAndTell(await this.kernel.shutdown(this.supervision.shutdownOrder()));
      this.recorder.close({ ticks, reason: 'shutdown' });
      this.closed = true;
      this.finalChain = this.recorder.chainHex;
      this.rejectWaitingAsks('the runtime closed before it replied');
      await this.wasm.close();
      await this.channel?.close();
      return this.finalChain;
    } finally {
      this.busy = false;
    }
  }

  /**
   * Stops the worker threads without logging a shutdown (replay, after a divergence).
   * @internal
   */
  async abandon(): Promise<void> {
    this.closed = true;
    this.rejectWaitingAsks('the runtime was abandoned');
    await this.wasm.close();
    await this.channel?.close();
  }

  // ── supervision ───────────────────────────────────────────────────────────────────

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
      this.kernel.control(supervisionChannel, this.kernel.actorId(name), payload);
    };
    return {
      name,
      startChild: (specOrArgs: ChildSpec | unknown) => {
        this.assertOpen('startChild');
        const { name: child, payload } = this.supervision.prepareStartChild(name, specOrArgs);
        this.kernel.control(supervisionChannel, this.kernel.actorId(name), payload);
        return child;
      },
      terminateChild: (id: string) => request('terminateChild', id),
      restartChild: (id: string) => request('restartChild', id),
      deleteChild: (id: string) => request('deleteChild', id),
      whichChildren: () => this.supervision.whichChildren(name),
      countChildren: () => this.supervision.countChildren(name),
    };
  }

  /** Kills WASM worker `index` now (fault injection); its agents crash at the next tick's barrier. */
  async killWorker(index: number): Promise<void> {
    await this.wasm.killWorker(index);
  }

  // ── views ─────────────────────────────────────────────────────────────────────────

  /** A cheap, pull-based view of the runtime. */
  snapshot(): RuntimeSnapshot {
    const actors = this.kernel.actorViews().map((view) => {
      const crash = this.cellOf(view.id)?.lastCrash ?? null;
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

  /**
   * The inference actor (benchmarks read its run timings).
   * @internal
   */
  get inferenceActor(): InferenceActor | null {
    return this.inference?.actor ?? null;
  }

  // ── the log ───────────────────────────────────────────────────────────────────────

  /**
   * Pushes buffered log records to the file. A file log is otherwise written in ~1 MiB
   * chunks; a service that must not lose more than a few ticks on a kill flushes after them.
   */
  flush(): void {
    this.recorder.flush();
  }

  /**
   * Flushes the log and resolves once every record written so far is durable (fsynced);
   * what a host's acknowledgements wait for. Resolves at once for an in-memory log or a sink
   * without `sync` (see `canSync`). Rejects with the system error (a full disk...).
   */
  sync(): Promise<void> {
    return this.recorder.sync();
  }

  /** True when the log's sink can make records durable (a file; a sink with `sync`). */
  get canSync(): boolean {
    return this.recorder.canSync;
  }

  /** The bytes of an in-memory log (when no `log` option was given). */
  logBytes(): Uint8Array {
    if (this.recorder.memory === null) throw new UsageError('not_supported', 'logBytes() is only for in-memory logs; this runtime logs to a file or sink');
    return this.recorder.memory.bytes();
  }

  /** The hash chain over every record so far (the run's digest, once closed). */
  get chainHex(): string {
    return this.recorder.chainHex;
  }

  private assertOpen(what: string): void {
    if (this.closed) throw new RuntimeClosedError(what);
    if (this.busy) throw new TickInProgressError(what);
  }
}

const kindPhrase: Record<ActorCell['kind'], string> = {
  js: 'a JS actor',
  wasm: 'a WASM agent',
  supervisor: 'a supervisor',
  inference: 'the inference actor',
};

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

/** Creates a runtime for `system`. See `RuntimeOptions`. */
export function createRuntime(system: SystemDefinition, options: RuntimeOptions = {}): Runtime {
  return new Runtime(system, options);
}
