/**
 * Tensors, inference requests and responses as FlatBuffers (`schemas/tensor.fbs`).
 *
 * Requests come from actors and may be anything, so decoding checks every offset against
 * the buffer before reading (the FlatBuffers JS runtime has no verifier, and an offset out
 * of bounds reads `undefined` rather than failing): a malformed payload is a
 * `TensorFormatError` saying what is wrong, never garbage and never a crash.
 *
 * Tensor data travels as little-endian bytes. The encoder aligns each data vector to 8
 * bytes from the buffer's start, so a decoded float32 tensor of a freshly copied payload
 * is viewed in place; an unaligned one is copied.
 */
import * as flatbuffers from 'flatbuffers';
import { InferRequest } from '../../schemas/generated/lockstep/tensor/infer-request.ts';
import { InferResponse } from '../../schemas/generated/lockstep/tensor/infer-response.ts';
import { Tensor } from '../../schemas/generated/lockstep/tensor/tensor.ts';
import { TensorFormatError } from '../errors.ts';
import { readU32, writeU32 } from '../wasm/protocol.ts';
import { tensorDecodedCacheBytesMax, tensorDecodedCacheMax, tensorRankMax } from '../limits.ts';

export const dtypeCodes = { float32: 1, float64: 2, int32: 3, int64: 4, uint8: 5, int8: 6, bool: 7 } as const;
export type DTypeName = keyof typeof dtypeCodes;
const dtypeNames: (DTypeName | undefined)[] = [undefined, 'float32', 'float64', 'int32', 'int64', 'uint8', 'int8', 'bool'];
export const dtypeBytes: Readonly<Record<DTypeName, number>> = { float32: 4, float64: 8, int32: 4, int64: 8, uint8: 1, int8: 1, bool: 1 };

export const inferErrorCodes = {
  none: 0,
  unknown_model: 1,
  bad_request: 2,
  bad_input: 3,
  model_unavailable: 4,
  run_failed: 5,
} as const;
export type InferErrorCode = keyof typeof inferErrorCodes;
const errorCodeNames = Object.keys(inferErrorCodes) as InferErrorCode[];


/** A tensor: its bytes are row-major little-endian elements of `dtype`. */
export interface TensorValue {
  name: string;
  dtype: DTypeName;
  dims: number[];
  data: Uint8Array;
}

export interface InferRequestValue {
  /** Chosen by the requester, echoed in the response. */
  id: number;
  /** The model; may be empty on a per-model topic `infer/<model>`. */
  model: string;
  inputs: TensorValue[];
  /** Stateful models: forget the state kept for this requester first. */
  resetState: boolean;
}

export interface InferResponseValue {
  id: number;
  model: string;
  /** sha256 (hex) of the model file that answered; empty when none did. */
  version: string;
  outputs: TensorValue[];
  errorCode: InferErrorCode;
  /** Empty on success; else what is wrong and what to do. */
  error: string;
}

export { TensorFormatError };

type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;

/** Element count of `dims` (1 for a scalar). */
export function elementCount(dims: readonly number[]): number {
  let count = 1;
  for (const dim of dims) count *= dim;
  return count;
}

/**
 * Makes a tensor from a typed array (its bytes are copied). `dims` defaults to a vector of
 * the array's length. A Uint8Array is taken as uint8, unless `dtype` says bool.
 */
