/**
 * The inference actor (ARCHITECTURE.md, "Inference"): the one actor that owns ONNX Runtime.
 *
 * Agents ask by message: an `InferRequest` (schemas/tensor.fbs) on the topic `infer/<model>`
 * (or on `infer`, naming the model). In tick t the actor takes every request delivered to
 * it, checks each against the model's inputs, stacks the good ones of one model along the
 * batch dimension, runs each batch once on the inference worker, and at the tick's barrier
 * answers every requester in its inbox `actor/<id>`, so the answer arrives at tick t+1.
 * A bad request, an unknown or unavailable model, or a failed run is an error response to
 * the requester; the actor goes on.
 *
 * Stateful models (a recurrent state such as Silero VAD's) keep one state per requester
 * here: the requester sends its inputs, the actor feeds the state from that requester's
 * last answer (zeros at first, or after `reset_state`) and keeps the new one. The answer
 * carries every output of the model, the new state included.
 *
 * Every answer goes into the tick record: its digest (CPU answers are bit-identical run to
 * run; replay re-runs and checks them) or the whole answer (GPU answers, or `logOutputs:
 * 'full'`; replay substitutes them without running the model).
 */
import type { Logger } from 'pino';
import type { Executor, Kernel } from '../src/kernel.ts';
import type { Envelope } from '../src/envelope.ts';
import { hashBytes } from '../src/hash.ts';
import type { InferenceProvider, InferenceRecord } from '../src/log/types.ts';
import type { InferenceChannel } from '../src/inference/channel.ts';
import type { ModelEntry, ModelManager, ResolvedModel } from '../src/inference/models.ts';
import { InferOp, type TensorInfo } from '../src/inference/protocol.ts';
import {
  ResponseTemplate,
  TensorFormatError,
  decodeInferRequest,
  decodeInferResponse,
  dtypeBytes,
  elementCount,
  encodeInferRequest,
  encodeInferResponse,
  tensorValues,
  type InferErrorCode,
  type InferRequestValue,
  type TensorValue,
} from '../src/inference/tensor.ts';
import { inferTopicName, inferTopicOf } from '../src/wasm/abi.ts';
import { ActorCell } from './cell.ts';

/** The topic of requests for `model` is `inferTopicOf(model)`; `inferTopic` alone takes requests that name their model. */
export const inferTopic = inferTopicName;
export { inferTopicOf };

export interface InferenceActorOptions {
  name: string;
  priority: number;
  manager: ModelManager;
  channel: () => InferenceChannel;
  logOutputs: 'digest' | 'full';
  logger: Logger;
  /** Replay: the answers the recorded run logged whole, by `${requester}:${seq}`; substituted. */
  recorded?: (tick: number) => ReadonlyMap<string, InferenceRecord> | null;
  /** Takes each answer settled at a barrier, in request order, for the tick's log record. */
  record: (answer: InferenceRecord) => void;
  /** Told of each run of one model's batch (for the event bus; it decides nothing). */
  ranBatch?: (batch: { model: string; requests: number; provider: InferenceProvider; micros: number }) => void;
}

/** One request of this tick, as taken in. */
interface Pending {
  envelope: Envelope;
  model: string;
  request: InferRequestValue | null;
  /** Set once answered (an error, a substitution or a run). */
  response: Uint8Array | null;
  provider: InferenceProvider;
  whole: boolean;
  note: string;
}

interface Outgoing {
  topic: number;
  payload: Uint8Array;
  priority: number;
}

/** What a model's metadata says about batching, worked out once per model. */
interface ModelPlan {
  /** Inputs a requester sends, batched along dim 0 (or taken whole when the model does not batch). */
  regular: TensorInfo[];
  /** Rank-0 inputs: requests batch together only when these are equal. */
  shared: TensorInfo[];
  /** `regular` then `shared`: what a requester sends, in feed order. */
  given: TensorInfo[];
  /** Inputs fed from kept state. */
  state: { info: TensorInfo; spec: ResolvedModel['state'][number] }[];
  batchable: boolean;
  stateOutputs: Map<string, ResolvedModel['state'][number]>;
}

