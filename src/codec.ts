/**
 * Bytes in and out of the kernel: the FlatBuffers `Envelope` codec (worker rings, `full`
 * log records) and the JSON / UTF-8 payload helpers JS actors use.
 *
 * uint64 without BigInt: `seq` and `tick` are uint64 on the wire but JS numbers everywhere
 * else (at most 2^53-1, asserted on encode). flatc's generated adders and getters go
 * through BigInt (`BigInt('0')` on every call, then `asIntN` and shifts), which made a
 * one-field encode cost ~0.8 us here. `addFieldUint64` and `readUint64Field` write and read
 * the two 32-bit halves directly with the Builder's public API, producing the same bytes
 * as `addFieldInt64` (a test checks them against the generated accessors).
 */
import * as flatbuffers from 'flatbuffers';
import { Envelope as EnvelopeTable } from '../schemas/generated/lockstep/envelope.ts';
import { PayloadEncodingError } from './errors.ts';
import type { EnvelopeRecord } from './log/types.ts';

const two32 = 0x1_0000_0000;

/**
 * Vtable slots (field index in declaration order) of the fields we access ourselves.
 * They must match `schemas/envelope.fbs`; `property-tests/codec.test.ts` decodes what we
 * write with flatc's generated getters to prove it.
 */
export const envelopeSlot = { seq: 2, tick: 3, payload: 5, kind: 6, correlation: 7 } as const;

/** Byte offset of field `slot` inside a vtable (two uint16 header fields, then one uint16 per slot). */
export function vtableOffsetOf(slot: number): number {
  return 4 + 2 * slot;
}

/**
 * Adds a uint64 field from a JS number without creating a BigInt. Same bytes as
 * `builder.addFieldInt64(slot, BigInt(value), 0n)`: zero is the default and is omitted
 * (we never turn on forceDefaults). Takes an integer in [0, 2^53-1]; the caller has checked it.
 */
export function addFieldUint64(builder: flatbuffers.Builder, slot: number, value: number): void {
  if (value === 0) return;
  builder.prep(8, 0);
  // The builder grows downwards: the high half goes first so it lands at the higher address
  // (little-endian uint64).
  builder.writeInt32(Math.floor(value / two32));
  builder.writeInt32(value >>> 0);
  builder.slot(slot);
}

/**
 * Reads a uint64 field as a JS number without creating a BigInt. Takes the buffer, the
 * table's position and the field's vtable slot; returns the value, 0 when the field is
 * absent. A value above 2^53-1 comes back rounded: callers that read untrusted bytes check
 * `Number.isSafeInteger` on the result.
 */
export function readUint64Field(bb: flatbuffers.ByteBuffer, tablePosition: number, slot: number): number {
  const fieldOffset = bb.__offset(tablePosition, vtableOffsetOf(slot));
  if (fieldOffset === 0) return 0;
  const at = tablePosition + fieldOffset;
  return bb.readUint32(at + 4) * two32 + bb.readUint32(at);
}

/**
 * A plain Uint8Array view of `bytes`. A Node Buffer is a Uint8Array whose `slice` returns a
 * view instead of a copy, so decoders normalise their input before they copy anything out.
 */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Throws a RangeError (a programmer error: the caller built a bad record) unless `value` is a uint32. */
export function assertUint32(value: number, what: string): void {
  if (value >>> 0 !== value) {
    throw new RangeError(`${what} must be an integer in [0, 2^32-1], got ${String(value)}`);
  }
}

/** Throws a RangeError unless `value` is an integer in [0, 2^53-1], the uint64 range we keep as a number. */
export function assertUint53(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `${what} must be an integer in [0, 2^53-1] (a uint64 kept as a JS number), got ${String(value)}`,
    );
  }
}

/** Throws a RangeError unless `value` is an integer in [0, 255]. */
export function assertUint8(value: number, what: string): void {
  if ((value & 0xff) !== value) {
    throw new RangeError(`${what} must be an integer in [0, 255], got ${String(value)}`);
  }
}

/**
 * Writes one Envelope table into `builder` (which must not be inside another table or
 * vector). Takes a record whose fields are in range; returns the table's offset, for a
 * root (`finish`) or a vector of envelopes. Throws RangeError on an out-of-range field.
 * An empty payload is written as an absent field; decoding gives an empty Uint8Array back.
 */