export function tensor(name: string, values: TypedArray | readonly number[], dims?: readonly number[], dtype?: DTypeName): TensorValue {
  let array: TypedArray;
  let type: DTypeName;
  if (Array.isArray(values)) {
    array = Float32Array.from(values as readonly number[]);
    type = 'float32';
  } else if (values instanceof Float32Array) [array, type] = [values, 'float32'];
  else if (values instanceof Float64Array) [array, type] = [values, 'float64'];
  else if (values instanceof Int32Array) [array, type] = [values, 'int32'];
  else if (values instanceof BigInt64Array) [array, type] = [values, 'int64'];
  else if (values instanceof Int8Array) [array, type] = [values, 'int8'];
  else if (values instanceof Uint8Array) [array, type] = [values, dtype === 'bool' ? 'bool' : 'uint8'];
  else throw new TensorFormatError(`tensor '${name}': values must be a typed array or an array of numbers`);
  const shape = dims === undefined ? [array.length] : [...dims];
  if (elementCount(shape) !== array.length) {
    throw new TensorFormatError(`tensor '${name}': dims [${shape.join(', ')}] hold ${elementCount(shape)} elements, but ${array.length} values were given`);
  }
  const data = new Uint8Array(array.buffer, array.byteOffset, array.byteLength).slice();
  return { name, dtype: type, dims: shape, data };
}

/** The elements of a tensor as a typed array of its dtype (a view when aligned, else a copy). */
export function tensorValues(value: TensorValue): TypedArray {
  const bytes = dtypeBytes[value.dtype];
  let data = value.data;
  if (data.byteOffset % bytes !== 0) data = data.slice();
  const count = data.byteLength / bytes;
  switch (value.dtype) {
    case 'float32':
      return new Float32Array(data.buffer, data.byteOffset, count);
    case 'float64':
      return new Float64Array(data.buffer, data.byteOffset, count);
    case 'int32':
      return new Int32Array(data.buffer, data.byteOffset, count);
    case 'int64':
      return new BigInt64Array(data.buffer, data.byteOffset, count);
    case 'int8':
      return new Int8Array(data.buffer, data.byteOffset, count);
    default:
      return data;
  }
}

// ── encoding ─────────────────────────────────────────────────────────────────────────

const sharedBuilder = new flatbuffers.Builder(1024);
const textEncoder = new TextEncoder();
/** UTF-8 of the few strings a system sends over and over (tensor and model names, versions). */
const utf8Cache = new Map<string, Uint8Array>();
const utf8CacheMax = 4096;

function createString(builder: flatbuffers.Builder, text: string): flatbuffers.Offset {
  return builder.createString(utf8Of(text));
}

function writeTensor(builder: flatbuffers.Builder, value: TensorValue): flatbuffers.Offset {
  const code = dtypeCodes[value.dtype];
  if (code === undefined) throw new TensorFormatError(`tensor '${value.name}': unknown dtype '${String(value.dtype)}'`);
  const name = createString(builder, value.name);
  builder.startVector(4, value.dims.length, 4);
  for (let i = value.dims.length - 1; i >= 0; i--) builder.addInt32(value.dims[i]! | 0);
  const dims = builder.endVector();
  // Aligned to 8 from the end, and so from the start of the finished buffer.
  builder.startVector(1, value.data.length, 8);
  // What createByteVector does, with the alignment it does not offer (fields the typings hide).
  const open = builder as unknown as { space: number; bb: flatbuffers.ByteBuffer };
  open.bb.setPosition((open.space -= value.data.length));
  open.bb.bytes().set(value.data, open.space);
  const data = builder.endVector();
  Tensor.startTensor(builder);
  Tensor.addName(builder, name);
  Tensor.addDtype(builder, code);
  Tensor.addDims(builder, dims);
  Tensor.addData(builder, data);
  return Tensor.endTensor(builder);
}

function writeTensors(builder: flatbuffers.Builder, values: readonly TensorValue[]): flatbuffers.Offset {
  const offsets = values.map((value) => writeTensor(builder, value));
  builder.startVector(4, offsets.length, 4);
  for (let i = offsets.length - 1; i >= 0; i--) builder.addOffset(offsets[i]!);
  return builder.endVector();
}

function writeU16(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value;
  bytes[at + 1] = value >>> 8;
}

function utf8Of(text: string): Uint8Array {
  let bytes = utf8Cache.get(text);
  if (bytes === undefined) {
    bytes = textEncoder.encode(text);
    if (utf8Cache.size < utf8CacheMax) utf8Cache.set(text, bytes);
  }
  return bytes;
}

