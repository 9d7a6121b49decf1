/**
 * The model manager (ARCHITECTURE.md, "Inference"): a registry mapping model names to ONNX
 * files, versions identified by the sha256 of each file, sessions loaded into the inference
 * worker on demand and kept in an LRU cache bounded by bytes, warm-up after each load, and
 * session options pinned and passed explicitly.
 *
 * Versions are fixed when the runtime starts: every registered file is hashed then and the
 * hashes go into the log header. A file that changes during the run is refused at its next
 * load (restart the runtime to pick it up), so a run, and its replay, use one version of
 * each model. A missing or corrupt file is not a crash: requests for it get an error
 * response naming the model and the problem.
 *
 * Which model is loaded or evicted when is decided from logical state only (the order of
 * requests), so the cache behaves the same in a replay.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../errors.ts';
import { checkKeys } from '../options.ts';
import type { InferenceChannel } from './channel.ts';
import { InferOp, type LoadCommand, type ModelMeta, type PinnedSessionOptions, type ProviderName } from './protocol.ts';
import { cacheBytesDefault } from '../limits.ts';

/** A stateful model's recurrent state: fed from the last call's output, per requester. */
export interface ModelStateSpec {
  /** The input the state is fed to. */
  input: string;
  /** The output the next state comes from. */
  output: string;
  /** The state's dims for one requester (batch 1), e.g. [2, 1, 128]; it starts as zeros. */
  dims: readonly number[];
  /** The axis the requesters' states are stacked on when batched (default 0). */
  batchAxis?: number;
}

export interface ModelSpec {
  /** The .onnx file; relative paths are resolved against the registry file or the process cwd. */
  file: string;
  /** Batch a tick's requests along dim 0 when the model allows it (default true). */
  batch?: boolean;
  /** Stateful models: the state the inference actor keeps for each requester. */
  state?: readonly ModelStateSpec[];
  /** Run once on zeros after each load (default true). */
  warmup?: boolean;
  /** Overrides of the pinned session options (see `sessionOptionsDefault`). */
  sessionOptions?: Partial<PinnedSessionOptions>;
}

export interface InferenceConfig {
  /** Model name → spec (or just the file). Names: letters, digits, '.', '_', '-'. */
  models: Readonly<Record<string, ModelSpec | string>>;
  /** 'cpu' (default) or 'webgpu' (falls back to cpu, and says so, when it cannot load or run). */
  provider?: ProviderName;
  /** Bytes of model files kept loaded at once (default 256 MiB); least recently used go first. */
  cacheBytes?: number;
  /** Models loaded when the runtime starts (default none: each loads at its first request). */
  preload?: readonly string[] | 'all';
  /**
   * What the log keeps of each CPU answer: its digest (default; replay re-runs the model and
   * checks it) or the whole answer (replay substitutes it). GPU answers are always kept whole.
   */
  logOutputs?: 'digest' | 'full';
  /** The inference actor's name (default 'inference') and priority (default 0). */
  actorName?: string;
  priority?: number;
  mailboxCapacity?: number;
}

/** Pinned for determinism: NOTES-DEPS measured that the optimisation level changes the bits. */
export const sessionOptionsDefault: Readonly<PinnedSessionOptions> = Object.freeze({
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
});
const modelNamePattern = /^[A-Za-z0-9._-]{1,128}$/;
const specKeys = new Set(['file', 'batch', 'state', 'warmup', 'sessionOptions']);
const configKeys = new Set(['models', 'provider', 'cacheBytes', 'preload', 'logOutputs', 'actorName', 'priority', 'mailboxCapacity']);

export interface ResolvedModel {
  name: string;
  path: string;
  batch: boolean;
  state: Required<ModelStateSpec>[];
  warmup: boolean;
  sessionOptions: PinnedSessionOptions;
}

export interface ResolvedInference {
  models: ResolvedModel[];
  provider: ProviderName;
  cacheBytes: number;
  preload: string[];
  logOutputs: 'digest' | 'full';
  actorName: string;
  priority: number;
  mailboxCapacity: number | undefined;
}