function isAnyDim(dim: number | string): boolean {
  return typeof dim === 'string' || dim < 0;
}

/** Copies block `index` of `count` equal blocks along `axis` out of (or into) a stacked tensor. */
function axisBlocks(dims: readonly number[], axis: number, elementBytes: number): { outer: number; inner: number } {
  let outer = 1;
  for (let i = 0; i < axis; i++) outer *= dims[i]!;
  let inner = elementBytes;
  for (let i = axis + 1; i < dims.length; i++) inner *= dims[i]!;
  return { outer, inner };
}

/** Stacks tensors of equal dims but the one along `axis` (each contributes its own size there). */
function stack(name: string, parts: readonly TensorValue[], axis: number): TensorValue {
  const first = parts[0]!;
  const elementBytes = dtypeBytes[first.dtype];
  const total = parts.reduce((sum, part) => sum + part.dims[axis]!, 0);
  const dims = [...first.dims];
  dims[axis] = total;
  if (axis === 0) {
    const data = new Uint8Array(parts.reduce((sum, part) => sum + part.data.length, 0));
    let at = 0;
    for (const part of parts) {
      data.set(part.data, at);
      at += part.data.length;
    }
    return { name, dtype: first.dtype, dims, data };
  }
  const { outer, inner } = axisBlocks(first.dims, axis, elementBytes);
  const data = new Uint8Array(elementCount(dims) * elementBytes);
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (const part of parts) {
      const block = inner * part.dims[axis]!;
      data.set(part.data.subarray(o * block, (o + 1) * block), at);
      at += block;
    }
  }
  return { name, dtype: first.dtype, dims, data };
}

/** Rows [start, start+count) along axis 0: a view, no copy. */
function rowsOf(value: TensorValue, start: number, count: number): TensorValue {
  const rowBytes = value.data.length / value.dims[0]!;
  const dims = [...value.dims];
  dims[0] = count;
  return { name: value.name, dtype: value.dtype, dims, data: value.data.subarray(start * rowBytes, (start + count) * rowBytes) };
}

/** The slice [start, start+size) of `value` along `axis`. */
function slice(value: TensorValue, axis: number, start: number, size: number): TensorValue {
  const elementBytes = dtypeBytes[value.dtype];
  const dims = [...value.dims];
  const full = dims[axis]!;
  dims[axis] = size;
  const { outer, inner } = axisBlocks(value.dims, axis, elementBytes);
  const data = new Uint8Array(elementCount(dims) * elementBytes);
  for (let o = 0; o < outer; o++) {
    const from = (o * full + start) * inner;
    data.set(value.data.subarray(from, from + size * inner), o * size * inner);
  }
  return { name: value.name, dtype: value.dtype, dims, data };
}

/** A model input's shape for people: [?, 16]. */
function shapeText(info: TensorInfo): string {
  return `[${info.shape.map((dim) => (isAnyDim(dim) ? '?' : dim)).join(', ')}]`;
}

function bytesKey(bytes: Uint8Array): string {
  let key = '';
  for (let i = 0; i < bytes.length; i++) key += bytes[i]!.toString(16).padStart(2, '0');
  return key;
}

export class InferenceActor extends ActorCell implements Executor {
  readonly kind = 'inference' as const;
  private readonly manager: ModelManager;
  private readonly log: Logger;
  private readonly plans = new Map<string, ModelPlan>();
  /** Kept state per (model, requester). */
  private readonly states = new Map<string, TensorValue[]>();
  /** (model, requester) pairs of stateful models already asked this tick. */
  private readonly statefulSeen = new Set<string>();
  /** This tick's requests, answered at the barrier. */
  private requests: Pending[] = [];
  private work: Promise<void> | null = null;
  /** Answers a full mailbox refused: sent first, in order, once it has room. */
  private outbox: Outgoing[] = [];
  private readonly digestScratch = new Uint32Array(2);
  /** Wall-clock microseconds of runs on the worker (benchmarks only). */
  readonly runMicros: number[] = [];
  readonly counters = { requests: 0, answered: 0, errors: 0, runs: 0, substituted: 0 };

