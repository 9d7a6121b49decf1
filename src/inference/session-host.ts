/**
 * The inference session host: owns the ONNX Runtime sessions of one runtime and serves
 * load, run and unload command records (protocol.ts) one at a time, in order, answering
 * each with a reply record. It decides nothing: which model to load, what to batch and
 * what to answer is decided on the orchestrator from logical state; the host only
 * computes. A GPU (WebGPU) session that fails to load or run is replaced by a CPU session
 * and the reply says so.
 *
 * It knows nothing of threads or rings: the inference worker (worker.ts) binds it to its
 * two rings, so `session.run` (which blocks its thread: NOTES-DEPS) never blocks the
 * orchestrator's event loop; with `workers: 0` the channel (channel.ts) calls it on the
 * orchestrator's own thread, where a run blocks the event loop for its duration. Both
 * hand it the same records and decode its replies the same way.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import ort from 'onnxruntime-node';
import ortBinding from 'onnxruntime-node/dist/binding.js';
import {
  InferOp,
  decodeRecordBody,
  encodeRecord,
  fastReplyAux,
  readHead,
  type LoadCommand,
  type ModelMeta,
  type ProviderName,
  type ReplyHead,
  type TensorInfo,
} from './protocol.ts';
import { decodeInferRequest, dtypeBytes, encodeInferResponse, type DTypeName, type TensorValue } from './tensor.ts';

/**
 * A session as the host uses it. onnxruntime-node's public `session.run` defers every run
 * to `setImmediate` and wraps feeds and results; its native session (the same one the
 * public API drives, bundled in the same package, pinned exactly in package.json) runs
 * synchronously, which a worker thread doing nothing else can afford (and the in-thread
 * mode accepts: that is its point). Where the native
 * session cannot be made, the public API serves.
 */
interface Session {
  readonly meta: ModelMeta;
  readonly outputNames: string[];
  run(feeds: Record<string, ort.Tensor>, options?: ort.InferenceSession.RunOptions): Promise<Record<string, ort.Tensor>> | Record<string, ort.Tensor>;
  release(): Promise<void> | void;
}

interface Loaded {
  command: LoadCommand;
  bytes: Uint8Array;
  session: Session;
  provider: ProviderName;
  /** A CPU session made after the GPU failed a run: used from then on. */
  cpuSession: Session | null;
}

interface NativeSession {
  loadModel(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, options: object): void;
  readonly inputMetadata: RawMeta[];
  readonly outputMetadata: RawMeta[];
  run(feeds: Record<string, ort.Tensor>, fetches: Record<string, null>, options: object): Record<string, ort.Tensor | { type: string; data: ArrayBufferView; dims: number[] }>;
  dispose(): void;
}
interface RawMeta {
  name: string;
  isTensor: boolean;
  type: number;
  shape: number[];
  symbolicDimensions: string[];
}
/** onnxruntime-node's type codes (dist/backend.js dataTypeStrings). */
const nativeTypes: (string | undefined)[] = [undefined, 'float32', 'uint8', 'int8', 'uint16', 'int16', 'int32', 'int64', 'string', 'bool', 'float16', 'float64', 'uint32', 'uint64'];

const native = (() => {
  try {
    const module = ortBinding as unknown as { binding: { InferenceSession: new () => NativeSession }; initOrt(): void };
    if (typeof module.binding?.InferenceSession !== 'function' || typeof module.initOrt !== 'function') return null;
    module.initOrt();
    return module.binding;
  } catch {
    return null;
  }
})();

function nativeInfo(list: readonly RawMeta[]): TensorInfo[] {
  return list.map((entry) => ({
    name: entry.name,
    type: entry.isTensor ? (nativeTypes[entry.type] ?? `type ${entry.type}`) : 'non-tensor',
    shape: entry.isTensor ? entry.shape.map((dim, i) => (dim >= 0 ? dim : (entry.symbolicDimensions[i] ?? ''))) : [],
  }));
}