function fail(message: string): never {
  throw new ConfigError(`inference config: ${message}`);
}

/**
 * Checks an inference config and resolves its paths against `baseDir`. Throws ConfigError
 * naming the field and what to write instead.
 */
export function resolveInferenceConfig(config: InferenceConfig, baseDir = process.cwd()): ResolvedInference {
  if (config === null || typeof config !== 'object') fail('must be an object { models: { name: { file } } }');
  checkKeys(config, [...configKeys], 'inference config', { noun: 'field' });
  if (config.models === null || typeof config.models !== 'object') fail("'models' must map model names to { file } or to a file path");
  const models: ResolvedModel[] = [];
  for (const name of Object.keys(config.models).sort()) {
    if (!modelNamePattern.test(name)) fail(`model name '${name}' must be 1..128 letters, digits, '.', '_' or '-' (it becomes the topic infer/${name})`);
    const raw = config.models[name]!;
    const spec: ModelSpec = typeof raw === 'string' ? { file: raw } : raw;
    if (spec === null || typeof spec !== 'object') fail(`model '${name}' must be { file } or a file path`);
    checkKeys(spec, [...specKeys], `inference config: model '${name}'`, { noun: 'field' });
    if (typeof spec.file !== 'string' || spec.file.length === 0) fail(`model '${name}': 'file' must be the path of an .onnx file`);
    const state = (spec.state ?? []).map((entry, index) => {
      const where = `model '${name}' state[${index}]`;
      if (typeof entry?.input !== 'string' || typeof entry.output !== 'string') fail(`${where} needs 'input' and 'output' names`);
      checkKeys(entry, ['input', 'output', 'dims', 'batchAxis'], `inference config: ${where}`, { noun: 'field' });
      if (!Array.isArray(entry.dims) || entry.dims.length === 0 || !entry.dims.every((d) => Number.isInteger(d) && d >= 1)) {
        fail(`${where}: 'dims' must be the state's dims for one requester, e.g. [2, 1, 128]`);
      }
      const batchAxis = entry.batchAxis ?? 0;
      if (!(Number.isInteger(batchAxis) && batchAxis >= 0 && batchAxis < entry.dims.length) || entry.dims[batchAxis] !== 1) {
        fail(`${where}: 'batchAxis' must name an axis of 'dims' whose size is 1 (one requester), got ${batchAxis}`);
      }
      return { input: entry.input, output: entry.output, dims: [...entry.dims], batchAxis };
    });
    if (spec.sessionOptions !== undefined) checkKeys(spec.sessionOptions, Object.keys(sessionOptionsDefault), `inference config: model '${name}' sessionOptions`);
    const sessionOptions = { ...sessionOptionsDefault, ...(spec.sessionOptions ?? {}) };
    if (!['disabled', 'basic', 'extended', 'all'].includes(sessionOptions.graphOptimizationLevel)) {
      fail(`model '${name}': graphOptimizationLevel must be disabled, basic, extended or all`);
    }
    if (!['sequential', 'parallel'].includes(sessionOptions.executionMode)) fail(`model '${name}': executionMode must be sequential or parallel`);
    for (const key of ['intraOpNumThreads', 'interOpNumThreads'] as const) {
      if (!(Number.isInteger(sessionOptions[key]) && sessionOptions[key] >= 0 && sessionOptions[key] <= 256)) fail(`model '${name}': ${key} must be an integer in 0..256`);
    }
    models.push({
      name,
      path: isAbsolute(spec.file) ? spec.file : resolve(baseDir, spec.file),
      batch: spec.batch ?? true,
      state,
      warmup: spec.warmup ?? true,
      sessionOptions,
    });
  }
  if (models.length === 0) fail("'models' is empty; register at least one model");
  const provider = config.provider ?? 'cpu';
  if (provider !== 'cpu' && provider !== 'webgpu') fail(`provider must be 'cpu' or 'webgpu', got ${JSON.stringify(provider)}`);
  const cacheBytes = config.cacheBytes ?? cacheBytesDefault;
  if (!(Number.isInteger(cacheBytes) && cacheBytes >= 1)) fail(`cacheBytes must be a positive integer, got ${cacheBytes}`);
  const names = models.map((model) => model.name);
  const preload = config.preload === 'all' ? names : [...(config.preload ?? [])];
  for (const name of preload) if (!names.includes(name)) fail(`preload names '${name}', which is not registered; registered: ${names.join(', ')}`);
  const logOutputs = config.logOutputs ?? 'digest';
  if (logOutputs !== 'digest' && logOutputs !== 'full') fail(`logOutputs must be 'digest' or 'full'`);
  const priority = config.priority ?? 0;
  if (!(Number.isInteger(priority) && priority >= 0 && priority <= 255)) fail(`priority must be an integer in 0..255`);
  return {
    models,
    provider,
    cacheBytes,
    preload,
    logOutputs,
    actorName: config.actorName ?? 'inference',
    priority,
    mailboxCapacity: config.mailboxCapacity,
  };
}