  constructor(
    kernel: Kernel,
    private readonly options: InferenceActorOptions,
  ) {
    super(options.name, options.priority, kernel);
    this.manager = options.manager;
    this.log = options.logger.child({ actor: options.name });
  }

  /** Topics it takes requests on: `infer` and `infer/<model>` for each registered model. */
  subscriptions(): string[] {
    return [inferTopic, ...this.manager.names().map(inferTopicOf)];
  }

  override admitted(id: number): void {
    super.admitted(id, this.name);
  }

  /** Scheduled with no mail only to send answers a full mailbox held back. */
  get hasStep(): boolean {
    return this.outbox.length > 0;
  }

  start(): void {
    this.lifecycle.send('INIT');
    this.lifecycle.send('READY');
  }

  stop(reason: string): void {
    if (!this.sendIfAllowed('STOP', reason)) return;
    // Stopped before its first tick, it went straight from created to stopped.
    if (this.lifecycle.state === 'stopping') this.lifecycle.send('STOPPED');
  }

  /**
   * Forgets what the actor kept for `requester` (its recurrent states): called when the
   * requester goes down, so a restarted incarnation starts from zeros, as it would from
   * its own init. Lifecycle events are logged inputs of the run, so replay does the same.
   */
  forgetRequester(requester: number): void {
    if (this.states.size === 0) return;
    const suffix = `\u0000${requester}`;
    for (const key of this.states.keys()) if (key.endsWith(suffix)) this.states.delete(key);
  }

  // ── a tick ──────────────────────────────────────────────────────────────────────────

  activate(batch: readonly Envelope[]): number {
    this.flushOutbox();
    const tick = this.kernel.tick;
    for (const envelope of batch) {
      this.counters.requests++;
      const topic = this.kernel.topicName(envelope.topic);
      let model = topic.startsWith(`${inferTopic}/`) ? topic.slice(inferTopic.length + 1) : '';
      const pending: Pending = { envelope, model, request: null, response: null, provider: 'none', whole: false, note: '' };
      if (envelope.sender === 0) {
        // An injected request has no inbox to answer to.
        this.kernel.dropUnprocessed(this.self, [envelope], `inference request injected from outside: no actor to answer; publish requests from an actor`);
        continue;
      }
      this.requests.push(pending);
      try {
        pending.request = decodeInferRequest(envelope.payload);
      } catch (error) {
        if (!(error instanceof TensorFormatError)) throw error;
        this.fail(pending, 'bad_request', `${error.message}; build requests with encodeInferRequest (schemas/tensor.fbs)`);
        continue;
      }
      const named = pending.request.model;
      if (model === '') {
        if (named === '') {
          this.fail(pending, 'bad_request', `a request on '${inferTopic}' must name its model; or publish it to '${inferTopic}/<model>'`);
          continue;
        }
        model = named;
        pending.model = named;
      } else if (named !== '' && named !== model) {
        this.fail(pending, 'bad_request', `the request names model '${named}' but was published to '${topic}'; leave the name empty or publish to '${inferTopicOf(named)}'`);
        continue;
      }
      if (this.manager.entry(model) === undefined) {
        this.fail(pending, 'unknown_model', `no model named '${model}' is registered; registered: ${this.manager.names().join(', ')}`);
      }
    }
    if (this.requests.length > 0) this.work = this.answer(tick);
    return batch.length;
  }

  hasWork(): boolean {
    return this.work !== null || this.requests.length > 0;
  }