export function writeEnvelope(builder: flatbuffers.Builder, envelope: EnvelopeRecord): flatbuffers.Offset {
  assertUint32(envelope.topic, 'envelope topic');
  assertUint32(envelope.sender, 'envelope sender');
  assertUint53(envelope.seq, 'envelope seq');
  assertUint53(envelope.tick, 'envelope tick');
  assertUint8(envelope.priority, 'envelope priority');
  const kind = envelope.kind ?? 0;
  const correlation = envelope.correlation ?? 0;
  assertUint8(kind, 'envelope kind');
  assertUint53(correlation, 'envelope correlation');
  const payload = envelope.payload;
  const payloadOffset = payload.length === 0 ? 0 : builder.createByteVector(payload);
  EnvelopeTable.startEnvelope(builder);
  // Widest fields first: fewer alignment pad bytes between them.
  addFieldUint64(builder, envelopeSlot.seq, envelope.seq);
  addFieldUint64(builder, envelopeSlot.tick, envelope.tick);
  // Zero (a plain message) is the default and is not written: such an envelope has the
  // bytes it had before asks and timers existed.
  addFieldUint64(builder, envelopeSlot.correlation, correlation);
  if (payloadOffset !== 0) EnvelopeTable.addPayload(builder, payloadOffset);
  EnvelopeTable.addTopic(builder, envelope.topic);
  EnvelopeTable.addSender(builder, envelope.sender);
  EnvelopeTable.addPriority(builder, envelope.priority);
  EnvelopeTable.addKind(builder, kind);
  return EnvelopeTable.endEnvelope(builder);
}

/**
 * Reads the Envelope table `table` into a plain record. The payload is copied, so the
 * record stays valid when the source bytes (a ring slot, a file buffer) are reused.
 * Throws RangeError when seq or tick exceed 2^53-1 or the payload vector runs past the buffer.
 */
export function readEnvelope(table: EnvelopeTable): EnvelopeRecord {
  const bb = table.bb!;
  const seq = readUint64Field(bb, table.bb_pos, envelopeSlot.seq);
  const tick = readUint64Field(bb, table.bb_pos, envelopeSlot.tick);
  assertUint53(seq, 'decoded envelope seq');
  assertUint53(tick, 'decoded envelope tick');
  let payload: Uint8Array;
  const payloadField = bb.__offset(table.bb_pos, vtableOffsetOf(envelopeSlot.payload));
  if (payloadField === 0) {
    payload = new Uint8Array(0);
  } else {
    // Bounds-checked by hand: the generated payloadArray() views the whole underlying
    // ArrayBuffer, so a garbled length could silently read past this buffer.
    const start = bb.__vector(table.bb_pos + payloadField);
    const length = bb.__vector_len(table.bb_pos + payloadField);
    if (length < 0 || start < 0 || start + length > bb.capacity()) {
      throw new RangeError('the envelope payload runs past the end of the buffer');
    }
    payload = Uint8Array.prototype.slice.call(bb.bytes(), start, start + length);
  }
  const record: EnvelopeRecord = {
    topic: table.topic(),
    sender: table.sender(),
    seq,
    tick,
    priority: table.priority(),
    payload,
  };
  // Set only when present, so a plain message reads back as the record it was written from.
  const kind = table.kind();
  if (kind !== 0) record.kind = kind;
  const correlation = readUint64Field(bb, table.bb_pos, envelopeSlot.correlation);
  if (correlation !== 0) {
    assertUint53(correlation, 'decoded envelope correlation');
    record.correlation = correlation;
  }
  return record;
}

/** Capacity the shared builder starts with; a ~100-byte envelope never makes it grow. */
const sharedBuilderBytesInitial = 1024;
/**
 * A shared builder that grew past this (one huge payload) is replaced, so one outlier
 * does not pin megabytes for the life of the process.
 */
const sharedBuilderBytesMax = 1 << 20;
let sharedBuilder = new flatbuffers.Builder(sharedBuilderBytesInitial);

/**
 * Encodes one envelope as a standalone FlatBuffer. Takes the record and optionally a
 * builder to use (cleared first); by default reuses one module-level builder.
 * Returns a fresh Uint8Array the caller owns (copied out of the builder, so the next
 * encode cannot overwrite it). Throws RangeError on an out-of-range field (seq or tick
 * above 2^53-1, priority above 255, topic or sender outside uint32).
 */
export function encodeEnvelope(envelope: EnvelopeRecord, builder?: flatbuffers.Builder): Uint8Array {
  const target = builder ?? sharedBuilder;
  target.clear();
  target.finish(writeEnvelope(target, envelope));
  const bytes = target.asUint8Array().slice();
  if (builder === undefined && target.dataBuffer().capacity() > sharedBuilderBytesMax) {
    sharedBuilder = new flatbuffers.Builder(sharedBuilderBytesInitial);
  }
  return bytes;
}