async function createSession(bytes: Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<Session> {
  if (native !== null) {
    const session = new native.InferenceSession();
    session.loadModel(bytes.buffer, bytes.byteOffset, bytes.byteLength, options);
    const meta = { inputs: nativeInfo(session.inputMetadata), outputs: nativeInfo(session.outputMetadata) };
    const outputNames = meta.outputs.map((output) => output.name);
    const fetches = Object.fromEntries(outputNames.map((name) => [name, null]));
    return {
      meta,
      outputNames,
      run(feeds, options = {}) {
        const results = session.run(feeds, fetches, options);
        const tensors: Record<string, ort.Tensor> = {};
        for (const name of outputNames) {
          const value = results[name]!;
          tensors[name] = value instanceof ort.Tensor ? value : new ort.Tensor(value.type as 'float32', value.data as Float32Array, value.dims);
        }
        return tensors;
      },
      release: () => session.dispose(),
    };
  }
  const session = await ort.InferenceSession.create(bytes, options);
  return {
    meta: metaOf(session),
    outputNames: [...session.outputNames],
    run: (feeds, options) => session.run(feeds, options ?? {}) as Promise<Record<string, ort.Tensor>>,
    release: () => session.release(),
  };
}

function sessionOptions(command: LoadCommand, provider: ProviderName): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    graphOptimizationLevel: command.sessionOptions.graphOptimizationLevel,
    executionMode: command.sessionOptions.executionMode,
    intraOpNumThreads: command.sessionOptions.intraOpNumThreads,
    interOpNumThreads: command.sessionOptions.interOpNumThreads,
    // Fatal only: every failed load or run reaches the requester as a typed error response
    // that names the model and input, so ORT's own copy on stderr is noise (in red).
    logSeverityLevel: 4,
  };
}

function metaOf(session: ort.InferenceSession): ModelMeta {
  const info = (list: readonly ort.InferenceSession.ValueMetadata[]): TensorInfo[] =>
    list.map((entry) => ({
      name: entry.name,
      type: entry.isTensor ? entry.type : 'non-tensor',
      shape: entry.isTensor ? entry.shape.map((dim) => (typeof dim === 'number' ? dim : String(dim))) : [],
    }));
  return { inputs: info(session.inputMetadata), outputs: info(session.outputMetadata) };
}

function toOrt(value: TensorValue): ort.Tensor {
  const bytes = dtypeBytes[value.dtype];
  // ORT keeps a view of the data: copy out of the record (and align it).
  const data = value.data.slice();
  const count = data.byteLength / bytes;
  switch (value.dtype) {
    case 'float32':
      return new ort.Tensor('float32', new Float32Array(data.buffer, 0, count), value.dims);
    case 'float64':
      return new ort.Tensor('float64', new Float64Array(data.buffer, 0, count), value.dims);
    case 'int32':
      return new ort.Tensor('int32', new Int32Array(data.buffer, 0, count), value.dims);
    case 'int64':
      return new ort.Tensor('int64', new BigInt64Array(data.buffer, 0, count), value.dims);
    case 'int8':
      return new ort.Tensor('int8', new Int8Array(data.buffer, 0, count), value.dims);
    case 'bool':
      return new ort.Tensor('bool', data, value.dims);
    default:
      return new ort.Tensor('uint8', data, value.dims);
  }
}