  /** The barrier: waits for this tick's runs, then answers in request order. */
  async settle(): Promise<void> {
    const channel = this.work === null ? null : this.options.channel();
    if (channel !== null) channel.spin = true;
    try {
      if (this.work !== null) await this.work;
    } finally {
      if (channel !== null) channel.spin = false;
      this.work = null;
    }
    const requests = this.requests;
    this.requests = [];
    const scratch = this.digestScratch;
    for (const pending of requests) {
      const response = pending.response!;
      hashBytes(response, scratch);
      const whole = pending.whole || pending.provider === 'webgpu' || this.options.logOutputs === 'full';
      this.options.record({
        model: pending.model,
        requester: pending.envelope.sender,
        seq: pending.envelope.seq,
        requestId: pending.request?.id ?? 0,
        provider: pending.provider,
        digest: { hi: scratch[0]!, lo: scratch[1]! },
        response: whole ? response : null,
        note: pending.note,
      });
      this.counters.answered++;
      this.send({ topic: this.kernel.inboxTopicOf(pending.envelope.sender), payload: response, priority: pending.envelope.priority });
    }
  }

  private send(message: Outgoing): void {
    if (this.outbox.length > 0 || this.kernel.publishAs(this.self, message.topic, message.payload, message.priority).ok !== true) {
      this.outbox.push(message);
    }
  }

  private flushOutbox(): void {
    while (this.outbox.length > 0) {
      const next = this.outbox[0]!;
      if (this.kernel.publish(next.topic, next.payload, next.priority).ok !== true) return;
      this.outbox.shift();
    }
  }

  private fail(pending: Pending, code: InferErrorCode, error: string): void {
    this.counters.errors++;
    const model = pending.model;
    const text = model !== '' && !error.includes(`'${model}'`) ? `model '${model}': ${error}` : error;
    pending.response = encodeInferResponse({
      id: pending.request?.id ?? 0,
      model,
      version: this.manager.entry(model)?.version.sha256 ?? '',
      outputs: [],
      errorCode: code,
      error: text,
    });
  }

  /** Answers this tick's requests, model by model in order of first request. */
  /**
   * Answers this tick's requests. A model already loaded is checked, batched and sent to the
   * worker at once, during the activation, so its run overlaps the rest of the tick; models
   * that need a load follow, one after another in order of first request (the loads and
   * evictions happen in an order fixed by logical state alone).
   */
  private answer(tick: number): Promise<void> {
    const recorded = this.options.recorded?.(tick) ?? null;
    this.statefulSeen.clear();
    // First, so that a worker that died since the last tick is replaced (and its models
    // counted unloaded) before deciding what is loaded.
    this.options.channel();
    const byModel = new Map<string, Pending[]>();
    for (const pending of this.requests) {
      if (pending.response !== null) continue;
      if (recorded !== null) {
        const logged = recorded.get(`${pending.envelope.sender}:${pending.envelope.seq}`);
        if (logged !== undefined && logged.response !== null) {
          this.substitute(pending, logged);
          continue;
        }
      }
      const list = byModel.get(pending.model);
      if (list === undefined) byModel.set(pending.model, [pending]);
      else list.push(pending);
    }
    const jobs: Promise<void>[] = [];
    const misses: [string, Pending[]][] = [];
    for (const [model, list] of byModel) {
      const entry = this.manager.hit(model);
      if (entry === null) misses.push([model, list]);
      else jobs.push(this.dispatch(entry, list));
    }
    if (misses.length > 0) {
      jobs.push(
        (async () => {
          for (const [model, list] of misses) await this.answerModel(model, list);
        })(),
      );
    }
    return Promise.all(jobs).then(() => undefined);
  }

