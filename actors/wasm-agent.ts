/**
 * WASM agents as actors. `loadWasmAgent` admits a signed plugin (docs/abi.md), meters it
 * and compiles it once; `WasmAgentActor` adapts one instance of it to the kernel; and
 * `WasmHost` is the kernel's tick participant that drives the worker pool and applies what
 * the agents did at the barrier, in (priority desc, actor id) order.
 *
 * Timing of a WASM agent's life, all on tick boundaries:
 *   tick t   init runs on its worker; at the barrier it is running (or crashed)
 *   tick t+1 its messages and its step run on the worker; at the barrier its publishes are
 *            applied with the same mailbox rules as a JS actor's, then it is next scheduled
 */
import { lstatSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Envelope } from '../src/envelope.ts';
import { ConfigError } from '../src/errors.ts';
import { ActorStatus, type Executor, type Kernel } from '../src/kernel.ts';
import { admissionPolicyDefaults, admitPlugin, type AdmissionPolicy } from '../src/wasm/admission.ts';
import { type PluginManifest } from '../src/wasm/manifest.ts';
import { callDepthMaxDefault, workerRingBytesDefault } from '../src/limits.ts';
import { MeteredModuleCache } from '../src/wasm/metering.ts';
import { MailboxSlabs } from '../src/slabs.ts';
import { WasmPool, type AgentTickOutput, type WorkerFault } from '../src/wasm/pool.ts';
import { crashKindName, type CompiledModule } from '../src/wasm/protocol.ts';
import { checkKeys } from '../src/options.ts';
import { loadPluginFiles, verifyPluginDigest, type PluginSignature } from '../src/wasm/signing.ts';
import { ActorCell } from './cell.ts';
import { inferTopicName, inferTopicOf, inferTopicPrefix } from '../src/wasm/abi.ts';

/**
 * A checked, metered and compiled agent module: what `spawn` takes for a WASM agent. Whether
 * it may run is the runtime's decision, not the loader's: a runtime verifies its signature
 * against its own `trustedKeys` when the agent is spawned (ARCHITECTURE.md "WASM agents").
 */
export interface WasmAgentDefinition {
  readonly kind: 'wasm';
  readonly name: string;
  readonly manifest: PluginManifest;
  /** The metered module, compiled (a `WebAssembly.Module`). */
  readonly module: CompiledModule;
  /** sha256 of the module as signed (before metering). */
  readonly sha256: string;
  /** The key its signature names (not yet verified: a runtime does that); null when unsigned. */
  readonly keyId: string | null;
  /** Its detached signature (`<base>.sig`), null when unsigned. */
  readonly signature: PluginSignature | null;
  readonly callDepthMax: number;
  /** The module's declared memory maximum, in 64 KiB pages. */
  readonly memoryPagesMax: number;
}

/**
 * How `loadWasmAgent` checks and meters a module. Trust is not among them: trusted keys and
 * `allowUnsigned` are set once, on the runtime that runs the agent (`createRuntime`,
 * `replay`, `lockstep run --trust`).
 */
export interface LoadWasmAgentOptions {
  /** Largest module accepted, in bytes (default 8 MiB). */
  moduleBytesMax?: number;
  /** Largest declared memory maximum accepted, in 64 KiB pages (default 256 = 16 MiB). */
  memoryPagesMax?: number;
  /** Where metered modules are cached (in memory by default; a folder to persist them). */
  cache?: MeteredModuleCache;
  /** Deepest call chain before the agent traps (default 1,000 frames). */
  callDepthMax?: number;
}

const loadOptionKeys = ['moduleBytesMax', 'memoryPagesMax', 'cache', 'callDepthMax'] as const;
const trustMoved =
  'trust is set once, on the runtime that runs the agent: createRuntime(system, { trustedKeys: [publicKeyPem] }) ' +
  '(allowUnsigned: true for development), or lockstep run --trust <key.pub.pem>';
const loadOptionAdvice = { trustedKeys: trustMoved, trustedKeysPem: trustMoved, allowUnsigned: trustMoved };

/**
 * Metered modules are cached on disk across runs: metering needs binaryen, whose 15 MB
 * module takes ~0.7 s to import under node and ~12 s under tsx's loader. The key covers the
 * module's hash, the call-depth limit and the metering format, so a hit is always valid.
 */
const sharedCache = new MeteredModuleCache({ directory: privateCacheDirectory() });

/**
 * `$TMPDIR/lockstep-metered-<uid>`, created 0700. A folder someone else owns or can write
 * is not used (memory only): a planted file there would run in place of the signed module.
 */