/** Reads a registry file (JSON of an InferenceConfig); model files resolve against its folder. */
export function loadModelRegistry(path: string): ResolvedInference {
  let config: InferenceConfig;
  try {
    config = JSON.parse(readFileSync(path, 'utf8')) as InferenceConfig;
  } catch (error) {
    throw new ConfigError(`cannot read the model registry ${path}: ${(error as Error).message}`);
  }
  return resolveInferenceConfig(config, dirname(resolve(path)));
}

/** A registered model's version as the log header records it. */
export interface ModelVersion {
  name: string;
  /** sha256 (hex) of the file when the runtime started; empty when it could not be read. */
  sha256: string;
  bytes: number;
}

export interface ModelEntry {
  readonly model: ResolvedModel;
  readonly slot: number;
  readonly version: ModelVersion;
  /** Why the file cannot be read (set at start), or why ORT refused it (set at the load). */
  unavailable: string | null;
  loaded: boolean;
  meta: ModelMeta | null;
  provider: ProviderName | null;
  lastUse: number;
  /** A GPU fallback at the last load, not yet reported in the log. */
  fallback: string | null;
}

export interface ModelCacheStats {
  /** Requests' models found loaded / that needed a load. */
  hits: number;
  misses: number;
  loads: number;
  evictions: number;
  /** Wall-clock load times in microseconds, as the worker measured them (benchmarks only). */
  loadMicros: number[];
  loadedBytes: number;
}

export type Ensured = { ok: true; entry: ModelEntry; fallback?: string } | { ok: false; entry: ModelEntry | null; error: string };

export class ModelManager {
  private readonly entries = new Map<string, ModelEntry>();
  private useClock = 0;
  /** Notes of GPU fallbacks at load, for the log (taken by the inference actor). */
  readonly stats: ModelCacheStats = { hits: 0, misses: 0, loads: 0, evictions: 0, loadMicros: [], loadedBytes: 0 };