function fromOrt(name: string, value: ort.Tensor): TensorValue {
  const data = value.data as ArrayBufferView;
  if (!(value.type in dtypeBytes)) throw new Error(`output '${name}' has type ${value.type}, which lockstep does not carry`);
  return {
    name,
    dtype: value.type as DTypeName,
    dims: [...value.dims],
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

/** Where Linux distributions keep shared libraries, beyond LD_LIBRARY_PATH and ld.so.cache. */
const libraryFolders = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/lib64', '/usr/local/lib'];
const vulkanLoader = 'libvulkan.so.1';
/**
 * Why WebGPU cannot work on this machine, found without trying, or null when it may. On
 * Linux, ONNX Runtime's WebGPU provider (Dawn) needs the Vulkan loader; without it, asking
 * for a session only makes Dawn print "Couldn't load Vulkan" on stderr before it fails.
 * Checked once per session host; it decides nothing about results (the answer says which
 * provider served, and a fallback is noted in the log).
 */
function findWebgpuUnavailable(): string | null {
  let reason: string | null = null;
  if (process.platform === 'linux') {
    const folders = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter((folder) => folder.length > 0), ...libraryFolders];
    let found = folders.some((folder) => existsSync(join(folder, vulkanLoader)));
    if (!found) {
      try {
        found = readFileSync('/etc/ld.so.cache').includes(vulkanLoader);
      } catch {
        found = false;
      }
    }
    if (!found) reason = `no Vulkan loader (${vulkanLoader}) on this machine, so no WebGPU adapter; install the GPU's Vulkan driver to use one`;
  }
  return reason;
}

/** Zeros for every input, batch 1 for symbolic dims: a warm-up run. */
function zerosFor(meta: ModelMeta): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of meta.inputs) {
    const dims = input.shape.map((dim) => (typeof dim === 'number' && dim >= 0 ? dim : 1));
    const type = input.type as DTypeName;
    if (!(type in dtypeBytes)) throw new Error(`input '${input.name}' has type ${input.type}`);
    const count = dims.reduce((a, b) => a * b, 1);
    feeds[input.name] = toOrt({ name: input.name, dtype: type, dims, data: new Uint8Array(count * dtypeBytes[type]) });
  }
  return feeds;
}

export interface SessionHostOptions {
  /**
   * Largest reply record the host may return, in bytes (what the reply ring takes). A run
   * whose outputs would not fit is answered with an error naming the sizes, the same way on
   * a worker and in-thread, rather than left to fail the ring.
   */
  replyBytesMax: number;
}

/** Owns one runtime's sessions and answers command records; see the file's comment. */
export class SessionHost {
  private readonly sessions = new Map<number, Loaded>();
  private webgpuChecked: { reason: string | null } | null = null;

  constructor(private readonly options: SessionHostOptions) {}

  /**
   * Serves one command record; resolves with its reply record (a failed reply for anything
   * that goes wrong, never a rejection). Commands are served one at a time: await each
   * reply before handing over the next command.
   */
  async handle(record: Uint8Array): Promise<Uint8Array> {
    const reply = await this.serve(record);
    if (reply.length <= this.options.replyBytesMax) return reply;
    const { job, slot } = readHead(record);
    return encodeRecord(InferOp.reply, job, slot, {
      ok: false,
      error: `the outputs are ${reply.length} bytes, more than the reply ring takes (${this.options.replyBytesMax}); send smaller batches or tensors`,
    });
  }

  private async serve(record: Uint8Array): Promise<Uint8Array> {
    const { op, job, slot } = readHead(record);
    try {
      if (op === InferOp.load) {
        const { json } = decodeRecordBody<LoadCommand>(record);
        return encodeRecord(InferOp.reply, job, slot, await this.load(slot, json!));
      }
      if (op === InferOp.run) {
        const { binary } = decodeRecordBody(record);
        const reply = await this.run(slot, binary);
        if (reply.head.ok && reply.head.fallback === undefined) {
          return encodeRecord(InferOp.reply, job, slot, undefined, reply.binary, fastReplyAux(reply.head.provider ?? 'cpu', reply.head.micros ?? 0));
        }
        return encodeRecord(InferOp.reply, job, slot, reply.head, reply.binary);
      }
      if (op === InferOp.unload) {
        const loaded = this.sessions.get(slot);
        this.sessions.delete(slot);
        if (loaded !== undefined) await this.release(loaded);
        return encodeRecord(InferOp.reply, job, slot, { ok: true });
      }
      return encodeRecord(InferOp.reply, job, slot, { ok: false, error: `unknown op ${op}` });
    } catch (error) {
      return encodeRecord(InferOp.reply, job, slot, { ok: false, error: (error as Error).message });
    }
  }

  /** Releases every session (the runtime is closing). */
  async close(): Promise<void> {
    const loaded = [...this.sessions.values()];
    this.sessions.clear();
    for (const entry of loaded) await this.release(entry);
  }