function privateCacheDirectory(): string | undefined {
  const uid = process.getuid?.() ?? 0;
  const path = join(tmpdir(), `lockstep-metered-${uid}`);
  try {
    mkdirSync(path, { recursive: true, mode: 0o700 });
    const stat = lstatSync(path);
    if (!stat.isDirectory() || stat.uid !== uid || (stat.mode & 0o077) !== 0) return undefined;
    return path;
  } catch {
    return undefined;
  }
}

/**
 * Checks a plugin from raw parts (every structural rule of admission, docs/abi.md), meters
 * and compiles it. The signature is kept for the runtime to verify. Throws AdmissionError
 * (a LockstepError naming the module and the rule) before anything of it runs, and
 * ConfigError for an unknown option.
 */
export async function wasmAgentFromParts(
  parts: { name: string; bytes: Uint8Array; manifest: PluginManifest; signature: PluginSignature | null },
  options: LoadWasmAgentOptions = {},
): Promise<WasmAgentDefinition> {
  checkKeys(options, loadOptionKeys, `loading WASM agent '${parts.name}'`, { advice: loadOptionAdvice });
  const policy: AdmissionPolicy = {
    ...admissionPolicyDefaults,
    moduleBytesMax: options.moduleBytesMax ?? admissionPolicyDefaults.moduleBytesMax,
    memoryPagesMax: options.memoryPagesMax ?? admissionPolicyDefaults.memoryPagesMax,
    // The signature step is the runtime's (assertTrusted); every structural step runs here.
    allowUnsigned: true,
  };
  const admitted = admitPlugin(parts, policy);
  const depth = options.callDepthMax ?? callDepthMaxDefault;
  const metered = await (options.cache ?? sharedCache).get(admitted.bytes, { callDepthMax: depth });
  const module = await WebAssembly.compile(metered.bytes);
  const definition: WasmAgentDefinition = Object.freeze({
    kind: 'wasm' as const,
    name: admitted.manifest.name,
    manifest: admitted.manifest,
    module,
    sha256: admitted.sha256,
    keyId: parts.signature?.keyId ?? null,
    signature: parts.signature === null ? null : Object.freeze({ ...parts.signature }),
    callDepthMax: depth,
    memoryPagesMax: admitted.memoryPagesMax,
  });
  loadedDefinitions.set(definition, parts.name);
  return definition;
}

/**
 * Definitions this module made after admission and metering, with the file name they were
 * loaded from. A look-alike object (any module, any signature) is refused at spawn: what runs
 * is always what was checked.
 */
const loadedDefinitions = new WeakMap<WasmAgentDefinition, string>();

/**
 * Loads `<path>.wasm` with its `<base>.manifest.json` and `<base>.sig`, checks it against
 * every structural rule of admission, meters and compiles it. A runtime checks its
 * signature against its trusted keys when it spawns it.
 */
export async function loadWasmAgent(path: string | URL, options: LoadWasmAgentOptions = {}): Promise<WasmAgentDefinition> {
  const files = loadPluginFiles(typeof path === 'string' ? path : fileURLToPath(path));
  return wasmAgentFromParts(files, options);
}

/** Whom a runtime trusts to run WASM agents. */
export interface AgentTrust {
  /** Ed25519 public keys (PEM) whose signatures are accepted. */
  readonly trustedKeysPem: readonly string[];
  /** Development only: run agents without checking their signatures at all. */
  readonly allowUnsigned: boolean;
}

/**
 * Takes an agent definition and a runtime's trust. Returns nothing when the definition was
 * made by loadWasmAgent/wasmAgentFromParts and its signature verifies against a trusted key
 * (or the runtime allows unsigned agents). Throws ConfigError for a look-alike definition and
 * AdmissionError `admission_unsigned`, `admission_untrusted` or `admission_signature`
 * otherwise.
 */
export function assertTrusted(definition: WasmAgentDefinition, trust: AgentTrust): void {
  const file = loadedDefinitions.get(definition);
  if (file === undefined) {
    throw new ConfigError(`agent definition '${String(definition?.name)}' was not made by loadWasmAgent/wasmAgentFromParts; load the module through them`);
  }
  if (trust.allowUnsigned) return;
  verifyPluginDigest(definition.sha256, definition.manifest, definition.signature, trust.trustedKeysPem, `'${file}'`);
}