const align4 = (n: number) => (n + 3) & ~3;
/** Bytes of a string vector: length, bytes, NUL, padding. */
const stringBytes = (utf8: Uint8Array) => align4(4 + utf8.length + 1);

/**
 * Writes `text` as a FlatBuffers string at `at` (length, bytes, NUL) and the offset to it
 * at `from`; returns the position after it (4-aligned).
 */
function putString(bytes: Uint8Array, from: number, at: number, utf8: Uint8Array): number {
  writeU32(bytes, from, at - from);
  writeU32(bytes, at, utf8.length);
  bytes.set(utf8, at + 4);
  return at + stringBytes(utf8);
}

/**
 * Encodes a request; returns a fresh Uint8Array whose data vectors start 8-byte aligned.
 *
 * Written front to back by hand, every offset pointing forward as FlatBuffers requires: the
 * layout the generated code and any FlatBuffers reader decode (and the same one the
 * AssemblyScript SDK writes, docs/abi.md). It is on every request's path, several times
 * faster than the generic builder.
 */
export function encodeInferRequest(request: Partial<InferRequestValue> & { inputs: readonly TensorValue[] }): Uint8Array {
  const inputs = request.inputs;
  const model = utf8Of(request.model ?? '');
  const names = inputs.map((input) => utf8Of(input.name));
  // Sizes: root 4, vtable 12, table 20, model string, inputs vector, then per tensor.
  let size = 4 + 12 + 20 + stringBytes(model) + 4 + 4 * inputs.length;
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i]!;
    if (dtypeCodes[input.dtype] === undefined) throw new TensorFormatError(`tensor '${input.name}': unknown dtype '${String(input.dtype)}'`);
    size += 12 + 20 + stringBytes(names[i]!) + 4 + 4 * input.dims.length;
    size += ((size + 4) & 7) === 0 ? 0 : 4; // the data's length word sits at 4 mod 8
    size += align4(4 + input.data.length);
  }
  const bytes = new Uint8Array(size);
  writeU32(bytes, 0, 16);
  // InferRequest vtable at 4: 4 fields (id, model, inputs, reset_state).
  writeU16(bytes, 4, 12);
  writeU16(bytes, 6, 20);
  writeU16(bytes, 8, 4);
  writeU16(bytes, 10, 8);
  writeU16(bytes, 12, 12);
  writeU16(bytes, 14, request.resetState === true ? 16 : 0);
  // The table at 16.
  writeU32(bytes, 16, 16 - 4);
  writeU32(bytes, 20, (request.id ?? 0) >>> 0);
  if (request.resetState === true) bytes[32] = 1;
  let at = putString(bytes, 24, 36, model);
  writeU32(bytes, 28, at - 28);
  writeU32(bytes, at, inputs.length);
  const slots = at + 4;
  at = slots + 4 * inputs.length;
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i]!;
    const vtable = at;
    writeU16(bytes, vtable, 12);
    writeU16(bytes, vtable + 2, 20);
    writeU16(bytes, vtable + 4, 4); // name
    writeU16(bytes, vtable + 6, 16); // dtype
    writeU16(bytes, vtable + 8, 8); // dims
    writeU16(bytes, vtable + 10, 12); // data
    const table = vtable + 12;
    writeU32(bytes, slots + 4 * i, table - (slots + 4 * i));
    writeU32(bytes, table, table - vtable);
    bytes[table + 16] = dtypeCodes[input.dtype];
    at = putString(bytes, table + 4, table + 20, names[i]!);
    writeU32(bytes, table + 8, at - (table + 8));
    writeU32(bytes, at, input.dims.length);
    for (let d = 0; d < input.dims.length; d++) writeU32(bytes, at + 4 + 4 * d, input.dims[d]!);
    at += 4 + 4 * input.dims.length;
    if (((at + 4) & 7) !== 0) at += 4;
    writeU32(bytes, table + 12, at - (table + 12));
    writeU32(bytes, at, input.data.length);
    bytes.set(input.data, at + 4);
    at += align4(4 + input.data.length);
  }
  return bytes;
}