  /** Why WebGPU cannot work here (see findWebgpuUnavailable), looked up once. */
  private webgpuUnavailable(): string | null {
    this.webgpuChecked ??= { reason: findWebgpuUnavailable() };
    return this.webgpuChecked.reason;
  }

  private async load(slot: number, command: LoadCommand): Promise<ReplyHead> {
    const started = performance.now();
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(command.path);
    } catch (error) {
      return { ok: false, error: `cannot read ${command.path}: ${(error as Error).message}` };
    }
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (sha256 !== command.sha256) {
      return {
        ok: false,
        error: `${command.path} changed since the run began (sha256 ${command.sha256.slice(0, 12)}…, now ${sha256.slice(0, 12)}…); restart the runtime to use the new version`,
      };
    }
    let provider = command.provider;
    let fallback: string | undefined;
    const unavailable = provider === 'webgpu' ? this.webgpuUnavailable() : null;
    if (unavailable !== null) {
      fallback = `webgpu load failed (${unavailable}); using cpu`;
      provider = 'cpu';
    }
    let session: Session;
    try {
      session = await createSession(bytes, sessionOptions(command, provider));
    } catch (error) {
      if (provider === 'cpu') return { ok: false, error: `ONNX Runtime could not load it: ${(error as Error).message}`, fallback };
      fallback = `webgpu load failed (${(error as Error).message.split('\n')[0]}); using cpu`;
      provider = 'cpu';
      try {
        session = await createSession(bytes, sessionOptions(command, provider));
      } catch (cpuError) {
        return { ok: false, error: `ONNX Runtime could not load it: ${(cpuError as Error).message}`, fallback };
      }
    }
    const meta = session.meta;
    if (command.warmup) {
      try {
        await session.run(zerosFor(meta));
      } catch {
        // A model whose zeros are not a valid input (Silero's sample rate) still serves real requests.
      }
    }
    const previous = this.sessions.get(slot);
    if (previous !== undefined) await this.release(previous);
    this.sessions.set(slot, { command, bytes, session, provider, cpuSession: null });
    return { ok: true, provider, fallback, meta, micros: Math.round((performance.now() - started) * 1000) };
  }

  private async release(loaded: Loaded): Promise<void> {
    await loaded.session.release();
    if (loaded.cpuSession !== null) await loaded.cpuSession.release();
  }

  private async run(slot: number, body: Uint8Array): Promise<{ head: ReplyHead; binary?: Uint8Array }> {
    const loaded = this.sessions.get(slot);
    if (loaded === undefined) return { head: { ok: false, error: `no session in slot ${slot} (the orchestrator runs only loaded models)` } };
    const request = decodeInferRequest(body);
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of request.inputs) feeds[input.name] = toOrt(input);
    const started = performance.now();
    let provider: ProviderName = loaded.cpuSession === null ? loaded.provider : 'cpu';
    let fallback: string | undefined;
    let results: Record<string, ort.Tensor>;
    try {
      results = await (loaded.cpuSession ?? loaded.session).run(feeds);
    } catch (error) {
      if (provider === 'cpu') return { head: { ok: false, error: (error as Error).message.split('\n')[0] } };
      fallback = `webgpu run failed (${(error as Error).message.split('\n')[0]}); ran on cpu`;
      provider = 'cpu';
      try {
        loaded.cpuSession = await createSession(loaded.bytes, sessionOptions(loaded.command, 'cpu'));
        results = await loaded.cpuSession.run(feeds);
      } catch (cpuError) {
        return { head: { ok: false, error: (cpuError as Error).message.split('\n')[0], fallback } };
      }
    }
    const micros = (performance.now() - started) * 1000;
    const outputs = loaded.session.outputNames.map((name) => fromOrt(name, results[name]!));
    const binary = encodeInferResponse({ id: 0, model: '', version: '', outputs, errorCode: 'none', error: '' });
    return { head: { ok: true, provider, fallback, micros }, binary };
  }
}