  /** Replay: the recorded answer stands in for a run (and its state output is kept). */
  private substitute(pending: Pending, logged: InferenceRecord): void {
    this.counters.substituted++;
    pending.response = logged.response;
    pending.provider = logged.provider;
    pending.whole = true;
    pending.note = logged.note;
    const entry = this.manager.entry(pending.model);
    if (entry === undefined || entry.model.state.length === 0 || pending.request === null) return;
    const response = decodeInferResponse(logged.response!);
    if (response.errorCode !== 'none') return;
    const key = `${pending.model}\u0000${pending.envelope.sender}`;
    const kept: TensorValue[] = [];
    for (const spec of entry.model.state) {
      const output = response.outputs.find((value) => value.name === spec.output);
      if (output !== undefined) kept.push({ ...output, name: spec.input, data: output.data.slice() });
    }
    if (kept.length === entry.model.state.length) this.states.set(key, kept);
  }

  private async answerModel(model: string, list: Pending[]): Promise<void> {
    const ensured = await this.manager.ensure(model);
    if (!ensured.ok) {
      for (const pending of list) this.fail(pending, 'model_unavailable', ensured.error);
      return;
    }
    await this.dispatch(ensured.entry, list);
  }

  /** Checks a loaded model's requests and sends its batches to the worker (synchronously); resolves once answered. */
  private dispatch(entry: ModelEntry, list: Pending[]): Promise<void> {
    const model = entry.model.name;
    const fallback = this.manager.takeFallback(entry);
    if (fallback !== null) {
      this.log.warn({ model }, fallback);
      list[0]!.note = fallback;
    }
    const plan = this.planOf(entry);
    if (typeof plan === 'string') {
      for (const pending of list) this.fail(pending, 'model_unavailable', plan);
      return Promise.resolve();
    }
    // Check each request; group the good ones by what must be equal within a batch.
    const groups = new Map<string, { pending: Pending; feeds: TensorValue[] }[]>();
    for (const pending of list) {
      const checked = this.check(entry, plan, pending);
      if (checked === null) continue;
      const key = plan.batchable ? checked.key : `#${groups.size}`;
      const group = groups.get(key);
      if (group === undefined) groups.set(key, [{ pending, feeds: checked.feeds }]);
      else group.push({ pending, feeds: checked.feeds });
    }
    const runs: Promise<void>[] = [];
    for (const group of groups.values()) runs.push(this.run(entry, plan, group));
    return Promise.all(runs).then(() => undefined);
  }

  /** Works out, once per model, which inputs batch, which are shared and which are state. */
  private planOf(entry: ModelEntry): ModelPlan | string {
    const known = this.plans.get(entry.model.name);
    if (known !== undefined) return known;
    const meta = entry.meta;
    if (meta === null) return `model '${entry.model.name}': ONNX Runtime gave no input metadata`;
    const stateSpecs = new Map(entry.model.state.map((spec) => [spec.input, spec]));
    const stateOutputs = new Map(entry.model.state.map((spec) => [spec.output, spec]));
    for (const spec of entry.model.state) {
      if (!meta.inputs.some((input) => input.name === spec.input)) return `model '${entry.model.name}': state input '${spec.input}' is not an input of the model; fix the registry`;
      if (!meta.outputs.some((output) => output.name === spec.output)) return `model '${entry.model.name}': state output '${spec.output}' is not an output of the model; fix the registry`;
    }
    const regular: TensorInfo[] = [];
    const shared: TensorInfo[] = [];
    const state: ModelPlan['state'] = [];
    for (const input of meta.inputs) {
      const spec = stateSpecs.get(input.name);
      if (spec !== undefined) state.push({ info: input, spec });
      else if (input.shape.length === 0) shared.push(input);
      else regular.push(input);
    }
    const batchable =
      entry.model.batch &&
      regular.every((input) => isAnyDim(input.shape[0]!)) &&
      meta.outputs.every((output) => stateOutputs.has(output.name) || (output.shape.length > 0 && isAnyDim(output.shape[0]!)));
    const plan: ModelPlan = { regular, shared, given: [...regular, ...shared], state, batchable, stateOutputs };
    this.plans.set(entry.model.name, plan);
    return plan;
  }