/** Encodes a response; returns a fresh Uint8Array. */
export function encodeInferResponse(response: InferResponseValue): Uint8Array {
  const builder = sharedBuilder;
  builder.clear();
  const outputs = writeTensors(builder, response.outputs);
  const model = createString(builder, response.model);
  const version = createString(builder, response.version);
  const error = response.error.length === 0 ? 0 : builder.createString(response.error);
  InferResponse.startInferResponse(builder);
  // Written even when 0, so that `ResponseTemplate` can patch it in place.
  builder.forceDefaults(true);
  InferResponse.addId(builder, response.id >>> 0);
  builder.forceDefaults(false);
  InferResponse.addModel(builder, model);
  InferResponse.addVersion(builder, version);
  InferResponse.addOutputs(builder, outputs);
  if (response.errorCode !== 'none') InferResponse.addErrorCode(builder, inferErrorCodes[response.errorCode]);
  if (error !== 0) InferResponse.addError(builder, error);
  builder.finish(InferResponse.endInferResponse(builder));
  return builder.asUint8Array().slice();
}

// ── checked decoding ─────────────────────────────────────────────────────────────────

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Short strings seen before (names, model, version), keyed by a hash of their bytes. */
const decodedCache = new Map<number, { bytes: Uint8Array; text: string }>();