/** Runs one WASM agent for the kernel: its work goes to the WASM host, its executor. */
export class WasmAgentActor extends ActorCell {
  readonly kind = 'wasm' as const;
  readonly hasStep = true;
  /** Its mail is read from shared mailbox slabs: the kernel places what is published to its topics there. */
  readonly readsSharedMailbox = true;
  /** Its publishes refused at the last barrier that applied its output: what `backpressure()` returns at its next activation. */
  private refused = 0;
  /** Messages handed to the worker this tick, to account for them if the agent crashes. */
  private inFlight: Envelope[] = [];

  constructor(
    readonly definition: WasmAgentDefinition,
    name: string,
    priority: number,
    kernel: Kernel,
    private readonly host: WasmHost,
  ) {
    super(name, priority, kernel);
  }

  /** Called once the kernel has given the agent its id: loads it on its worker. */
  override admitted(id: number): void {
    const { manifest, sha256 } = this.definition;
    super.admitted(id, `${this.name} (wasm ${manifest.name}@${manifest.version} sha256 ${sha256})`);
    this.host.load(this);
  }

  start(): void {
    this.lifecycle.send('INIT');
    const pool = this.host.pool();
    pool.agentTick(this.self, this.kernel.seqOf(this.self), this.refused);
    pool.init(this.self);
  }

  activate(batch: readonly Envelope[]): number {
    const pool = this.host.pool();
    this.inFlight = batch.slice();
    this.host.activated(this.self);
    pool.agentTick(this.self, this.kernel.seqOf(this.self), this.refused);
    for (const envelope of batch) pool.deliver(this.self, envelope);
    pool.step(this.self, this.kernel.tick);
    // Handed to the worker; a crash reported at the barrier drops what it did not reach.
    return batch.length;
  }

  stop(reason: string): void {
    if (!this.lifecycle.can('STOP')) return;
    // Not started yet (created, or restarted and waiting for init): nothing to shut down.
    const notStarted = this.lifecycle.state === 'created' || this.lifecycle.state === 'restarting';
    this.lifecycle.send('STOP', reason);
    if (notStarted) {
      this.host.forget(this.self);
      return;
    }
    this.host.pool().shutdown(this.self);
  }

  /**
   * Starts the agent again after it crashed or stopped: a fresh instance of the same module
   * (new memory, random stream of the next incarnation) is loaded on its worker. The caller
   * readmits it to the kernel, whose step 2 sends INIT after the LOAD.
   */
  restart(detail: string): void {
    this.lifecycle.send('RESTART', detail);
    this.incarnation++;
    this.inFlight = [];
    this.host.load(this);
  }

  /** Stops the agent without running agent_shutdown (a supervisor's brutal_kill). */
  kill(reason: string): void {
    if (!this.lifecycle.can('STOP')) return;
    this.lifecycle.send('STOP', reason);
    if (this.lifecycle.state === 'stopping') this.lifecycle.send('STOPPED');
    this.host.forget(this.self);
    this.kernel.actorWentDown(this.self);
  }

  /** Crashes the agent now, from the host (fault injection). */
  injectCrash(reason: string): void {
    if (!this.lifecycle.can('CRASH')) return;
    this.crash(`fault injected: ${reason}`, 0);
  }

  /**
   * Empties the agent's fuel for the tick under way (fault injection): its next call into
   * the module traps with "fuel exhausted", exactly as a runaway loop would.
   */
  exhaustFuel(): boolean {
    if (this.status !== ActorStatus.running) return false;
    this.host.pool().exhaustFuel(this.self);
    return true;
  }

  /** Applies what the agent did this tick (or the fault that took its worker down). */
  apply(output: AgentTickOutput | undefined, fault: WorkerFault | undefined, logger: Logger): void {
    const kernel = this.kernel;
    if (fault !== undefined) {
      this.crash(`${fault.reason}${fault.nondeterministic ? ' (a nondeterministic fault: replay cannot reproduce it)' : ''}`, 0);
      return;
    }
    if (output !== undefined) {
      for (const line of output.logs) logger.info({ actor: this.name, level: line.level }, line.text);
      for (const refusal of output.refused) {
        const { topic, reason } = describeRefusal(kernel, this.name, refusal.topic, refusal.name);
        kernel.recordRefusal(this.self, topic, reason);
      }
      let refused = 0;
      for (const publish of output.publishes) {
        const { slab, at, topic, priority, length, seq, hashHi, hashLo } = publish;
        if (!kernel.publishPlaced(this.self, topic, priority, slab, at, length, seq, hashHi, hashLo).ok) refused++;
      }
      this.refused = refused;
      if (output.crash !== null) {
        this.crash(`${crashKindName[output.crash.kind]}: ${output.crash.reason}`, output.crash.consumed);
        return;
      }
    }
    this.inFlight = [];
    const state = this.lifecycle.state;
    if (state === 'initializing') this.lifecycle.send('READY');
    else if (state === 'stopping') {
      this.lifecycle.send('STOPPED');
      this.host.forget(this.self);
      kernel.actorWentDown(this.self);
    }
    if (output?.stopRequested === true && this.lifecycle.state === 'running') kernel.stopActor(this.self, 'the agent returned stop (1)');
  }

