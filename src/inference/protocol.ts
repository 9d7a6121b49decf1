/**
 * The records between the orchestrator and the inference worker, over two SharedArrayBuffer
 * rings (one per direction). Each record: a 16-byte head `[op u32][job u32][slot u32][aux
 * u32]`, then the body. Bodies:
 *
 *   load   → JSON LoadCommand                        ← reply: JSON ReplyHead (+ meta)
 *   run    → an InferRequest FlatBuffer: the feeds  ← reply: JSON ReplyHead, then an
 *                                                       InferResponse FlatBuffer: the outputs
 *   unload → nothing                                 ← reply: JSON ReplyHead
 *
 * A reply body is `[json length u32][json][binary]`. Runs are the hot path: the feeds are
 * already batched, so one record carries a whole tick's run of one model, and a run that
 * went well has no JSON at all: its provider and time are packed into `aux`
 * (`fastReplyAux`).
 */

export const InferOp = { load: 1, run: 2, unload: 3, reply: 4 } as const;
export type InferOpCode = (typeof InferOp)[keyof typeof InferOp];
export const recordHeadBytes = 16;

/** Session options lockstep pins (NOTES-DEPS: the optimisation level changes the bits). */
export interface PinnedSessionOptions {
  graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
  executionMode: 'sequential' | 'parallel';
  intraOpNumThreads: number;
  interOpNumThreads: number;
}

export type ProviderName = 'cpu' | 'webgpu';

export interface LoadCommand {
  model: string;
  path: string;
  /** The worker refuses the file unless its sha256 is this (the version the run began with). */
  sha256: string;
  provider: ProviderName;
  sessionOptions: PinnedSessionOptions;
  /** Run once on zeros after loading, so the first real request does not pay for it. */
  warmup: boolean;
}

/** What ORT reports of one input or output. Shape entries: a number, or a symbolic name. */
export interface TensorInfo {
  name: string;
  type: string;
  shape: (number | string)[];
}

export interface ModelMeta {
  inputs: TensorInfo[];
  outputs: TensorInfo[];
}

export interface ReplyHead {
  ok: boolean;
  /** Why it failed, when !ok. */
  error?: string;
  /** The provider that ran (or loaded) it. */
  provider?: ProviderName;
  /** Set when a GPU load or run failed and CPU took over: what happened. */
  fallback?: string;
  /** load: the model's inputs and outputs. */
  meta?: ModelMeta;
  /** Wall-clock microseconds the worker spent (load or run): for benchmarks, never for decisions. */
  micros?: number;
}

export function writeHead(bytes: Uint8Array, op: number, job: number, slot: number, aux = 0): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, recordHeadBytes);
  view.setUint32(0, op, true);
  view.setUint32(4, job, true);
  view.setUint32(8, slot, true);
  view.setUint32(12, aux, true);
}

export function readHead(bytes: Uint8Array): { op: number; job: number; slot: number; aux: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, recordHeadBytes);
  return { op: view.getUint32(0, true), job: view.getUint32(4, true), slot: view.getUint32(8, true), aux: view.getUint32(12, true) };
}

const providerCodes: Record<ProviderName, number> = { cpu: 1, webgpu: 2 };
const providerOfCode: (ProviderName | undefined)[] = [undefined, 'cpu', 'webgpu'];
const microsMax = 0xff_ffff;

/** `aux` of a run reply with no JSON: the provider in the top byte, microseconds below. */
export function fastReplyAux(provider: ProviderName, micros: number): number {
  return ((providerCodes[provider] << 24) | Math.min(microsMax, Math.max(0, Math.round(micros)))) >>> 0;
}

/** The reply head a JSON-less run reply stands for. */
export function fastReplyHead(aux: number): ReplyHead {
  return { ok: true, provider: providerOfCode[aux >>> 24] ?? 'cpu', micros: aux & microsMax };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A record: head, then `[json length][json][binary]` (replies) or the raw body (commands). */
export function encodeRecord(op: number, job: number, slot: number, json: unknown, binary?: Uint8Array, aux = 0): Uint8Array {
  const text = json === undefined ? new Uint8Array(0) : encoder.encode(JSON.stringify(json));
  const binaryBytes = binary?.length ?? 0;
  const record = new Uint8Array(recordHeadBytes + 4 + text.length + binaryBytes);
  writeHead(record, op, job, slot, aux);
  new DataView(record.buffer).setUint32(recordHeadBytes, text.length, true);
  record.set(text, recordHeadBytes + 4);
  if (binary !== undefined) record.set(binary, recordHeadBytes + 4 + text.length);
  return record;
}

export function decodeRecordBody<T>(record: Uint8Array): { json: T | undefined; binary: Uint8Array } {
  const length = new DataView(record.buffer, record.byteOffset).getUint32(recordHeadBytes, true);
  const start = recordHeadBytes + 4;
  const json = length === 0 ? undefined : (JSON.parse(decoder.decode(record.subarray(start, start + length))) as T);
  return { json, binary: record.subarray(start + length) };
}
