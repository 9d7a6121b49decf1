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
import { LockstepError } from '../errors.ts';

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

/** Most dims a tensor may have: ONNX allows more, no model here needs them. */
export const tensorRankMax = 8;

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

/** A payload that is not the FlatBuffer it should be, or a tensor whose bytes do not match its dims. */
export class TensorFormatError extends LockstepError {
  constructor(message: string) {
    super('LOCKSTEP_TENSOR_FORMAT', message);
  }
}

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

function writeTensor(builder: flatbuffers.Builder, value: TensorValue): flatbuffers.Offset {
  const code = dtypeCodes[value.dtype];
  if (code === undefined) throw new TensorFormatError(`tensor '${value.name}': unknown dtype '${String(value.dtype)}'`);
  const name = builder.createString(value.name);
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

/** Encodes a request; returns a fresh Uint8Array (8-byte aligned data vectors). */
export function encodeInferRequest(request: Partial<InferRequestValue> & { inputs: readonly TensorValue[] }): Uint8Array {
  const builder = sharedBuilder;
  builder.clear();
  const inputs = writeTensors(builder, request.inputs);
  const model = builder.createString(request.model ?? '');
  InferRequest.startInferRequest(builder);
  InferRequest.addId(builder, (request.id ?? 0) >>> 0);
  InferRequest.addModel(builder, model);
  InferRequest.addInputs(builder, inputs);
  if (request.resetState === true) InferRequest.addResetState(builder, true);
  builder.finish(InferRequest.endInferRequest(builder));
  return builder.asUint8Array().slice();
}

/** Encodes a response; returns a fresh Uint8Array. */
export function encodeInferResponse(response: InferResponseValue): Uint8Array {
  const builder = sharedBuilder;
  builder.clear();
  const outputs = writeTensors(builder, response.outputs);
  const model = builder.createString(response.model);
  const version = builder.createString(response.version);
  const error = response.error.length === 0 ? 0 : builder.createString(response.error);
  InferResponse.startInferResponse(builder);
  InferResponse.addId(builder, response.id >>> 0);
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

/** Bounds-checked reads over a payload; every failure names what it was reading. */
class Reader {
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(problem: string): never {
    throw new TensorFormatError(`${this.what} is not a valid ${problem}`);
  }

  u32(at: number, field: string): number {
    if (!(at >= 0 && at + 4 <= this.bytes.length)) this.fail(`FlatBuffer: ${field} lies outside the ${this.bytes.length} bytes`);
    return this.view.getUint32(at, true);
  }

  u16(at: number, field: string): number {
    if (!(at >= 0 && at + 2 <= this.bytes.length)) this.fail(`FlatBuffer: ${field} lies outside the ${this.bytes.length} bytes`);
    return this.view.getUint16(at, true);
  }

  u8(at: number, field: string): number {
    if (!(at >= 0 && at < this.bytes.length)) this.fail(`FlatBuffer: ${field} lies outside the ${this.bytes.length} bytes`);
    return this.bytes[at]!;
  }

  /** Checks the table at `position`; returns a lookup of its fields' absolute positions (0 when absent). */
  table(position: number, what: string): (slot: number) => number {
    const vtable = position - (this.u32(position, `${what} table`) | 0);
    const vtableBytes = this.u16(vtable, `${what} vtable`);
    const tableBytes = this.u16(vtable + 2, `${what} vtable`);
    if (vtableBytes < 4 || vtableBytes % 2 !== 0 || vtable + vtableBytes > this.bytes.length || position + tableBytes > this.bytes.length) {
      this.fail(`FlatBuffer: the ${what} vtable is malformed`);
    }
    return (slot: number) => {
      const entry = 4 + 2 * slot;
      if (entry >= vtableBytes) return 0;
      const offset = this.u16(vtable + entry, `${what} field ${slot}`);
      if (offset === 0) return 0;
      if (offset >= tableBytes) this.fail(`FlatBuffer: ${what} field ${slot} lies outside its table`);
      return position + offset;
    };
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
    try {
      return utf8.decode(this.bytes.subarray(start, start + count));
    } catch {
      return this.fail(`FlatBuffer: ${what} is not UTF-8`);
    }
  }

  root(): number {
    return this.u32(0, 'root offset');
  }
}

function readTensor(reader: Reader, position: number, where: string): TensorValue {
  const field = reader.table(position, where);
  const name = reader.string(field(0), `${where} name`);
  const label = name.length > 0 ? `tensor '${name}'` : where;
  const dtypeAt = field(1);
  const code = dtypeAt === 0 ? 0 : reader.u8(dtypeAt, `${label} dtype`);
  const dtype = dtypeNames[code];
  if (dtype === undefined) reader.fail(`request: ${label} has dtype code ${code}; use one of ${Object.keys(dtypeCodes).join(', ')}`);
  const dims: number[] = [];
  const dimsAt = field(2);
  if (dimsAt !== 0) {
    const { start, count } = reader.vector(dimsAt, 4, `${label} dims`);
    if (count > tensorRankMax) reader.fail(`request: ${label} has ${count} dims, more than ${tensorRankMax}`);
    for (let i = 0; i < count; i++) dims.push(reader.u32(start + 4 * i, `${label} dims`));
  }
  let data: Uint8Array = new Uint8Array(0);
  const dataAt = field(3);
  if (dataAt !== 0) {
    const { start, count } = reader.vector(dataAt, 1, `${label} data`);
    data = reader.bytes.subarray(start, start + count);
  }
  const expected = elementCount(dims) * dtypeBytes[dtype];
  if (data.length !== expected) {
    throw new TensorFormatError(
      `${label}: its data holds ${data.length} bytes, but dims [${dims.join(', ')}] of ${dtype} need ${expected}; ` +
        'send product(dims) * element size bytes, little-endian, row-major',
    );
  }
  return { name, dtype, dims, data };
}

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
  const field = reader.table(reader.root(), 'InferRequest');
  const idAt = field(0);
  const resetAt = field(3);
  return {
    id: idAt === 0 ? 0 : reader.u32(idAt, 'InferRequest id'),
    model: reader.string(field(1), 'InferRequest model'),
    inputs: readTensors(reader, field(2), 'inputs'),
    resetState: resetAt !== 0 && reader.u8(resetAt, 'InferRequest reset_state') !== 0,
  };
}

/** Decodes and checks a response. Throws TensorFormatError saying what is wrong. */
export function decodeInferResponse(bytes: Uint8Array): InferResponseValue {
  const reader = new Reader(bytes, `the payload (${bytes.length} bytes)`);
  if (bytes.length < 8) reader.fail('InferResponse: it is shorter than any FlatBuffer');
  const field = reader.table(reader.root(), 'InferResponse');
  const idAt = field(0);
  const codeAt = field(4);
  const code = codeAt === 0 ? 0 : reader.u8(codeAt, 'InferResponse error_code');
  return {
    id: idAt === 0 ? 0 : reader.u32(idAt, 'InferResponse id'),
    model: reader.string(field(1), 'InferResponse model'),
    version: reader.string(field(2), 'InferResponse version'),
    outputs: readTensors(reader, field(3), 'outputs'),
    errorCode: errorCodeNames[code] ?? 'run_failed',
    error: reader.string(field(5), 'InferResponse error'),
  };
}

/** The output named `name` of a response, or undefined. */
export function outputNamed(response: InferResponseValue, name: string): TensorValue | undefined {
  return response.outputs.find((output) => output.name === name);
}