  /**
   * Checks a request against the model; on a problem answers it with an error and returns
   * null. Otherwise returns its feeds (inputs in model order, state included) and its batch key.
   */
  private check(entry: ModelEntry, plan: ModelPlan, pending: Pending): { feeds: TensorValue[]; key: string } | null {
    const request = pending.request!;
    const model = entry.model.name;
    const inputs = request.inputs;
    // Every given input must be a model input, once (few inputs: scans beat a Map here).
    for (let i = 0; i < inputs.length; i++) {
      const name = inputs[i]!.name;
      for (let j = 0; j < i; j++) if (inputs[j]!.name === name) return this.refuse(pending, 'bad_request', `input '${name}' is given twice`);
      if (plan.state.some((state) => state.info.name === name)) {
        return this.refuse(pending, 'bad_input', `input '${name}' is the model's state, which the inference actor keeps for each requester; leave it out (set reset_state to start over)`);
      }
      if (!plan.given.some((input) => input.name === name)) {
        const expected = plan.given.map((input) => `'${input.name}'`).join(', ');
        return this.refuse(pending, 'bad_input', `input '${name}' is not an input of the model; it takes ${expected}`);
      }
    }
    const feeds: TensorValue[] = [];
    let key = '';
    let rows = -1;
    for (const info of plan.given) {
      let value: TensorValue | undefined;
      for (const input of inputs) if (input.name === info.name) value = input;
      if (value === undefined) return this.refuse(pending, 'bad_input', `input '${info.name}' (${info.type} ${shapeText(info)}) is missing`);
      if (value.dtype !== info.type) {
        return this.refuse(pending, 'bad_input', `input '${info.name}' is ${value.dtype}, but the model takes ${info.type} ${shapeText(info)}`);
      }
      const dims = value.dims;
      let fits = dims.length === info.shape.length;
      for (let axis = 0; fits && axis < dims.length; axis++) {
        const dim = info.shape[axis]!;
        fits = dims[axis]! >= 1 && (isAnyDim(dim) || dim === dims[axis]);
      }
      if (!fits) {
        return this.refuse(pending, 'bad_input', `input '${info.name}' has dims [${dims.join(', ')}], but the model takes ${shapeText(info)} (? is any size >= 1)`);
      }
      if (value.dtype === 'float32' || value.dtype === 'float64') {
        const values = tensorValues(value) as Float32Array | Float64Array;
        for (let i = 0; i < values.length; i++) {
          // v - v is 0 for every finite v, NaN for NaN and the infinities.
          if (values[i]! - values[i]! !== 0) {
            return this.refuse(pending, 'bad_input', `input '${info.name}' holds ${values[i]} at element ${i}; send finite numbers`);
          }
        }
      }
      if (dims.length === 0) {
        key += `|${info.name}=${bytesKey(value.data)}`;
      } else {
        if (rows === -1) rows = dims[0]!;
        else if (plan.batchable && dims[0] !== rows) {
          return this.refuse(pending, 'bad_input', `input '${info.name}' has ${dims[0]} rows but the other inputs have ${rows}; give every input the same batch size`);
        }
        // Symbolic dims past the first must agree within a batch.
        for (let axis = 1; axis < dims.length; axis++) if (isAnyDim(info.shape[axis]!)) key += `|${info.name}.${axis}=${dims[axis]}`;
      }
      feeds.push(value);
    }
    if (plan.state.length > 0) {
      if (rows > 1) return this.refuse(pending, 'bad_input', `the model is stateful: send one row (batch 1) per request, got ${rows}`);
      const stateKey = `${model}\u0000${pending.envelope.sender}`;
      if (this.statefulSeen.has(stateKey)) {
        return this.refuse(pending, 'bad_request', 'the model is stateful and this requester already asked it this tick; send one request per tick (the next one needs this answer\'s state)');
      }
      this.statefulSeen.add(stateKey);
      if (request.resetState) this.states.delete(stateKey);
      let kept = this.states.get(stateKey);
      if (kept === undefined) {
        kept = plan.state.map(({ info, spec }) => ({
          name: info.name,
          dtype: info.type as TensorValue['dtype'],
          dims: [...spec.dims],
          data: new Uint8Array(elementCount(spec.dims) * dtypeBytes[info.type as TensorValue['dtype']]),
        }));
      }
      feeds.push(...kept);
    }
    return { feeds, key };
  }