  /** Crashes the agent when applying its output threw (a lockstep bug or a hostile output). */
  failApply(error: unknown): void {
    if (this.lifecycleState === 'crashed' || this.lifecycleState === 'stopped' || this.lifecycleState === 'failed') return;
    this.crash(`host error applying the agent's output: ${(error as Error).message}`, 0);
  }

  private crash(message: string, consumed: number): void {
    this.lastCrash = { tick: this.kernel.tick, message };
    const unprocessed = this.inFlight.slice(consumed);
    this.inFlight = [];
    if (unprocessed.length > 0) this.kernel.dropUnprocessed(this.self, unprocessed, 'recipient crashed before processing it');
    if (this.lifecycle.can('CRASH')) this.lifecycle.send('CRASH', message);
    this.host.forget(this.self);
    this.kernel.actorWentDown(this.self);
  }
}

export interface WasmHostOptions {
  /** Worker threads for the pool; 0 runs every agent on the orchestrator's thread. */
  workers: number;
  seed: number;
  payloadBytesMax: number;
  watchdogMs?: number;
  spareWorkers?: number;
  ringCapacityBytes?: number;
  logger: Logger;
  /** Told when a worker dies and when one takes its place (for the event bus; it decides nothing). */
  workerChanged?(change: { worker: number; change: 'died' | 'replaced'; agents: number[]; reason: string }): void;
}

/**
 * Ring size for a payload limit: the default, or the power of two that holds two of the
 * largest records (so a payload the runtime accepts always fits a worker's ring).
 */
function ringBytesFor(payloadBytesMax: number): number {
  const recordBytes = payloadBytesMax + 64;
  let bytes = workerRingBytesDefault;
  while (bytes < recordBytes * 2) bytes *= 2;
  return bytes;
}

/**
 * Drives the worker pool for one runtime and applies results at each tick's barrier. With
 * `workers: 0` the pool runs every agent on the orchestrator's thread (src/wasm/pool.ts);
 * nothing here depends on which.
 */
export class WasmHost implements Executor {
  private pool_: WasmPool | null = null;
  private readonly agents = new Map<number, WasmAgentActor>();
  /** Agents loaded on a worker. */
  private readonly loaded = new Set<number>();
  /** Agents handed messages or a step this tick: each hears back at the barrier. */
  private activatedThisTick: number[] = [];

  /** The shared mailboxes of this runtime's agents (src/slabs.ts). */
  private readonly slabs = new MailboxSlabs();

  constructor(
    private readonly kernel: Kernel,
    private readonly options: WasmHostOptions,
  ) {
    kernel.useSharedMailboxes(this.slabs);
  }

  /** The pool, started on first use (a system without WASM agents starts no threads). */
  pool(): WasmPool {
    this.pool_ ??= new WasmPool(
      {
        workers: this.options.workers,
        watchdogMs: this.options.watchdogMs,
        spareWorkers: this.options.spareWorkers,
        ringCapacityBytes: this.options.ringCapacityBytes ?? ringBytesFor(this.options.payloadBytesMax),
      },
      this.slabs,
    );
    return this.pool_;
  }

  get agentCount(): number {
    return this.agents.size;
  }

  /** True with `workers: 0`: agents (and the inference sessions) run on the orchestrator's thread. */
  get inThread(): boolean {
    return this.options.workers === 0;
  }