/**
 * Decodes bytes written by `encodeEnvelope`. Returns a record with a copied payload.
 * Throws RangeError when the bytes are too short to hold a FlatBuffer root, or when a
 * field is out of range or runs past the end (a garbled buffer).
 */
export function decodeEnvelope(bytes: Uint8Array): EnvelopeRecord {
  if (bytes.length < 8) {
    throw new RangeError(`an encoded envelope is at least 8 bytes, got ${bytes.length}`);
  }
  const bb = new flatbuffers.ByteBuffer(plainBytes(bytes));
  return readEnvelope(EnvelopeTable.getRootAsEnvelope(bb));
}

// ---------------------------------------------------------------------------------------
// UTF-8 and JSON payloads

const utf8Encoder = new TextEncoder();
// fatal: malformed UTF-8 is an error, never silently replaced with U+FFFD.
const utf8StrictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** `String.prototype.isWellFormed` is in Node 20 but not in the ES2023 lib this repo compiles against. */
type WellFormedCheckable = string & { isWellFormed(): boolean };

/** Index of the first lone surrogate in `text`, or -1. */
function loneSurrogateIndex(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return i;
    }
    if (unit >= 0xdc00 && unit <= 0xdfff) return i;
  }
  return -1;
}

/**
 * Encodes text as UTF-8. Throws PayloadEncodingError when the string holds a lone
 * surrogate, which UTF-8 cannot carry (TextEncoder would silently turn it into U+FFFD).
 */
export function utf8Encode(text: string): Uint8Array {
  if (!(text as WellFormedCheckable).isWellFormed()) {
    const index = loneSurrogateIndex(text);
    throw new PayloadEncodingError(
      `payload text has a lone UTF-16 surrogate at index ${index}, which UTF-8 cannot carry; ` +
        'fix the string (it was probably cut in the middle of a character) or send bytes',
    );
  }
  return utf8Encoder.encode(text);
}

/** Decodes UTF-8 bytes. Throws PayloadEncodingError when they are not valid UTF-8. */
export function utf8Decode(bytes: Uint8Array): string {
  try {
    return utf8StrictDecoder.decode(bytes);
  } catch {
    throw new PayloadEncodingError(
      `payload of ${bytes.length} bytes is not valid UTF-8; decode it as bytes, or have the sender use utf8Encode`,
    );
  }
}

/** A value JSON carries without loss. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Nesting deeper than this is refused: it is almost always a runaway structure, and it bounds the walk. */
export const jsonDepthMax = 256;

/** Thrown inside the walk; each level adds its path segment while the stack unwinds, so a success pays nothing for paths. */
class JsonPathFailure {
  readonly segments: string[] = [];
  constructor(
    readonly problem: string,
    readonly hint: string,
  ) {}
}

const identifierPattern = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function keySegment(key: string): string {
  return identifierPattern.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

/** Names a non-plain object and says what to send instead. */
function describeNonPlain(value: object): JsonPathFailure {
  if (value instanceof Map) return new JsonPathFailure('a Map is not JSON', 'send Object.fromEntries(map) or an array of [key, value] pairs');
  if (value instanceof Set) return new JsonPathFailure('a Set is not JSON', 'send an array ([...set])');
  if (value instanceof Date) return new JsonPathFailure('a Date is not JSON', 'send date.toISOString() or, better, a tick number');
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    return new JsonPathFailure(`a ${value.constructor.name} is not JSON`, 'send the bytes as the payload itself, or an array of numbers');
  }
  if (value instanceof RegExp) return new JsonPathFailure('a RegExp is not JSON', 'send its source as a string');
  if (value instanceof Error) return new JsonPathFailure('an Error is not JSON', 'send { name, message } as a plain object');
  if (Array.isArray(value)) return new JsonPathFailure('an Array subclass is not JSON', 'send a plain array (Array.from(value))');
  const name = (value.constructor as { name?: unknown } | undefined)?.name;
  const described = typeof name === 'string' && name !== '' ? `an instance of class ${name}` : 'an object with a custom prototype';
  return new JsonPathFailure(`${described} is not JSON`, 'send a plain object with its fields');
}

/**
 * Checks that JSON.stringify would carry `value` without loss. Takes the value, the
 * objects currently being walked (for cycle detection: ancestors only, so a shared
 * sub-object that is not a cycle is allowed) and the depth. Throws JsonPathFailure.
 */
