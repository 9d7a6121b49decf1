/**
 * The replay log's bytes (ADR-007): record bodies, frames and the hash chain. The writer
 * (`writer.ts`) and the reader (`reader.ts`) are built on these; `types.ts` holds the
 * logical records.
 *
 * File layout, all integers little endian:
 *
 *   offset 0   "LKSTPLOG"                                      8-byte magic
 *   offset 8   frame 0 (the Header record)
 *              frame 1..n (Tick records), optionally a last End record
 *
 *   frame:     +-----------+--------------+-------------+-----------------+-----------+
 *              | u32 bytes | u32 check of | u32 crc32   | body: bytes     | zero pad  |
 *              | of body   | `bytes`      | of body     | (LogRecord)     | to 4      |
 *              +-----------+--------------+-------------+-----------------+-----------+
 *              |<------------- frameHeaderBytes (12) --->|
 *
 * Why each part:
 * - The length has its own check (crc32 of its 4 bytes) so that a corrupted length is
 *   reported as corruption. Without it a flipped length byte would make the frame look
 *   longer than the file, which is exactly what a torn tail looks like, and the reader
 *   would cut good records believing the writer had crashed.
 * - The body CRC catches a changed body; the pad must be zero so that no byte of the file
 *   can change unnoticed. (FlatBuffers bodies are already multiples of 4 bytes, so today the
 *   pad is always empty; the rule keeps the format honest if that ever changes.)
 * - Every body stores `prev_chain`, the SHA-256 chain of the records before it:
 *   chain_0 = 32 zero bytes, chain_{i+1} = sha256(chain_i || body_i). A record removed,
 *   reordered or duplicated (each frame individually valid) breaks the chain.
 *
 * Encoding is deterministic (replay compares bodies byte for byte): the same record and
 * chain always give the same bytes, whatever the builder held before. Empty vectors other
 * than `envelopes` are left out (they decode as empty); strings are UTF-8, so a lone
 * surrogate in a string is stored as U+FFFD.
 */
import { hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import * as flatbuffers from 'flatbuffers';
import { End as EndTable } from '../../schemas/generated/lockstep/log/end.ts';
import { Header as HeaderTable } from '../../schemas/generated/lockstep/log/header.ts';
import { LibraryVersion as LibraryVersionTable } from '../../schemas/generated/lockstep/log/library-version.ts';
import { LogRecord as LogRecordTable } from '../../schemas/generated/lockstep/log/log-record.ts';
import { TickRecord as TickRecordTable } from '../../schemas/generated/lockstep/log/tick-record.ts';
import { TopicDeclaration as TopicDeclarationTable } from '../../schemas/generated/lockstep/log/topic-declaration.ts';
import { InjectedInput as InjectedInputTable } from '../../schemas/generated/lockstep/log/injected-input.ts';
import { LifecycleEvent as LifecycleEventTable } from '../../schemas/generated/lockstep/log/lifecycle-event.ts';
import { DropRecord as DropRecordTable } from '../../schemas/generated/lockstep/log/drop-record.ts';
import { Envelope as EnvelopeTable } from '../../schemas/generated/lockstep/envelope.ts';
import { InferenceRecord as InferenceRecordTable } from '../../schemas/generated/lockstep/log/inference-record.ts';
import { ModelVersion as ModelVersionTable } from '../../schemas/generated/lockstep/log/model-version.ts';
import {
  addFieldUint64,
  assertUint32,
  assertUint53,
  assertUint8,
  plainBytes,
  readEnvelope,
  readUint64Field,
  vtableOffsetOf,
  writeEnvelope,
} from '../codec.ts';
import type {
  InferenceProvider,
  InferenceRecord,
  DropRecord,
  EndRecord,
  EnvelopeRecord,
  InjectedInput,
  LifecycleEvent,
  LogHeader,
  LogLevel,
  LogRecord,
  TickRecord,
  TopicDeclaration,
} from './types.ts';
import { recordBodyBytesMax } from '../limits.ts';

// ---------------------------------------------------------------------------------------
// Constants

/** The first 8 bytes of every log file. */
export const LOG_MAGIC = new Uint8Array([0x4c, 0x4b, 0x53, 0x54, 0x50, 0x4c, 0x4f, 0x47]); // "LKSTPLOG"
export const logMagicBytes = 8;
/** u32 body length, u32 check of the length, u32 crc32 of the body. */
export const frameHeaderBytes = 12;
/** Frames start on 4-byte boundaries (the magic is 8 bytes, every frame is padded to 4). */
export const frameAlignBytes = 4;
/** SHA-256 output, the size of `prev_chain`. */
export const chainBytes = 32;

/** chain_0: the chain before the header. Never written to: users copy it. */
export const chainZero: Uint8Array = new Uint8Array(chainBytes);

/**
 * Vtable slots (field index in declaration order in `schemas/log.fbs`) that we read or
 * write without flatc's generated accessors: the uint64 fields (to stay off BigInt) and
 * the vectors we bounds-check or bulk-copy. A test checks them against the generated code.
 */
export const logSlot = {
  logRecordPrevChain: 0,
  tickTick: 0,
  tickActorDigests: 8,
  tickEnvelopes: 9,
  injectedSeq: 1,
  injectedPayload: 3,
  injectedKind: 4,
  injectedTimeoutTicks: 5,
  dropSeq: 3,
  endTicks: 0,
  tickInferences: 10,
  inferenceSeq: 2,
  inferenceResponse: 7,
  modelBytes: 2,
} as const;

const providerCodes: Record<InferenceProvider, number> = { none: 0, cpu: 1, webgpu: 2 };
const providerNames: InferenceProvider[] = ['none', 'cpu', 'webgpu'];

const levelCodes: Record<LogLevel, number> = { digest: 0, full: 1 };

const hostIsLittleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------
// Checksums and the chain

/** CRC-32 (IEEE, reflected 0xEDB88320) lookup table, for the 4-byte length check. */
const crc32Table = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * The check stored after a frame's length: crc32 of the length's 4 little-endian bytes.
 * Computed here rather than with zlib.crc32 because a 4-byte zlib call costs ~0.1 us of
 * binding overhead and a subarray. Takes a uint32, returns a uint32.
 */
export function lengthCheckOf(length: number): number {
  let c = 0xffffffff;
  for (let shift = 0; shift < 32; shift += 8) {
    c = crc32Table[(c ^ (length >>> shift)) & 0xff]! ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** crc32 of `bytes` (zlib's, the same polynomial as `lengthCheckOf`). */
export function bodyChecksumOf(bytes: Uint8Array): number {
  return crc32(bytes) >>> 0;
}

let chainInputScratch = new Uint8Array(4096);

/**
 * The next link of the hash chain, sha256(chain || body), as 64 hex digits. One-shot
 * `crypto.hash` over a scratch copy, with a string result: a 'buffer' result allocates an
 * ArrayBuffer per call, which cost more than the hashing itself for a ~1.5 KB record here
 * (3.4 us against 1.5 us with 'hex').
 */
export function nextChainHex(chain: Uint8Array, body: Uint8Array): string {
  const inputBytes = chainBytes + body.length;
  if (chainInputScratch.length < inputBytes) {
    chainInputScratch = new Uint8Array(Math.max(inputBytes, chainInputScratch.length * 2));
  }
  chainInputScratch.set(chain, 0);
  chainInputScratch.set(body, chainBytes);
  return hash('sha256', chainInputScratch.subarray(0, inputBytes), 'hex');
}

function hexDigitValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30; // 0-9
  if (code >= 0x61 && code <= 0x66) return code - 0x57; // a-f
  return -1;
}

/**
 * Parses a chain written as 64 lower-case hex digits into `out` (a fresh array by
 * default). Returns `out`. Throws RangeError on anything else.
 */
export function chainFromHex(hex: string, out: Uint8Array = new Uint8Array(chainBytes)): Uint8Array {
  let valid = hex.length === chainBytes * 2 && out.length === chainBytes;
  for (let i = 0; valid && i < chainBytes; i++) {
    const high = hexDigitValue(hex.charCodeAt(2 * i));
    const low = hexDigitValue(hex.charCodeAt(2 * i + 1));
    if (high < 0 || low < 0) valid = false;
    else out[i] = (high << 4) | low;
  }
  if (!valid) throw new RangeError(`a chain is ${chainBytes * 2} lower-case hex digits, got '${hex}'`);
  return out;
}

/** The next link of the hash chain as a fresh 32-byte array (see `nextChainHex`). */
export function nextChain(chain: Uint8Array, body: Uint8Array): Uint8Array {
  return chainFromHex(nextChainHex(chain, body));
}

/** Lower-case hex of a chain value. */
export function chainToHex(chain: Uint8Array): string {
  return Buffer.from(chain.buffer, chain.byteOffset, chain.byteLength).toString('hex');
}

function chainsEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------
// Frames

/** Writes a little-endian uint32 (no DataView: one fewer allocation per frame). */
function writeUint32Le(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value & 0xff;
  bytes[at + 1] = (value >>> 8) & 0xff;
  bytes[at + 2] = (value >>> 16) & 0xff;
  bytes[at + 3] = value >>> 24;
}

/** Reads a little-endian uint32. */
export function readUint32Le(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

/** Bytes a frame with a body of `bodyBytes` occupies: header, body and pad. */
export function frameBytesOf(bodyBytes: number): number {
  return frameHeaderBytes + bodyBytes + ((frameAlignBytes - (bodyBytes % frameAlignBytes)) % frameAlignBytes);
}

/**
 * Writes the frame of `body` into `target` at `at` (which must have `frameBytesOf(body.length)`
 * bytes of room). Takes the target, the offset and the body. Throws RangeError when the body
 * is empty or larger than `recordBodyBytesMax`, or the frame does not fit.
 */
export function frameRecordInto(target: Uint8Array, at: number, body: Uint8Array): void {
  if (body.length === 0 || body.length > recordBodyBytesMax) {
    throw new RangeError(`a record body must be 1..${recordBodyBytesMax} bytes, got ${body.length}`);
  }
  const end = at + frameBytesOf(body.length);
  if (at < 0 || end > target.length) throw new RangeError('the frame does not fit its target');
  writeUint32Le(target, at, body.length);
  writeUint32Le(target, at + 4, lengthCheckOf(body.length));
  writeUint32Le(target, at + 8, bodyChecksumOf(body));
  target.set(body, at + frameHeaderBytes);
  target.fill(0, at + frameHeaderBytes + body.length, end);
}

/** Frames a record body into a new Uint8Array holding the whole frame (the body at offset `frameHeaderBytes`). */
export function frameRecord(body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(frameBytesOf(body.length));
  frameRecordInto(frame, 0, body);
  return frame;
}

/**
 * Re-checks a frame built by `frameRecordInto` from its own bytes (paired with the reader's
 * check: a bad frame must never reach the disk). Throws a plain Error, an assertion: only
 * a bug or bad memory gets here.
 */
export function assertFrameIntact(frame: Uint8Array): void {
  const length = readUint32Le(frame, 0);
  const ok =
    frame.length === frameBytesOf(length) &&
    readUint32Le(frame, 4) === lengthCheckOf(length) &&
    readUint32Le(frame, 8) === bodyChecksumOf(frame.subarray(frameHeaderBytes, frameHeaderBytes + length)) &&
    frame.subarray(frameHeaderBytes + length).every((padByte) => padByte === 0);
  if (!ok) throw new Error('assertion failed: a log frame changed between framing and writing');
}

// ---------------------------------------------------------------------------------------
// Encoding record bodies

/** Offsets of the child tables of one vector, reused between vectors (each is finished before the next starts). */
const offsetScratch: number[] = [];

function finishOffsetVector(builder: flatbuffers.Builder, count: number): flatbuffers.Offset {
  builder.startVector(4, count, 4);
  for (let i = count - 1; i >= 0; i--) builder.addOffset(offsetScratch[i]!);
  return builder.endVector();
}

function writeTopicDeclarations(builder: flatbuffers.Builder, topics: TopicDeclaration[]): flatbuffers.Offset {
  if (topics.length === 0) return 0;
  for (let i = 0; i < topics.length; i++) {
    const topic = topics[i]!;
    assertUint32(topic.id, 'newTopics[].id');
    const name = builder.createString(topic.name);
    TopicDeclarationTable.startTopicDeclaration(builder);
    TopicDeclarationTable.addName(builder, name);
    TopicDeclarationTable.addId(builder, topic.id);
    offsetScratch[i] = TopicDeclarationTable.endTopicDeclaration(builder);
  }
  return finishOffsetVector(builder, topics.length);
}

function writeInjected(builder: flatbuffers.Builder, injected: InjectedInput[]): flatbuffers.Offset {
  if (injected.length === 0) return 0;
  for (let i = 0; i < injected.length; i++) {
    const input = injected[i]!;
    assertUint32(input.topic, 'injected[].topic');
    assertUint53(input.seq, 'injected[].seq');
    assertUint8(input.priority, 'injected[].priority');
    const kind = input.kind ?? 0;
    const timeoutTicks = input.timeoutTicks ?? 0;
    assertUint8(kind, 'injected[].kind');
    assertUint32(timeoutTicks, 'injected[].timeoutTicks');
    const payload = input.payload.length === 0 ? 0 : builder.createByteVector(input.payload);
    InjectedInputTable.startInjectedInput(builder);
    addFieldUint64(builder, logSlot.injectedSeq, input.seq);
    if (payload !== 0) InjectedInputTable.addPayload(builder, payload);
    InjectedInputTable.addTopic(builder, input.topic);
    // Both 0 (absent) for a plain input: its bytes are what they were before asks existed.
    InjectedInputTable.addTimeoutTicks(builder, timeoutTicks);
    InjectedInputTable.addPriority(builder, input.priority);
    InjectedInputTable.addKind(builder, kind);
    offsetScratch[i] = InjectedInputTable.endInjectedInput(builder);
  }
  return finishOffsetVector(builder, injected.length);
}

function writeLifecycle(builder: flatbuffers.Builder, events: LifecycleEvent[]): flatbuffers.Offset {
  if (events.length === 0) return 0;
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!;
    assertUint32(event.actor, 'lifecycle[].actor');
    const from = builder.createString(event.from);
    const to = builder.createString(event.to);
    const detail = builder.createString(event.detail);
    LifecycleEventTable.startLifecycleEvent(builder);
    LifecycleEventTable.addFromState(builder, from);
    LifecycleEventTable.addToState(builder, to);
    LifecycleEventTable.addDetail(builder, detail);
    LifecycleEventTable.addActor(builder, event.actor);
    offsetScratch[i] = LifecycleEventTable.endLifecycleEvent(builder);
  }
  return finishOffsetVector(builder, events.length);
}

function writeDrops(builder: flatbuffers.Builder, drops: DropRecord[]): flatbuffers.Offset {
  if (drops.length === 0) return 0;
  for (let i = 0; i < drops.length; i++) {
    const drop = drops[i]!;
    assertUint32(drop.actor, 'drops[].actor');
    assertUint32(drop.topic, 'drops[].topic');
    assertUint32(drop.sender, 'drops[].sender');
    assertUint53(drop.seq, 'drops[].seq');
    const reason = builder.createString(drop.reason);
    DropRecordTable.startDropRecord(builder);
    addFieldUint64(builder, logSlot.dropSeq, drop.seq);
    DropRecordTable.addReason(builder, reason);
    DropRecordTable.addActor(builder, drop.actor);
    DropRecordTable.addTopic(builder, drop.topic);
    DropRecordTable.addSender(builder, drop.sender);
    offsetScratch[i] = DropRecordTable.endDropRecord(builder);
  }
  return finishOffsetVector(builder, drops.length);
}

function writeEnvelopes(builder: flatbuffers.Builder, envelopes: EnvelopeRecord[]): flatbuffers.Offset {
  // Present even when empty: at the full level an empty vector means "nothing delivered",
  // while an absent one means "digest level".
  for (let i = 0; i < envelopes.length; i++) offsetScratch[i] = writeEnvelope(builder, envelopes[i]!);
  return finishOffsetVector(builder, envelopes.length);
}

/**
 * The Builder's write cursor (bytes left before the front of its buffer). It is private in
 * the typings but has been a plain field of every flatbuffers JS release; `createByteVector`
 * moves it the same way we do. If a release renames it we fall back to the element loop.
 */
interface BuilderCursor {
  space: number;
}
const builderCursorIsPlainField = typeof (new flatbuffers.Builder(16) as unknown as Partial<BuilderCursor>).space === 'number';

/**
 * Writes the flat per-actor digests as one `[uint32]` vector. On a little-endian host
 * this is a single memcpy of the Uint32Array's bytes (~0.1 us for 50 actors, against
 * ~1.4 us for 350 writeInt32 calls); the bytes are identical either way (tested).
 */
export function writeUint32Vector(builder: flatbuffers.Builder, values: Uint32Array, bulk = true): flatbuffers.Offset {
  builder.startVector(4, values.length, 4);
  // startVector reserved and aligned room for every element: the writes below need no prep.
  if (bulk && hostIsLittleEndian && builderCursorIsPlainField) {
    const cursor = builder as unknown as BuilderCursor;
    cursor.space -= values.length * 4;
    builder.dataBuffer().bytes().set(new Uint8Array(values.buffer, values.byteOffset, values.length * 4), cursor.space);
  } else {
    for (let i = values.length - 1; i >= 0; i--) builder.writeInt32(values[i]!);
  }
  return builder.endVector();
}

function writeRoot(
  builder: flatbuffers.Builder,
  kind: 'header' | 'tick' | 'end',
  table: flatbuffers.Offset,
  prevChainOffset: flatbuffers.Offset,
): Uint8Array {
  LogRecordTable.startLogRecord(builder);
  LogRecordTable.addPrevChain(builder, prevChainOffset);
  if (kind === 'tick') LogRecordTable.addTick(builder, table);
  else if (kind === 'header') LogRecordTable.addHeader(builder, table);
  else LogRecordTable.addEnd(builder, table);
  builder.finish(LogRecordTable.endLogRecord(builder));
  return builder.asUint8Array();
}

function assertChain(prevChain: Uint8Array): void {
  if (prevChain.length !== chainBytes) {
    throw new RangeError(`prevChain must be ${chainBytes} bytes (a SHA-256), got ${prevChain.length}`);
  }
}

/**
 * Encodes a header record body into `builder` (cleared first). Takes the header; returns a
 * view of the builder's bytes, valid until the builder is used again. Its prev_chain is
 * chain_0. Throws RangeError on an out-of-range field.
 */
export function encodeHeaderInto(builder: flatbuffers.Builder, header: LogHeader): Uint8Array {
  assertUint32(header.formatVersion, 'header formatVersion');
  assertUint32(header.seed, 'header seed');
  const level = levelCodes[header.level];
  if (level === undefined) throw new RangeError(`header level must be 'digest' or 'full', got '${String(header.level)}'`);
  builder.clear();
  const prevChainOffset = builder.createByteVector(chainZero);
  const systemName = builder.createString(header.systemName);
  const configJson = builder.createString(header.configJson);
  for (let i = 0; i < header.versions.length; i++) {
    const entry = header.versions[i]!;
    const name = builder.createString(entry.name);
    const version = builder.createString(entry.version);
    offsetScratch[i] = LibraryVersionTable.createLibraryVersion(builder, name, version);
  }
  const versions = finishOffsetVector(builder, header.versions.length);
  // The inference fields are written only for a run with an inference actor, so the
  // header of any other run keeps the bytes it had before they existed.
  let models = 0;
  if (header.models.length > 0) {
    for (let i = 0; i < header.models.length; i++) {
      const entry = header.models[i]!;
      const name = builder.createString(entry.name);
      const sha256 = builder.createString(entry.sha256);
      ModelVersionTable.startModelVersion(builder);
      ModelVersionTable.addName(builder, name);
      ModelVersionTable.addSha256(builder, sha256);
      addFieldUint64(builder, logSlot.modelBytes, entry.bytes);
      offsetScratch[i] = ModelVersionTable.endModelVersion(builder);
    }
    models = finishOffsetVector(builder, header.models.length);
  }
  const inferenceJson = header.inferenceJson.length === 0 ? 0 : builder.createString(header.inferenceJson);
  HeaderTable.startHeader(builder);
  HeaderTable.addSystemName(builder, systemName);
  HeaderTable.addConfigJson(builder, configJson);
  HeaderTable.addVersions(builder, versions);
  if (models !== 0) HeaderTable.addModels(builder, models);
  if (header.gpu) HeaderTable.addGpu(builder, true);
  if (inferenceJson !== 0) HeaderTable.addInferenceJson(builder, inferenceJson);
  // Written even when it equals the default (0), so that any future reader can always find it.
  builder.forceDefaults(true);
  HeaderTable.addFormatVersion(builder, header.formatVersion);
  builder.forceDefaults(false);
  HeaderTable.addSeed(builder, header.seed);
  HeaderTable.addLevel(builder, level);
  return writeRoot(builder, 'header', HeaderTable.endHeader(builder), prevChainOffset);
}

/**
 * Encodes a tick record body into `builder` (cleared first). Takes the record and the
 * chain before it; returns a view of the builder's bytes, valid until the builder is used
 * again. Envelopes are written iff `tick.envelopes` is not null. This is the runtime's hot
 * path: no BigInt, no per-element allocation for the digests. Throws RangeError on an
 * out-of-range field.
 */
export function encodeTickInto(builder: flatbuffers.Builder, tick: TickRecord, prevChain: Uint8Array): Uint8Array {
  assertChain(prevChain);
  assertUint53(tick.tick, 'tick');
  assertUint32(tick.deliveredCount, 'deliveredCount');
  assertUint32(tick.deliveredDigest.hi, 'deliveredDigest.hi');
  assertUint32(tick.deliveredDigest.lo, 'deliveredDigest.lo');
  builder.clear();
  const prevChainOffset = builder.createByteVector(prevChain);
  const newTopics = writeTopicDeclarations(builder, tick.newTopics);
  const injected = writeInjected(builder, tick.injected);
  const lifecycle = writeLifecycle(builder, tick.lifecycle);
  const drops = writeDrops(builder, tick.drops);
  const actorDigests = tick.actorDigests.length === 0 ? 0 : writeUint32Vector(builder, tick.actorDigests);
  const envelopes = tick.envelopes === null ? 0 : writeEnvelopes(builder, tick.envelopes);
  const inferences = tick.inferences.length === 0 ? 0 : writeInferences(builder, tick.inferences);
  TickRecordTable.startTickRecord(builder);
  addFieldUint64(builder, logSlot.tickTick, tick.tick);
  if (newTopics !== 0) TickRecordTable.addNewTopics(builder, newTopics);
  if (injected !== 0) TickRecordTable.addInjected(builder, injected);
  if (lifecycle !== 0) TickRecordTable.addLifecycle(builder, lifecycle);
  if (drops !== 0) TickRecordTable.addDrops(builder, drops);
  if (actorDigests !== 0) TickRecordTable.addActorDigests(builder, actorDigests);
  if (tick.envelopes !== null) TickRecordTable.addEnvelopes(builder, envelopes);
  if (inferences !== 0) TickRecordTable.addInferences(builder, inferences);
  TickRecordTable.addDeliveredCount(builder, tick.deliveredCount);
  TickRecordTable.addDeliveredDigestHi(builder, tick.deliveredDigest.hi);
  TickRecordTable.addDeliveredDigestLo(builder, tick.deliveredDigest.lo);
  return writeRoot(builder, 'tick', TickRecordTable.endTickRecord(builder), prevChainOffset);
}

function writeInferences(builder: flatbuffers.Builder, records: InferenceRecord[]): flatbuffers.Offset {
  const offsets: flatbuffers.Offset[] = [];
  // A tick's answers name few models: each name is written once and shared.
  const models = new Map<string, flatbuffers.Offset>();
  for (const record of records) {
    assertUint32(record.requester, 'inference requester');
    assertUint32(record.requestId, 'inference requestId');
    let model = models.get(record.model);
    if (model === undefined) {
      model = builder.createString(record.model);
      models.set(record.model, model);
    }
    const response = record.response === null ? 0 : builder.createByteVector(record.response);
    const note = record.note.length === 0 ? 0 : builder.createString(record.note);
    InferenceRecordTable.startInferenceRecord(builder);
    InferenceRecordTable.addModel(builder, model);
    InferenceRecordTable.addRequester(builder, record.requester);
    addFieldUint64(builder, logSlot.inferenceSeq, record.seq);
    InferenceRecordTable.addRequestId(builder, record.requestId);
    InferenceRecordTable.addProvider(builder, providerCodes[record.provider]);
    InferenceRecordTable.addDigestHi(builder, record.digest.hi);
    InferenceRecordTable.addDigestLo(builder, record.digest.lo);
    if (response !== 0) InferenceRecordTable.addResponse(builder, response);
    if (note !== 0) InferenceRecordTable.addNote(builder, note);
    offsets.push(InferenceRecordTable.endInferenceRecord(builder));
  }
  builder.startVector(4, offsets.length, 4);
  for (let i = offsets.length - 1; i >= 0; i--) builder.addOffset(offsets[i]!);
  return builder.endVector();
}

/**
 * Encodes an End record body into `builder` (cleared first). Takes the record and the
 * chain before it; returns a view of the builder's bytes, valid until the builder is used
 * again. Throws RangeError on an out-of-range field.
 */
export function encodeEndInto(builder: flatbuffers.Builder, end: EndRecord, prevChain: Uint8Array): Uint8Array {
  assertChain(prevChain);
  assertUint53(end.ticks, 'end ticks');
  builder.clear();
  const prevChainOffset = builder.createByteVector(prevChain);
  const reason = builder.createString(end.reason);
  EndTable.startEnd(builder);
  addFieldUint64(builder, logSlot.endTicks, end.ticks);
  EndTable.addReason(builder, reason);
  return writeRoot(builder, 'end', EndTable.endEnd(builder), prevChainOffset);
}

/**
 * The bytes a tick record's body would have after `prevChain`, without a writer: what
 * replay compares against the recorded `tickBodies`. Takes the record, the chain before it
 * and optionally a builder to reuse. Returns a fresh Uint8Array the caller owns.
 */
export function encodeTickBody(tick: TickRecord, prevChain: Uint8Array, builder?: flatbuffers.Builder): Uint8Array {
  return encodeTickInto(builder ?? new flatbuffers.Builder(1024), tick, prevChain).slice();
}

// ---------------------------------------------------------------------------------------
// Decoding record bodies

/** A record body that passed its CRC but is not a well-formed LogRecord (a writer bug or forged bytes). */
export class BodyDecodeError extends Error {}

function vectorBounds(bb: flatbuffers.ByteBuffer, tablePosition: number, slot: number, elementBytes: number): { start: number; count: number } | null {
  const fieldOffset = bb.__offset(tablePosition, vtableOffsetOf(slot));
  if (fieldOffset === 0) return null;
  const start = bb.__vector(tablePosition + fieldOffset);
  const count = bb.__vector_len(tablePosition + fieldOffset);
  if (count < 0 || start < 0 || start + count * elementBytes > bb.capacity()) {
    throw new BodyDecodeError(`a vector (field ${slot}) runs past the end of the record`);
  }
  return { start, count };
}

function safeInteger(value: number, what: string): number {
  if (!Number.isSafeInteger(value)) throw new BodyDecodeError(`${what} exceeds 2^53-1`);
  return value;
}

function readHeader(table: HeaderTable): LogHeader {
  const levelCode = table.level();
  const level: LogLevel | undefined = levelCode === 0 ? 'digest' : levelCode === 1 ? 'full' : undefined;
  if (level === undefined) throw new BodyDecodeError(`header level code ${levelCode} is neither 0 (digest) nor 1 (full)`);
  const versions = [];
  const scratch = new LibraryVersionTable();
  for (let i = 0; i < table.versionsLength(); i++) {
    const entry = table.versions(i, scratch)!;
    versions.push({ name: entry.name() ?? '', version: entry.version() ?? '' });
  }
  const models = [];
  const modelScratch = new ModelVersionTable();
  for (let i = 0; i < table.modelsLength(); i++) {
    const entry = table.models(i, modelScratch)!;
    models.push({
      name: entry.name() ?? '',
      sha256: entry.sha256() ?? '',
      bytes: safeInteger(readUint64Field(entry.bb!, entry.bb_pos, logSlot.modelBytes), 'model bytes'),
    });
  }
  return {
    formatVersion: table.formatVersion(),
    systemName: table.systemName() ?? '',
    seed: table.seed(),
    level,
    configJson: table.configJson() ?? '',
    versions,
    models,
    gpu: table.gpu(),
    inferenceJson: table.inferenceJson() ?? '',
  };
}

function readTick(table: TickRecordTable): TickRecord {
  const bb = table.bb!;
  const position = table.bb_pos;
  const newTopics: TopicDeclaration[] = [];
  const topicScratch = new TopicDeclarationTable();
  for (let i = 0; i < table.newTopicsLength(); i++) {
    const topic = table.newTopics(i, topicScratch)!;
    newTopics.push({ id: topic.id(), name: topic.name() ?? '' });
  }
  const injected: InjectedInput[] = [];
  const inputScratch = new InjectedInputTable();
  for (let i = 0; i < table.injectedLength(); i++) {
    const input = table.injected(i, inputScratch)!;
    const payload = vectorBounds(bb, input.bb_pos, logSlot.injectedPayload, 1);
    const entry: InjectedInput = {
      topic: input.topic(),
      seq: safeInteger(readUint64Field(bb, input.bb_pos, logSlot.injectedSeq), 'injected seq'),
      priority: input.priority(),
      payload: payload === null ? new Uint8Array(0) : Uint8Array.prototype.slice.call(bb.bytes(), payload.start, payload.start + payload.count),
    };
    if (input.kind() !== 0) {
      entry.kind = input.kind();
      entry.timeoutTicks = input.timeoutTicks();
    }
    injected.push(entry);
  }
  const lifecycle: LifecycleEvent[] = [];
  const eventScratch = new LifecycleEventTable();
  for (let i = 0; i < table.lifecycleLength(); i++) {
    const event = table.lifecycle(i, eventScratch)!;
    lifecycle.push({ actor: event.actor(), from: event.fromState() ?? '', to: event.toState() ?? '', detail: event.detail() ?? '' });
  }
  const drops: DropRecord[] = [];
  const dropScratch = new DropRecordTable();
  for (let i = 0; i < table.dropsLength(); i++) {
    const drop = table.drops(i, dropScratch)!;
    drops.push({
      actor: drop.actor(),
      topic: drop.topic(),
      sender: drop.sender(),
      seq: safeInteger(readUint64Field(bb, drop.bb_pos, logSlot.dropSeq), 'drop seq'),
      reason: drop.reason() ?? '',
    });
  }
  const digestsVector = vectorBounds(bb, position, logSlot.tickActorDigests, 4);
  let actorDigests: Uint32Array;
  if (digestsVector === null) {
    actorDigests = new Uint32Array(0);
  } else if (hostIsLittleEndian) {
    // One copy; the fresh buffer is aligned whatever the source's alignment.
    // Uint8Array.prototype.slice copies; a Node Buffer's own slice() would return a view of the whole file.
    const bytes = Uint8Array.prototype.slice.call(bb.bytes(), digestsVector.start, digestsVector.start + digestsVector.count * 4);
    actorDigests = new Uint32Array(bytes.buffer, 0, digestsVector.count);
  } else {
    actorDigests = new Uint32Array(digestsVector.count);
    for (let i = 0; i < digestsVector.count; i++) actorDigests[i] = bb.readUint32(digestsVector.start + 4 * i);
  }
  let envelopes: EnvelopeRecord[] | null = null;
  if (bb.__offset(position, vtableOffsetOf(logSlot.tickEnvelopes)) !== 0) {
    envelopes = [];
    const envelopeScratch = new EnvelopeTable();
    for (let i = 0; i < table.envelopesLength(); i++) {
      envelopes.push(readEnvelope(table.envelopes(i, envelopeScratch)!));
    }
  }
  const inferences: InferenceRecord[] = [];
  const inferenceScratch = new InferenceRecordTable();
  for (let i = 0; i < table.inferencesLength(); i++) {
    const entry = table.inferences(i, inferenceScratch)!;
    const response = vectorBounds(bb, entry.bb_pos, logSlot.inferenceResponse, 1);
    const provider = providerNames[entry.provider()];
    if (provider === undefined) throw new BodyDecodeError(`inference record provider code ${entry.provider()} is not 0, 1 or 2`);
    inferences.push({
      model: entry.model() ?? '',
      requester: entry.requester(),
      seq: safeInteger(readUint64Field(bb, entry.bb_pos, logSlot.inferenceSeq), 'inference seq'),
      requestId: entry.requestId(),
      provider,
      digest: { hi: entry.digestHi(), lo: entry.digestLo() },
      response: response === null ? null : Uint8Array.prototype.slice.call(bb.bytes(), response.start, response.start + response.count),
      note: entry.note() ?? '',
    });
  }
  return {
    tick: safeInteger(readUint64Field(bb, position, logSlot.tickTick), 'tick'),
    newTopics,
    injected,
    lifecycle,
    drops,
    deliveredCount: table.deliveredCount(),
    deliveredDigest: { hi: table.deliveredDigestHi(), lo: table.deliveredDigestLo() },
    actorDigests,
    envelopes,
    inferences,
  };
}

/** A decoded body: the record and the chain it claims to follow (a view into the body). */
export interface DecodedRecordBody {
  prevChain: Uint8Array;
  record: LogRecord;
}

function rootOf(body: Uint8Array): { bb: flatbuffers.ByteBuffer; root: LogRecordTable } {
  if (body.length < 8) throw new BodyDecodeError(`a record body is at least 8 bytes, got ${body.length}`);
  const bb = new flatbuffers.ByteBuffer(plainBytes(body));
  const root = LogRecordTable.getRootAsLogRecord(bb);
  if (root.bb_pos >= body.length) throw new BodyDecodeError('the root table offset points past the end of the record');
  return { bb, root };
}

/**
 * Reads only `format_version` from a header body, so that a log from another format
 * version is reported as such even when the rest of its header would not decode with
 * this schema. Returns null when the body holds no header.
 */
export function peekHeaderFormatVersion(body: Uint8Array): number | null {
  try {
    const { root } = rootOf(body);
    const header = root.header();
    return header === null ? null : header.formatVersion();
  } catch {
    return null;
  }
}

/**
 * Decodes a record body. Takes the body bytes (exactly one record). Returns the record and
 * its prev_chain. Throws BodyDecodeError when the body is not a well-formed LogRecord:
 * no or several record kinds, a prev_chain of the wrong size, an out-of-range uint64, a
 * vector running past the end. Any other exception from a garbled buffer is wrapped too.
 */
export function decodeRecordBody(body: Uint8Array): DecodedRecordBody {
  try {
    const { bb, root } = rootOf(body);
    const chainVector = vectorBounds(bb, root.bb_pos, logSlot.logRecordPrevChain, 1);
    if (chainVector === null || chainVector.count !== chainBytes) {
      throw new BodyDecodeError(`prev_chain must be ${chainBytes} bytes, got ${chainVector?.count ?? 'none'}`);
    }
    const prevChain = bb.bytes().subarray(chainVector.start, chainVector.start + chainBytes);
    const tick = root.tick();
    const header = root.header();
    const end = root.end();
    const kinds = (tick === null ? 0 : 1) + (header === null ? 0 : 1) + (end === null ? 0 : 1);
    if (kinds !== 1) throw new BodyDecodeError(`a record holds exactly one of header, tick and end; this one holds ${kinds}`);
    let record: LogRecord;
    if (tick !== null) record = { kind: 'tick', tick: readTick(tick) };
    else if (header !== null) record = { kind: 'header', header: readHeader(header) };
    else record = { kind: 'end', end: { ticks: safeInteger(readUint64Field(bb, end!.bb_pos, logSlot.endTicks), 'end ticks'), reason: end!.reason() ?? '' } };
    return { prevChain, record };
  } catch (error) {
    if (error instanceof BodyDecodeError) throw error;
    throw new BodyDecodeError(error instanceof Error ? error.message : String(error));
  }
}

/** True when `prevChain` (from a decoded body) equals `chain`. */
export function prevChainMatches(prevChain: Uint8Array, chain: Uint8Array): boolean {
  return chainsEqual(prevChain, chain);
}