  constructor(
    readonly config: ResolvedInference,
    private readonly channel: () => InferenceChannel,
  ) {
    config.models.forEach((model, slot) => {
      let version: ModelVersion;
      let unavailable: string | null = null;
      try {
        const bytes = readFileSync(model.path);
        version = { name: model.name, sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        unavailable =
          code === 'ENOENT'
            ? `model '${model.name}': its file ${model.path} does not exist; put the .onnx file there (or fix the registry) and restart the runtime`
            : `model '${model.name}': cannot read ${model.path}: ${(error as Error).message}`;
        version = { name: model.name, sha256: '', bytes: 0 };
      }
      if (unavailable === null && version.bytes > config.cacheBytes) {
        throw new ConfigError(
          `inference config: model '${model.name}' is ${version.bytes} bytes, more than cacheBytes (${config.cacheBytes}); raise cacheBytes`,
        );
      }
      this.entries.set(model.name, { model, slot, version, unavailable, loaded: false, meta: null, provider: null, lastUse: 0, fallback: null });
    });
  }

  /** Every registered model's version, sorted by name: what the log header records. */
  versions(): ModelVersion[] {
    return [...this.entries.values()].map((entry) => entry.version);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  entry(name: string): ModelEntry | undefined {
    return this.entries.get(name);
  }

  /** Loaded models, least recently used first. */
  loaded(): string[] {
    return [...this.entries.values()].filter((entry) => entry.loaded).sort((a, b) => a.lastUse - b.lastUse).map((entry) => entry.model.name);
  }

  /** Makes `name` loaded (evicting least recently used models to fit), counting a hit or a miss. */
  async ensure(name: string): Promise<Ensured> {
    const entry = this.entries.get(name);
    if (entry === undefined) return { ok: false, entry: null, error: `no model named '${name}'; registered: ${this.names().join(', ')}` };
    entry.lastUse = ++this.useClock;
    if (entry.loaded) {
      this.stats.hits++;
      return { ok: true, entry };
    }
    this.stats.misses++;
    return this.load(name);
  }

  /** The entry of a loaded model, counted as a cache hit and used now; null when it is not loaded. */
  hit(name: string): ModelEntry | null {
    const entry = this.entries.get(name);
    if (entry === undefined || !entry.loaded) return null;
    entry.lastUse = ++this.useClock;
    this.stats.hits++;
    return entry;
  }

  /** Loads (or reloads) a model now. */
  async load(name: string): Promise<Ensured> {
    const entry = this.entries.get(name);
    if (entry === undefined) return { ok: false, entry: null, error: `no model named '${name}'; registered: ${this.names().join(', ')}` };
    if (entry.unavailable !== null) return { ok: false, entry, error: entry.unavailable };
    if (entry.loaded) return { ok: true, entry };
    for (const victim of this.loaded()) {
      if (this.stats.loadedBytes + entry.version.bytes <= this.config.cacheBytes) break;
      await this.unload(victim);
      this.stats.evictions++;
    }
    const command: LoadCommand = {
      model: name,
      path: entry.model.path,
      sha256: entry.version.sha256,
      provider: this.config.provider,
      sessionOptions: entry.model.sessionOptions,
      warmup: entry.model.warmup,
    };
    const reply = await this.channel().call(InferOp.load, entry.slot, command);
    if (!reply.head.ok) {
      const error = reply.head.error ?? 'unknown error';
      // A file that changed is refused at every load; ORT refusing these bytes is final too.
      entry.unavailable = `model '${name}' (${entry.model.path}): ${error}`;
      return { ok: false, entry, error: entry.unavailable };
    }
    entry.loaded = true;
    entry.meta = reply.head.meta ?? null;
    entry.provider = reply.head.provider ?? 'cpu';
    entry.lastUse = ++this.useClock;
    this.stats.loads++;
    this.stats.loadedBytes += entry.version.bytes;
    if (reply.head.micros !== undefined) this.stats.loadMicros.push(reply.head.micros);
    if (reply.head.fallback === undefined) return { ok: true, entry };
    entry.fallback = `model '${name}': ${reply.head.fallback}`;
    return { ok: true, entry, fallback: entry.fallback };
  }

  /** The GPU fallback of the model's last load, once: the inference actor puts it in the log. */
  takeFallback(entry: ModelEntry): string | null {
    const fallback = entry.fallback;
    entry.fallback = null;
    return fallback;
  }

  /** Releases a model's session (its metadata is kept); a later request loads it again. */
  async unload(name: string): Promise<void> {
    const entry = this.entries.get(name);
    if (entry === undefined || !entry.loaded) return;
    entry.loaded = false;
    this.stats.loadedBytes -= entry.version.bytes;
    await this.channel().call(InferOp.unload, entry.slot, undefined);
  }

  /** The worker that held the sessions is gone: nothing is loaded any more (metadata is kept). */
  forgetSessions(): void {
    for (const entry of this.entries.values()) entry.loaded = false;
    this.stats.loadedBytes = 0;
  }

  /** Hit rate of the cache over all requests' models so far (NaN before any). */
  get hitRate(): number {
    return this.stats.hits / (this.stats.hits + this.stats.misses);
  }
}