function checkJson(value: unknown, ancestors: object[], depth: number): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      // -0 is allowed and arrives as 0: rejecting it would break ordinary arithmetic results.
      if (!Number.isFinite(value)) throw new JsonPathFailure(`${value} is not JSON`, 'send a finite number or null');
      return;
    case 'undefined':
      throw new JsonPathFailure('undefined is not JSON (it would be dropped or turned into null)', 'omit the field or send null');
    case 'bigint':
      throw new JsonPathFailure('a BigInt is not JSON', 'send it as a string (value.toString()) or, if it fits 2^53, a number');
    case 'function':
      throw new JsonPathFailure('a function is not JSON', 'send data, not code');
    case 'symbol':
      throw new JsonPathFailure('a symbol is not JSON', 'send a string');
    case 'object':
      break;
  }
  if (value === null) return;
  const object = value as object;
  for (let i = 0; i < depth; i++) {
    if (ancestors[i] === object) {
      throw new JsonPathFailure('the value contains itself (a cycle)', 'send a tree: replace the back reference with an id');
    }
  }
  if (depth >= jsonDepthMax) {
    throw new JsonPathFailure(`nesting deeper than ${jsonDepthMax} levels`, 'flatten the structure');
  }
  ancestors[depth] = object;
  if (Array.isArray(object)) {
    if (Object.getPrototypeOf(object) !== Array.prototype) throw describeNonPlain(object);
    const array = object as unknown[];
    for (let i = 0; i < array.length; i++) {
      const element = array[i];
      if (element === undefined && !(i in array)) {
        const failure = new JsonPathFailure('a hole in a sparse array is not JSON (it would become null)', 'fill it with null');
        failure.segments.push(`[${i}]`);
        throw failure;
      }
      try {
        checkJson(element, ancestors, depth + 1);
      } catch (error) {
        if (error instanceof JsonPathFailure) error.segments.push(`[${i}]`);
        throw error;
      }
    }
    return;
  }
  const prototype = Object.getPrototypeOf(object) as unknown;
  if (prototype !== Object.prototype && prototype !== null) throw describeNonPlain(object);
  if (Object.getOwnPropertySymbols(object).length > 0) {
    throw new JsonPathFailure('an object with symbol keys is not JSON (they would be dropped)', 'use string keys');
  }
  const record = object as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    try {
      checkJson(record[key], ancestors, depth + 1);
    } catch (error) {
      if (error instanceof JsonPathFailure) error.segments.push(keySegment(key));
      throw error;
    }
  }
}

/**
 * Encodes a JSON value as UTF-8 JSON text. Takes the value and the name to start error
 * paths with. Returns the bytes. Throws PayloadEncodingError naming the path
 * (`payload.items[3].at: NaN is not JSON; send a finite number or null`) when JSON.stringify
 * would silently change the value: undefined, functions, symbols, BigInt, NaN/Infinity,
 * cycles, sparse arrays, symbol keys, or objects that are not plain (Map, Set, Date, class
 * instances, typed arrays). -0 is the one exception: it is sent as 0.
 */
/**
 * Calls `use` with `value` encoded as JSON (see jsonEncode); for the asynchronous JSON twins
 * of a verb: a value JSON would mangle rejects the promise rather than throwing.
 */
export function withJsonPayload<T>(value: unknown, use: (payload: Uint8Array) => Promise<T>): Promise<T> {
  let payload: Uint8Array;
  try {
    payload = jsonEncode(value);
  } catch (error) {
    return Promise.reject(error);
  }
  return use(payload);
}

export function jsonEncode(value: unknown, pathRoot = 'payload'): Uint8Array {
  try {
    checkJson(value, [], 0);
  } catch (error) {
    if (error instanceof JsonPathFailure) {
      const path = pathRoot + error.segments.reverse().join('');
      throw new PayloadEncodingError(`${path}: ${error.problem}; ${error.hint}`);
    }
    throw error;
  }
  // JSON.stringify escapes lone surrogates as \uXXXX, so its text is well-formed and
  // TextEncoder loses nothing.
  return utf8Encoder.encode(JSON.stringify(value));
}

/**
 * Decodes UTF-8 JSON bytes. Returns the value. Throws PayloadEncodingError when the bytes
 * are not UTF-8 or not JSON, quoting the start of the text.
 */
export function jsonDecode(bytes: Uint8Array): JsonValue {
  const text = utf8Decode(bytes);
  try {
    return JSON.parse(text) as JsonValue;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const excerptCharsMax = 60;
    const excerpt = text.length > excerptCharsMax ? `${text.slice(0, excerptCharsMax)}...` : text;
    throw new PayloadEncodingError(
      `payload is not valid JSON (${reason}); it starts ${JSON.stringify(excerpt)}. ` +
        'Decode it as text or bytes, or have the sender use jsonEncode',
    );
  }
}