/** UTF-8 at bytes[start, start+count), from the cache when the same bytes were decoded before; null if not UTF-8. */
function decodeCached(bytes: Uint8Array, start: number, count: number): string | null {
  if (count > tensorDecodedCacheBytesMax) {
    try {
      return utf8.decode(bytes.subarray(start, start + count));
    } catch {
      return null;
    }
  }
  let hash = 0x811c9dc5 ^ count;
  for (let i = start; i < start + count; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
  const hit = decodedCache.get(hash);
  if (hit !== undefined && hit.bytes.length === count) {
    let same = true;
    for (let i = 0; i < count; i++) {
      if (hit.bytes[i] !== bytes[start + i]) {
        same = false;
        break;
      }
    }
    if (same) return hit.text;
  }
  let text: string;
  try {
    text = utf8.decode(bytes.subarray(start, start + count));
  } catch {
    return null;
  }
  if (decodedCache.size < tensorDecodedCacheMax) decodedCache.set(hash, { bytes: bytes.slice(start, start + count), text });
  return text;
}

/** A checked table: where it is and where its vtable says its fields are. */
interface Table {
  position: number;
  vtable: number;
  vtableBytes: number;
  tableBytes: number;
  what: string;
}

/**
 * Bounds-checked reads over a payload; every failure names what it was reading. Reads are
 * by hand (no DataView, no closures): decoding is on every request's path.
 */
class Reader {
  constructor(
    readonly bytes: Uint8Array,
    private readonly what: string,
  ) {}

  fail(problem: string): never {
    throw new TensorFormatError(`${this.what} is not a valid ${problem}`);
  }

  u32(at: number, field: string): number {
    if (!(at >= 0 && at + 4 <= this.bytes.length)) this.fail(`FlatBuffer: ${field} lies outside the ${this.bytes.length} bytes`);
    return readU32(this.bytes, at);
  }

  u16(at: number, field: string): number {
    const b = this.bytes;
    if (!(at >= 0 && at + 2 <= b.length)) this.fail(`FlatBuffer: ${field} lies outside the ${b.length} bytes`);
    return b[at]! | (b[at + 1]! << 8);
  }

  u8(at: number, field: string): number {
    if (!(at >= 0 && at < this.bytes.length)) this.fail(`FlatBuffer: ${field} lies outside the ${this.bytes.length} bytes`);
    return this.bytes[at]!;
  }

  /** Checks the table at `position` and its vtable. */
  table(position: number, what: string): Table {
    const vtable = position - (this.u32(position, `${what} table`) | 0);
    const vtableBytes = this.u16(vtable, `${what} vtable`);
    const tableBytes = this.u16(vtable + 2, `${what} vtable`);
    if (vtableBytes < 4 || vtableBytes % 2 !== 0 || vtable + vtableBytes > this.bytes.length || position + tableBytes > this.bytes.length) {
      this.fail(`FlatBuffer: the ${what} vtable is malformed`);
    }
    return { position, vtable, vtableBytes, tableBytes, what };
  }

  /** The absolute position of field `slot` of `table`, or 0 when absent. */
  field(table: Table, slot: number): number {
    const entry = 4 + 2 * slot;
    if (entry >= table.vtableBytes) return 0;
    const b = this.bytes;
    const offset = b[table.vtable + entry]! | (b[table.vtable + entry + 1]! << 8);
    if (offset === 0) return 0;
    if (offset >= table.tableBytes) this.fail(`FlatBuffer: ${table.what} field ${slot} lies outside its table`);
    return table.position + offset;
  }

  /** The start and length of the vector the offset at `at` points to. */
  vector(at: number, elementBytes: number, what: string): { start: number; count: number } {
    const position = at + this.u32(at, what);
    const count = this.u32(position, `${what} length`);
    const start = position + 4;
    if (start + count * elementBytes > this.bytes.length) this.fail(`FlatBuffer: ${what} (${count} elements) runs past the end of the payload`);
    return { start, count };
  }

  string(at: number, what: string): string {
    if (at === 0) return '';
    const { start, count } = this.vector(at, 1, what);
    return decodeCached(this.bytes, start, count) ?? this.fail(`FlatBuffer: ${what} is not UTF-8`);
  }

  root(): number {
    return this.u32(0, 'root offset');
  }
}

function readTensor(reader: Reader, position: number, where: string): TensorValue {
  const table = reader.table(position, where);
  const name = reader.string(reader.field(table, 0), `${where} name`);
  const dtypeAt = reader.field(table, 1);
  const code = dtypeAt === 0 ? 0 : reader.u8(dtypeAt, `tensor '${name}' dtype`);
  const dtype = dtypeNames[code];
  if (dtype === undefined) reader.fail(`request: tensor '${name}' has dtype code ${code}; use one of ${Object.keys(dtypeCodes).join(', ')}`);
  const dims: number[] = [];
  const dimsAt = reader.field(table, 2);
  if (dimsAt !== 0) {
    const { start, count } = reader.vector(dimsAt, 4, `tensor '${name}' dims`);
    if (count > tensorRankMax) reader.fail(`request: tensor '${name}' has ${count} dims, more than ${tensorRankMax}`);
    for (let i = 0; i < count; i++) dims.push(reader.u32(start + 4 * i, `tensor '${name}' dims`));
  }
  let data: Uint8Array = empty;
  const dataAt = reader.field(table, 3);
  if (dataAt !== 0) {
    const { start, count } = reader.vector(dataAt, 1, `tensor '${name}' data`);
    data = reader.bytes.subarray(start, start + count);
  }
  const expected = elementCount(dims) * dtypeBytes[dtype];
  if (data.length !== expected) {
    throw new TensorFormatError(
      `tensor '${name}': its data holds ${data.length} bytes, but dims [${dims.join(', ')}] of ${dtype} need ${expected}; ` +
        'send product(dims) * element size bytes, little-endian, row-major',
    );
  }
  return { name, dtype, dims, data };
}

const empty = new Uint8Array(0);

function readTensors(reader: Reader, at: number, what: string): TensorValue[] {
  if (at === 0) return [];
  const { start, count } = reader.vector(at, 4, what);
  const tensors: TensorValue[] = [];
  for (let i = 0; i < count; i++) {
    const slot = start + 4 * i;
    tensors.push(readTensor(reader, slot + reader.u32(slot, `${what}[${i}]`), `${what}[${i}]`));
  }
  return tensors;
}

/** Decodes and checks a request. Throws TensorFormatError saying what is wrong. */
export function decodeInferRequest(bytes: Uint8Array): InferRequestValue {
  const reader = new Reader(bytes, `the payload (${bytes.length} bytes)`);
  if (bytes.length < 8) reader.fail('InferRequest: it is shorter than any FlatBuffer; build it with encodeInferRequest');
  const table = reader.table(reader.root(), 'InferRequest');
  const idAt = reader.field(table, 0);
  const resetAt = reader.field(table, 3);
  return {
    id: idAt === 0 ? 0 : reader.u32(idAt, 'InferRequest id'),
    model: reader.string(reader.field(table, 1), 'InferRequest model'),
    inputs: readTensors(reader, reader.field(table, 2), 'inputs'),
    resetState: resetAt !== 0 && reader.u8(resetAt, 'InferRequest reset_state') !== 0,
  };
}

/** Decodes and checks a response. Throws TensorFormatError saying what is wrong. */
export function decodeInferResponse(bytes: Uint8Array): InferResponseValue {
  const reader = new Reader(bytes, `the payload (${bytes.length} bytes)`);
  if (bytes.length < 8) reader.fail('InferResponse: it is shorter than any FlatBuffer');
  const table = reader.table(reader.root(), 'InferResponse');
  const idAt = reader.field(table, 0);
  const codeAt = reader.field(table, 4);
  const code = codeAt === 0 ? 0 : reader.u8(codeAt, 'InferResponse error_code');
  return {
    id: idAt === 0 ? 0 : reader.u32(idAt, 'InferResponse id'),
    model: reader.string(reader.field(table, 1), 'InferResponse model'),
    version: reader.string(reader.field(table, 2), 'InferResponse version'),
    outputs: readTensors(reader, reader.field(table, 3), 'outputs'),
    errorCode: errorCodeNames[code] ?? 'run_failed',
    error: reader.string(reader.field(table, 5), 'InferResponse error'),
  };
}

/**
 * Responses of one batch share everything but their id and their outputs' data: the first
 * is encoded with the builder, the rest are copies of its bytes with those patched in.
 */
export class ResponseTemplate {
  private readonly bytes: Uint8Array;
  private readonly idAt: number;
  private readonly dataAt: number[];
  private readonly dataBytes: number[];

  constructor(first: InferResponseValue) {
    this.bytes = encodeInferResponse(first);
    const reader = new Reader(this.bytes, 'a response template');
    const table = reader.table(reader.root(), 'InferResponse');
    this.idAt = reader.field(table, 0);
    this.dataAt = [];
    this.dataBytes = [];
    const { start, count } = reader.vector(reader.field(table, 3), 4, 'outputs');
    for (let i = 0; i < count; i++) {
      const slot = start + 4 * i;
      const tensorTable = reader.table(slot + reader.u32(slot, 'output'), 'output');
      const data = reader.vector(reader.field(tensorTable, 3), 1, 'output data');
      this.dataAt.push(data.start);
      this.dataBytes.push(data.count);
    }
  }

  /** True when `outputs` fit the template: same count and byte lengths. */
  fits(outputs: readonly TensorValue[]): boolean {
    if (outputs.length !== this.dataAt.length) return false;
    for (let i = 0; i < outputs.length; i++) if (outputs[i]!.data.length !== this.dataBytes[i]) return false;
    return true;
  }

  /** The response for `id` with `outputs` (which must fit; same names, dtypes and dims as the first). */
  encode(id: number, outputs: readonly TensorValue[]): Uint8Array {
    const bytes = this.bytes.slice();
    writeU32(bytes, this.idAt, id);
    for (let i = 0; i < outputs.length; i++) bytes.set(outputs[i]!.data, this.dataAt[i]!);
    return bytes;
  }
}

/** The output named `name` of a response, or undefined. */
export function outputNamed(response: InferResponseValue, name: string): TensorValue | undefined {
  return response.outputs.find((output) => output.name === name);
}