  load(agent: WasmAgentActor): void {
    const { definition } = agent;
    const kernel = this.kernel;
    const { capabilities } = definition.manifest;
    // A declared model grants exactly its request topic (parseManifest keeps `infer` and
    // `infer/...` out of capabilities.publish, so this is the only way to get them).
    const publishNames = [...capabilities.publish, ...capabilities.models.map(inferTopicOf)];
    const publishTopics = publishNames.map((name) => kernel.declareTopic(name));
    const names = [...new Set([...publishNames, ...capabilities.subscribe])].sort();
    this.agents.set(agent.self, agent);
    this.loaded.add(agent.self);
    this.pool().load({
      agentId: agent.self,
      name: agent.name,
      module: definition.module,
      fuelPerStep: definition.manifest.limits.fuelPerStep,
      callDepthMax: definition.callDepthMax,
      seed: this.options.seed,
      incarnation: agent.incarnation,
      payloadBytesMax: this.options.payloadBytesMax,
      memoryPagesMax: definition.memoryPagesMax,
      abi: definition.manifest.abi,
      publishTopics,
      topicIds: names.map((name) => [name, kernel.declareTopic(name)]),
    });
  }

  activated(agentId: number): void {
    this.activatedThisTick.push(agentId);
  }

  forget(agentId: number): void {
    if (!this.loaded.delete(agentId)) return;
    this.pool_?.unload(agentId);
  }

  hasWork(): boolean {
    return this.pool_ !== null && this.pool_.hasWork();
  }

  async settle(tick: number): Promise<void> {
    const { outputs, faults } = await this.pool().barrier(tick);
    const faultOf = new Map<number, WorkerFault>();
    for (const fault of faults) {
      this.options.logger.warn({ worker: fault.worker, agents: fault.agents }, fault.reason);
      for (const agent of fault.agents) faultOf.set(agent, fault);
      this.options.workerChanged?.({ worker: fault.worker, change: 'died', agents: fault.agents, reason: fault.reason });
      // The pool has put a worker in its place (a started spare, or a new thread) already.
      this.options.workerChanged?.({ worker: fault.worker, change: 'replaced', agents: [], reason: `a new worker took the place of worker ${fault.worker}` });
    }
    const touched = new Set<number>([...outputs.keys(), ...faultOf.keys(), ...this.activatedThisTick]);
    this.activatedThisTick = [];
    // Agents whose state moves at the barrier even when they said nothing.
    for (const [id, agent] of this.agents) {
      const state = agent.lifecycleState;
      if (state === 'initializing' || state === 'stopping') touched.add(id);
    }
    for (const id of this.kernel.schedulingOrder(touched)) {
      const agent = this.agents.get(id);
      if (agent === undefined) continue;
      try {
        agent.apply(outputs.get(id), faultOf.get(id), this.options.logger);
      } catch (error) {
        // Whatever an agent's output provokes, it takes down that agent, never the runtime.
        agent.failApply(error);
      }
    }
  }

  /**
   * Kills a worker now (fault injection, tests); its agents crash at the next barrier.
   * Throws ConfigError for a worker that does not exist (any, with workers: 0).
   */
  async killWorker(index: number): Promise<void> {
    await this.pool().kill(index);
  }

  async close(): Promise<void> {
    await this.pool_?.close();
  }
}

/**
 * The drop record for a publish the host refused: the topic to log it under and why.
 * `name` is set for a refused inference lookup (the id is then no topic's; logged under
 * the topic of that name when the system declares one). A refused inference topic names
 * the model the agent may not call; anything else names the topic.
 */
function describeRefusal(kernel: Kernel, agent: string, topic: number, name: string | null): { topic: number; reason: string } {
  const topicName = name ?? topicNameOf(kernel, topic);
  const logged = name === null ? topic : (declaredTopicId(kernel, name) ?? topic);
  if (topicName === inferTopicName) {
    return {
      topic: logged,
      reason: `refused: agent '${agent}' may not publish to '${inferTopicName}' (an agent calls a model through '${inferTopicPrefix}<model>', for each model in its manifest's capabilities.models)`,
    };
  }
  if (topicName?.startsWith(inferTopicPrefix) === true) {
    const model = topicName.slice(inferTopicPrefix.length);
    return { topic: logged, reason: `refused: agent '${agent}' may not call model '${model}' (not in its manifest's capabilities.models)` };
  }
  return { topic: logged, reason: `refused: agent '${agent}' may not publish to ${describeTopic(kernel, topic)} (not in its manifest's capabilities.publish)` };
}

function topicNameOf(kernel: Kernel, id: number): string | null {
  try {
    return kernel.topicName(id);
  } catch {
    return null;
  }
}

function declaredTopicId(kernel: Kernel, name: string): number | null {
  try {
    return kernel.topicId(name);
  } catch {
    return null;
  }
}

/** A topic id an agent handed us, named if it exists: agents can pass any number. */
function describeTopic(kernel: Kernel, id: number): string {
  try {
    return `'${kernel.topicName(id)}'`;
  } catch {
    return `topic #${id} (no such topic)`;
  }
}