  private refuse(pending: Pending, code: InferErrorCode, error: string): null {
    this.fail(pending, code, error);
    return null;
  }

  /** One run for a group of checked requests: stacked along the batch axis, split after. */
  private async run(entry: ModelEntry, plan: ModelPlan, group: { pending: Pending; feeds: TensorValue[] }[]): Promise<void> {
    const model = entry.model.name;
    const inputs: TensorValue[] = [];
    const regularCount = plan.regular.length;
    const sharedCount = plan.shared.length;
    for (let i = 0; i < regularCount + sharedCount + plan.state.length; i++) {
      const parts = group.map((member) => member.feeds[i]!);
      if (i >= regularCount && i < regularCount + sharedCount) inputs.push(parts[0]!);
      else if (i < regularCount) inputs.push(group.length === 1 ? parts[0]! : stack(parts[0]!.name, parts, 0));
      else inputs.push(group.length === 1 ? parts[0]! : stack(parts[0]!.name, parts, plan.state[i - regularCount - sharedCount]!.spec.batchAxis));
    }
    const reply = await this.options.channel().call(InferOp.run, entry.slot, undefined, encodeInferRequest({ inputs }));
    this.counters.runs++;
    if (reply.head.micros !== undefined) this.runMicros.push(reply.head.micros);
    const provider: InferenceProvider = reply.head.provider ?? 'cpu';
    this.options.ranBatch?.({ model, requests: group.length, provider, micros: reply.head.micros ?? 0 });
    if (reply.head.fallback !== undefined) {
      const note = `model '${model}': ${reply.head.fallback}`;
      this.log.warn({ model }, note);
      group[0]!.pending.note = note;
    }
    if (!reply.head.ok) {
      for (const { pending } of group) {
        pending.provider = provider;
        this.fail(pending, 'run_failed', `ONNX Runtime failed the run: ${reply.head.error ?? 'unknown error'}`);
      }
      return;
    }
    const outputs = decodeInferResponse(reply.binary).outputs;
    let template: ResponseTemplate | null = null;
    let templateRows = -1;
    let row = 0;
    for (const { pending, feeds } of group) {
      const rows = regularCount > 0 ? feeds[0]!.dims[0]! : 1;
      const mine =
        group.length === 1
          ? outputs
          : outputs.map((output) => {
              const stateSpec = plan.stateOutputs.get(output.name);
              return stateSpec !== undefined ? slice(output, stateSpec.batchAxis, row, 1) : rowsOf(output, row, rows);
            });
      row += rows;
      if (plan.state.length > 0) {
        const kept = plan.state.map(({ info, spec }) => {
          const output = mine.find((value) => value.name === spec.output)!;
          return { ...output, name: info.name };
        });
        this.states.set(`${model}\u0000${pending.envelope.sender}`, kept);
      }
      pending.provider = provider;
      const id = pending.request!.id;
      if (group.length === 1) {
        pending.response = encodeInferResponse({ id, model, version: entry.version.sha256, outputs: mine, errorCode: 'none', error: '' });
        continue;
      }
      if (template === null || rows !== templateRows || !template.fits(mine)) {
        template = new ResponseTemplate({ id, model, version: entry.version.sha256, outputs: mine, errorCode: 'none', error: '' });
        templateRows = rows;
      }
      pending.response = template.encode(id, mine);
    }
  }
}

