// @ts-nocheck: AssemblyScript, compiled by asc (actors/agents/build.ts), not by tsc.
/**
 * lockstep agent SDK for AssemblyScript: ABI v2 (docs/abi.md). An agent built with it declares
 * `"abi": 2` in its manifest; `lockstep_abi_version` below returns 2, and admission refuses a
 * module whose manifest says otherwise.
 *
 * What v2 means for an agent: each inbound message is a `schemas/envelope.fbs` Envelope
 * FlatBuffer in one fixed layout (60 header bytes, then the payload; docs/abi.md), which
 * `message(ptr, len)` reads at fixed offsets: topic, sender, the full 64-bit seq, the tick
 * it was delivered in, priority and the payload. The optional import `backpressure()` (v1
 * has it too) says how many of the agent's publishes were refused at its previous tick.
 *
 * An agent is one file that exports four functions and re-exports the ABI glue from here:
 *
 *   import { Status, message, publishU32, topic } from './sdk/lockstep';
 *   export { lockstep_abi_version, agent_alloc } from './sdk/lockstep';
 *
 *   export function agent_init(): i32 { ... return Status.Ok; }
 *   export function agent_receive(ptr: i32, len: i32): i32 { const msg = message(ptr, len); ... }
 *   export function agent_step(tick: i32): i32 { ... }
 *   export function agent_shutdown(): i32 { return Status.Ok; }
 *
 * No managed heap. Agents are compiled with `--runtime stub`, and the stub allocator keeps
 * its bump pointer in a global that only a start function can initialise; the ABI refuses
 * modules with a start section. So neither this SDK nor an agent may allocate: no `new`,
 * no string concatenation, no `String.UTF8.encode`, and top-level globals initialised only
 * with literals (`let total: u32 = 0`; even `= some_const` needs a start function): do
 * the rest of the set-up in agent_init. Keep state in globals and in static memory
 * (`memory.data`); string literals are static and fine.
 * The build runs admission, which refuses a module with a start section and says why.
 *
 * Instead of allocating, the SDK hands out reused views over static buffers:
 * - `message(ptr, len)` gives the inbound message; its `payload` is a Uint8Array over the
 *   inbox, valid until the next message arrives.
 * - `outbox(len)` gives a Uint8Array over a static outbound buffer, valid until the next
 *   `outbox` or `publishString` call.
 * These views are real Uint8Array objects (indexing is bounds-checked, `length`, `buffer`
 * and `byteOffset` work) laid out by hand in static memory with the object header of
 * AssemblyScript's runtime (`~lib/rt/common`); the compiler is pinned at 0.28.20.
 */
import { OBJECT, TOTAL_OVERHEAD } from "~lib/rt/common";

// ---- The host imports: module `lockstep`, the five of docs/abi.md ----
//
// asc emits an import only for a function the agent reaches, so an agent that never calls
// `backpressure()` does not import it (and runs on a host that predates it).

@external("lockstep", "publish")
declare function host_publish(topic: i32, ptr: i32, len: i32, priority: i32): i32;

@external("lockstep", "topic")
declare function host_topic(ptr: i32, len: i32): i32;

@external("lockstep", "log")
declare function host_log(level: i32, ptr: i32, len: i32): void;

@external("lockstep", "random")
declare function host_random(): i32;

@external("lockstep", "backpressure")
declare function host_backpressure(): i32;

// ---- Constants ----

/** The ABI this SDK implements; `lockstep_abi_version` returns it, and the agent's manifest
 * must say the same ("abi": 2). */
export const abi_version: i32 = 2;

/** Return codes of agent_init / agent_receive / agent_step / agent_shutdown. A negative
 * value is an agent error (the agent crashes with `agent error <code>`). */
export enum Status {
  Ok = 0,
  /** The agent is done: the host stops it normally and runs agent_shutdown. */
  Stop = 1,
}

/** What `publish` returns (docs/abi.md, imports). */
export enum PublishResult {
  Accepted = 0,
  /** The topic is not in the manifest's capabilities.publish, nor `infer/<model>` for a
   * model in its capabilities.models. */
  NotAllowed = -1,
  /** The payload is larger than the runtime's payloadBytesMax (or this SDK's outbox). */
  TooLarge = -2,
  /** The bytes are outside memory. */
  OutOfBounds = -3,
  /** The priority is outside 0..255. */
  BadPriority = -4,
}

export enum LogLevel {
  Debug = 0,
  Info = 1,
  Warn = 2,
  Error = 3,
}

/** Size of the inbound message header: the Envelope FlatBuffer up to its payload bytes
 * (docs/abi.md, "Inbound message layout"); a message is header_bytes + payload length. */
export const header_bytes: i32 = 60;

// Where the Envelope's fields are, from the message's first byte (src/wasm/envelope-layout.ts
// writes them; every field is always present, so fixed offsets read them).
const at_topic: usize = 24;
const at_sender: usize = 28;
const at_seq: usize = 32;
const at_tick: usize = 40;
const at_priority: usize = 52;
const at_payload_length: usize = 56;

/** The largest payload an agent accepts: the runtime's default payloadBytesMax (64 KiB).
 * A host configured with a larger payloadBytesMax that delivers a larger message makes
 * agent_alloc trap: the agent crashes instead of reading past its inbox. */
export const payload_bytes_max: i32 = 64 * 1024;

/** The inbox holds one whole inbound message. */
export const inbox_bytes_max: i32 = header_bytes + payload_bytes_max;

/** The outbox holds one outbound payload. */
export const outbox_bytes_max: i32 = payload_bytes_max;

/** Topic names longer than this (in UTF-8 bytes) make `topic` trap: a programming error. */
export const topic_name_bytes_max: i32 = 256;

/** Log lines are cut to this many UTF-8 bytes (at a code point boundary). */
export const log_line_bytes_max: i32 = 1024;

// ---- Static memory ----
//
// Each buffer that a Uint8Array view points into is laid out as an ArrayBuffer object: a
// runtime object header (TOTAL_OVERHEAD bytes) right before the data, so `view.buffer`
// and `view.byteOffset` are right. Each view object likewise gets a header and its three
// ArrayBufferView fields (buffer, dataStart, byteLength). The headers are written on every
// use rather than once, because there is no start function to write them and the agent
// could have scribbled on them; it is a handful of stores.

// The object header is placed in a 32-byte slot ending where the data starts, so the inbox
// and the outbox are 16-byte aligned: the inbox's u64 fields (seq at +32, tick at +40) are
// 8-aligned, as FlatBuffers wants. The payload, at inbox + 60, is only 4-aligned; a wider
// load<T> on it is still correct (WebAssembly loads need no alignment), just not aligned.
const header_slot_bytes: i32 = 32;
const inbox: usize = memory.data(header_slot_bytes + inbox_bytes_max, 16) + <usize>header_slot_bytes;
const outbox_data: usize = memory.data(header_slot_bytes + outbox_bytes_max, 16) + <usize>header_slot_bytes;
const view_object_bytes: i32 = <i32>TOTAL_OVERHEAD + <i32>offsetof<Uint8Array>();
const payload_view: usize = memory.data(view_object_bytes, 16) + TOTAL_OVERHEAD;
const outbox_view: usize = memory.data(view_object_bytes, 16) + TOTAL_OVERHEAD;
const name_scratch: usize = memory.data(topic_name_bytes_max, 16);
const log_scratch: usize = memory.data(log_line_bytes_max, 16);
const u32_scratch: usize = memory.data(4, 4);

/** Writes the runtime object header for an object of `bytes` bytes with class id `id`. */
function writeObjectHeader(object: usize, id: u32, bytes: i32): void {
  const header = changetype<OBJECT>(object - TOTAL_OVERHEAD);
  header.mmInfo = 0;
  header.gcInfo = 0;
  header.gcInfo2 = 0;
  header.rtId = id;
  header.rtSize = <u32>bytes;
}

/** Points the Uint8Array object at `view` to `length` bytes at `data` inside `buffer`. */
function setView(view: usize, buffer: usize, bufferBytes: i32, data: usize, length: i32): Uint8Array {
  writeObjectHeader(buffer, idof<ArrayBuffer>(), bufferBytes);
  writeObjectHeader(view, idof<Uint8Array>(), <i32>offsetof<Uint8Array>());
  store<usize>(view, buffer, offsetof<Uint8Array>("buffer"));
  store<usize>(view, data, offsetof<Uint8Array>("dataStart"));
  store<i32>(view, length, offsetof<Uint8Array>("byteLength"));
  return changetype<Uint8Array>(view);
}

// ---- ABI glue: re-export these two from the agent ----

/** ABI version. Its body must stay a bare constant: admission reads it without running it. */
export function lockstep_abi_version(): i32 {
  return abi_version;
}

/** Where the host copies the next inbound message: the fixed inbox. Traps when the message
 * is larger than the inbox (see payload_bytes_max). */
export function agent_alloc(len: i32): i32 {
  // Compile-time: the object header must fit the slot laid out before the inbox.
  if (TOTAL_OVERHEAD > <usize>header_slot_bytes) ERROR("runtime object header outgrew header_slot_bytes");
  if (<u32>len > <u32>inbox_bytes_max) unreachable();
  return <i32>inbox;
}

// ---- Messages ----

/**
 * The inbound message: an overlay on the Envelope in the inbox (docs/abi.md, inbound layout),
 * read at its fixed offsets, so reading a field is one load. Valid until the next message
 * arrives.
 *
 *   0 root | 4 vtable | 20 table | 24 topic u32 | 28 sender u32 | 32 seq u64 | 40 tick u64
 *   48 payload offset | 52 priority u8 | 56 payload length u32 | 60 payload
 */
@final @unmanaged
export class Message {
  /** Topic id; compare with what `topic(name)` returned. */
  get topic(): i32 {
    return load<i32>(changetype<usize>(this) + at_topic);
  }

  /** Sender actor id; 0 = external input. */
  get sender(): u32 {
    return load<u32>(changetype<usize>(this) + at_sender);
  }

  /** The sender's sequence number (ABI v1 gave only its low 32 bits). */
  get seq(): u64 {
    return load<u64>(changetype<usize>(this) + at_seq);
  }

  /** The logical tick the message was published in (it is delivered in the next one). */
  get tick(): u64 {
    return load<u64>(changetype<usize>(this) + at_tick);
  }

  /** Priority, 0..255. */
  get priority(): u32 {
    return <u32>load<u8>(changetype<usize>(this) + at_priority);
  }

  /** The payload, a view over the inbox (no copy). */
  get payload(): Uint8Array {
    return changetype<Uint8Array>(payload_view);
  }

  /** Address of the payload's first byte, for `load<T>` (4-aligned: see the inbox). */
  get payloadPtr(): usize {
    return changetype<usize>(this) + <usize>header_bytes;
  }

  /** Payload length in bytes. */
  get payloadLength(): i32 {
    return load<i32>(changetype<usize>(this) + at_payload_length);
  }
}

/**
 * The message agent_receive was given. Traps when (ptr, len) is not a whole message in the
 * inbox (anywhere but agent_alloc's address, shorter than header_bytes, longer than the
 * inbox) or when its payload length field disagrees with len: the host always copies one
 * whole message to agent_alloc's address, so anything else is a host bug.
 */
export function message(ptr: i32, len: i32): Message {
  const address = <usize>ptr;
  if (address != inbox || len < header_bytes || len > inbox_bytes_max) unreachable();
  if (load<u32>(inbox + at_payload_length) != <u32>(len - header_bytes)) unreachable();
  setView(payload_view, inbox, inbox_bytes_max, inbox + <usize>header_bytes, len - header_bytes);
  return changetype<Message>(address);
}

// ---- Topics and publishing ----

/** The id of topic `name`, or a negative value when it is unknown or not in the manifest's
 * capabilities: -1, or for `infer` and `infer/<model>` with a model not in
 * capabilities.models a refusal id below -1 (publishing to it returns NotAllowed and the
 * host logs which model the agent may not call). Look topics up once, in agent_init, and
 * keep the ids in globals. */
export function topic(name: string): i32 {
  const length = encodeUtf8(name, name_scratch, topic_name_bytes_max, false);
  if (length < 0) unreachable(); // name longer than topic_name_bytes_max
  return host_topic(<i32>name_scratch, length);
}

/** Publishes the bytes of `payload` (a view or an array) to `topic`; delivered next tick.
 * Returns a PublishResult. */
export function publish(topic: i32, payload: Uint8Array, priority: i32 = 0): i32 {
  return host_publish(topic, <i32>payload.dataStart, payload.byteLength, priority);
}

/** Publishes `len` bytes at `ptr`. Returns a PublishResult. */
export function publishBytes(topic: i32, ptr: usize, len: i32, priority: i32 = 0): i32 {
  return host_publish(topic, <i32>ptr, len, priority);
}

/** Publishes one u32, little-endian (4 bytes). Returns a PublishResult. */
export function publishU32(topic: i32, value: u32, priority: i32 = 0): i32 {
  store<u32>(u32_scratch, value);
  return host_publish(topic, <i32>u32_scratch, 4, priority);
}

/** Publishes `text` as UTF-8, encoded in the outbox (which it overwrites). Returns
 * PublishResult.TooLarge, without publishing, when the text does not fit the outbox. */
export function publishString(topic: i32, text: string, priority: i32 = 0): i32 {
  const length = encodeUtf8(text, outbox_data, outbox_bytes_max, false);
  if (length < 0) return PublishResult.TooLarge;
  return host_publish(topic, <i32>outbox_data, length, priority);
}

/** A view of `len` bytes over the static outbox, to build a payload in before `publish`.
 * Its bytes are whatever was written last. Traps when len is outside 0..outbox_bytes_max. */
export function outbox(len: i32): Uint8Array {
  if (<u32>len > <u32>outbox_bytes_max) unreachable();
  return setView(outbox_view, outbox_data, outbox_bytes_max, outbox_data, len);
}

// ---- Backpressure ----

/**
 * How many of this agent's publishes the barrier of its previous scheduled tick refused
 * because a subscriber's mailbox was full (0 when none). Publishes are accepted
 * provisionally (`publish` returns Accepted) and applied at the tick barrier with the
 * mailbox rules; a refused one is logged as a drop, and the agent is not scheduled again
 * until that mailbox has room. So a non-zero answer, read in the next agent_receive or
 * agent_step, is the signal to send less. The same count all tick: it describes the
 * previous tick, not the calls made in this one. Importing it is optional; an agent that
 * never calls this does not import it.
 */
export function backpressure(): i32 {
  return host_backpressure();
}

// ---- Logging and randomness ----

/** A log line (LogLevel); cut to log_line_bytes_max. Never decides anything in the host. */
export function log(level: i32, message: string): void {
  const length = encodeUtf8(message, log_scratch, log_line_bytes_max, true);
  host_log(level, <i32>log_scratch, length);
}

/** The next 32 bits of the agent's seeded stream (run seed, actor id, incarnation). */
export function random(): u32 {
  return <u32>host_random();
}

/** A uniform value in 0..n-1 (rejection sampling, so no modulo bias). Traps when n is 0. */
export function randomBelow(n: u32): u32 {
  if (n == 0) unreachable();
  // 2^32 mod n: draws below it would make the low residues more likely.
  const threshold: u32 = (<u32>0 - n) % n;
  let draw = random();
  while (draw < threshold) draw = random();
  return draw % n;
}

// ---- UTF-8 ----

/**
 * Encodes `text` (UTF-16, lone surrogates as U+FFFD, like TextEncoder) as UTF-8 into
 * `capacity` bytes at `destination`. Returns the byte count; when the text does not fit,
 * returns the bytes of the whole code points that fit if `truncate`, else -1.
 */
function encodeUtf8(text: string, destination: usize, capacity: i32, truncate: bool): i32 {
  const units = text.length;
  let written: i32 = 0;
  let index: i32 = 0;
  while (index < units) {
    let code = <u32>text.charCodeAt(index++);
    if (code >= 0xd800 && code < 0xe000) {
      const next = index < units ? <u32>text.charCodeAt(index) : 0;
      if (code < 0xdc00 && next >= 0xdc00 && next < 0xe000) {
        code = 0x10000 + ((code - 0xd800) << 10) + (next - 0xdc00);
        index++;
      } else {
        code = 0xfffd;
      }
    }
    const bytes: i32 = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (written + bytes > capacity) return truncate ? written : -1;
    const at = destination + <usize>written;
    if (bytes == 1) {
      store<u8>(at, <u8>code);
    } else if (bytes == 2) {
      store<u8>(at, <u8>(0xc0 | (code >> 6)));
      store<u8>(at, <u8>(0x80 | (code & 0x3f)), 1);
    } else if (bytes == 3) {
      store<u8>(at, <u8>(0xe0 | (code >> 12)));
      store<u8>(at, <u8>(0x80 | ((code >> 6) & 0x3f)), 1);
      store<u8>(at, <u8>(0x80 | (code & 0x3f)), 2);
    } else {
      store<u8>(at, <u8>(0xf0 | (code >> 18)));
      store<u8>(at, <u8>(0x80 | ((code >> 12) & 0x3f)), 1);
      store<u8>(at, <u8>(0x80 | ((code >> 6) & 0x3f)), 2);
      store<u8>(at, <u8>(0x80 | (code & 0x3f)), 3);
    }
    written += bytes;
  }
  return written;
}

// ---- Inference requests and responses (docs/abi.md, "Inference requests") ----
//
// An agent calls model m by publishing an InferRequest FlatBuffer (schemas/tensor.fbs) to
// `infer/<m>` (m must be in its manifest's capabilities.models); the answer, an
// InferResponse, arrives in its inbox at the next tick. The request is encoded by hand
// into the outbox, in one fixed layout (docs/abi.md): tables before what they point to, so
// every offset points forward, and the float data starts 16 bytes into the buffer's
// 16-byte aligned data block, so a reader can view it as floats in place.

/** Most dims a tensor may have (the host's tensorRankMax). */
export const tensor_rank_max: i32 = 8;

/** InferResponse.error_code (schemas/tensor.fbs). */
export enum InferErrorCode {
  None = 0,
  UnknownModel = 1,
  BadRequest = 2,
  BadInput = 3,
  ModelUnavailable = 4,
  RunFailed = 5,
}

/** Tensor.dtype float32 (schemas/tensor.fbs). */
const dtype_float32: u8 = 1;

// Byte offsets of the fixed part of a request; the comments of inferRequest draw it.
const request_vtable: u32 = 4;
const request_table: u32 = 16;
const inputs_vector: u32 = 32;
const tensor_vtable: u32 = 40;
const tensor_table: u32 = 52;
const data_vector: u32 = 76;
const data_start: u32 = 80;

/** Stores a FlatBuffers uoffset at `at` (buffer-relative) pointing at `target`. */
@inline
function storeOffset(buffer: usize, at: u32, target: u32): void {
  store<u32>(buffer + <usize>at, target - at);
}

/**
 * Writes a FlatBuffers string (u32 byte length, UTF-8 bytes, NUL) at `at`, padded to 4
 * bytes. Returns the offset after it, or 0 when it does not fit before `end`.
 */
function storeString(buffer: usize, at: u32, end: u32, text: string): u32 {
  if (at + 5 > end) return 0;
  const length = encodeUtf8(text, buffer + <usize>at + 4, <i32>(end - at - 5), false);
  if (length < 0) return 0;
  store<u32>(buffer + <usize>at, <u32>length);
  store<u8>(buffer + <usize>at + 4 + <usize>length, 0);
  let next = at + 4 + <u32>length + 1;
  while ((next & 3) != 0) {
    if (next >= end) return 0;
    store<u8>(buffer + <usize>next, 0);
    next++;
  }
  return next;
}

/**
 * Builds an InferRequest with one float32 input tensor in the outbox (which it overwrites):
 * request `id` (echoed in the response), `model` (may be empty on `infer/<model>`), input
 * `input` with `rank` u32 dims at `dims` and their product of f32 values at `data`. Returns
 * the request's length in bytes (publish it with `publish(topic, outbox(length))`), or
 * PublishResult.TooLarge when it does not fit the outbox. Traps when rank is outside
 * 0..tensor_rank_max (a programming error: shapes are fixed by the model).
 *
 *   0  root offset          -> 16
 *   4  request vtable       (id, model, inputs)
 *   16 request table        id, model -> M, inputs -> 32
 *   32 inputs vector        1, -> 52
 *   40 tensor vtable        (name, dtype, dims, data)
 *   52 tensor table         name -> N, dims -> D, data -> 76, dtype
 *   76 data vector          byte length, then the f32 values at 80 (16-byte aligned)
 *   D  dims vector          rank, then the dims
 *   N  input name string    then M, the model string
 */
export function inferRequest(id: u32, model: string, input: string, dims: usize, rank: i32, data: usize): i32 {
  if (<u32>rank > <u32>tensor_rank_max) unreachable();
  let count: u64 = 1;
  for (let i = 0; i < rank; i++) {
    count *= <u64>load<u32>(dims + <usize>(i << 2));
    // Past the outbox already: stop before the product can overflow.
    if (count > <u64>outbox_bytes_max) return PublishResult.TooLarge;
  }
  const dataBytes = <u32>count << 2;
  const end = <u32>outbox_bytes_max;
  const dimsAt = data_start + dataBytes;
  const nameAt = dimsAt + 4 + (<u32>rank << 2);
  if (<u64>nameAt > <u64>end) return PublishResult.TooLarge;
  const buffer = outbox_data;
  const modelAt = storeString(buffer, nameAt, end, input);
  if (modelAt == 0) return PublishResult.TooLarge;
  const length = storeString(buffer, modelAt, end, model);
  if (length == 0) return PublishResult.TooLarge;

  storeOffset(buffer, 0, request_table);
  // Request vtable: its size, the table's size, then each field's offset in the table
  // (id, model, inputs; reset_state is absent, so it reads as false).
  store<u16>(buffer + request_vtable, 10);
  store<u16>(buffer + request_vtable, 16, 2);
  store<u16>(buffer + request_vtable, 4, 4);
  store<u16>(buffer + request_vtable, 8, 6);
  store<u16>(buffer + request_vtable, 12, 8);
  store<u16>(buffer + request_vtable, 0, 10);
  // A table starts with the signed distance back to its vtable.
  store<i32>(buffer + request_table, <i32>(request_table - request_vtable));
  store<u32>(buffer + request_table, id, 4);
  storeOffset(buffer, request_table + 8, modelAt);
  storeOffset(buffer, request_table + 12, inputs_vector);
  store<u32>(buffer + inputs_vector, 1);
  storeOffset(buffer, inputs_vector + 4, tensor_table);
  // Tensor vtable: name, dtype, dims, data.
  store<u16>(buffer + tensor_vtable, 12);
  store<u16>(buffer + tensor_vtable, 20, 2);
  store<u16>(buffer + tensor_vtable, 4, 4);
  store<u16>(buffer + tensor_vtable, 16, 6);
  store<u16>(buffer + tensor_vtable, 8, 8);
  store<u16>(buffer + tensor_vtable, 12, 10);
  store<i32>(buffer + tensor_table, <i32>(tensor_table - tensor_vtable));
  storeOffset(buffer, tensor_table + 4, nameAt);
  storeOffset(buffer, tensor_table + 8, dimsAt);
  storeOffset(buffer, tensor_table + 12, data_vector);
  store<u32>(buffer + tensor_table, <u32>dtype_float32, 16); // dtype and 3 bytes of padding
  store<u32>(buffer + tensor_table, 0, 20); // padding up to the data vector
  store<u32>(buffer + data_vector, dataBytes);
  memory.copy(buffer + data_start, data, dataBytes);
  store<u32>(buffer + dimsAt, <u32>rank);
  memory.copy(buffer + dimsAt + 4, dims, <usize>rank << 2);
  return <i32>length;
}

/** Builds the request of `inferRequest` and publishes it to `topic` (look up
 * `infer/<model>`). Returns a PublishResult. */
export function publishInferRequest(topic: i32, id: u32, model: string, input: string, dims: usize, rank: i32, data: usize, priority: i32 = 0): i32 {
  const length = inferRequest(id, model, input, dims, rank, data);
  if (length < 0) return length;
  return host_publish(topic, <i32>outbox_data, length, priority);
}

// The response being read: its bytes, their length, its root table (0: none).
let response_bytes: usize = 0;
let response_length: u32 = 0;
let response_table: u32 = 0;
// The output selected by inferOutputF32 / inferOutputF32Named: its values and their count.
let output_data: usize = 0;
let output_count: i32 = 0;

/**
 * Takes a buffer-relative offset where a uoffset is stored. Returns its target when the
 * target and the 4 bytes after it are inside the response, else 0 (no object lives at 0:
 * the root offset does). Every read below checks its bounds like this: the response is
 * bytes from another actor, and a bad one must read as "missing", never trap.
 */
function followOffset(at: u32): u32 {
  if (<u64>at + 4 > <u64>response_length) return 0;
  const target = <u64>at + <u64>load<u32>(response_bytes + <usize>at);
  if (target == 0 || target + 4 > <u64>response_length) return 0;
  return <u32>target;
}

/** The offset of field `slot` (0-based) of the table at `table`, holding `size` bytes,
 * or 0 when the field is absent or the table is malformed. */
function fieldOf(table: u32, slot: i32, size: u32): u32 {
  if (table == 0 || <u64>table + 4 > <u64>response_length) return 0;
  const vtable = <i64>table - <i64>load<i32>(response_bytes + <usize>table);
  if (vtable < 0 || vtable + 4 > <i64>response_length) return 0;
  const vtableBytes = <u32>load<u16>(response_bytes + <usize>vtable);
  const tableBytes = <u32>load<u16>(response_bytes + <usize>vtable, 2);
  if (<u64>vtable + <u64>vtableBytes > <u64>response_length || <u64>table + <u64>tableBytes > <u64>response_length) return 0;
  const entry: u32 = 4 + (<u32>slot << 1);
  if (entry + 2 > vtableBytes) return 0;
  const offset = <u32>load<u16>(response_bytes + <usize>vtable + <usize>entry);
  if (offset < 4 || offset + size > tableBytes) return 0;
  return table + offset;
}

/** The element count of the vector (or string) at `vector` (from vectorOf), when its
 * `elementBytes`-byte elements fit the response; -1 otherwise. The elements start 4 bytes
 * after `vector`. */
function vectorLength(vector: u32, elementBytes: u32): i64 {
  if (vector == 0) return -1;
  const count = <u64>load<u32>(response_bytes + <usize>vector);
  if (<u64>vector + 4 + count * <u64>elementBytes > <u64>response_length) return -1;
  return <i64>count;
}

/** Where the vector or string in field `slot` of `table` starts (its length), or 0. */
function vectorOf(table: u32, slot: i32): u32 {
  const field = fieldOf(table, slot, 4);
  return field == 0 ? 0 : followOffset(field);
}

/**
 * Starts reading an InferResponse FlatBuffer of `len` bytes at `payload` (a message's
 * payloadPtr and payloadLength). Returns false when it is not one (too short, or its root
 * offset or table is out of bounds); the inferResponse* and inferOutput* readers then
 * return their defaults. Valid until the next message arrives.
 */
export function readInferResponse(payload: usize, len: i32): bool {
  response_bytes = payload;
  response_length = len < 0 ? 0 : <u32>len;
  response_table = 0;
  output_data = 0;
  output_count = 0;
  const root = followOffset(0);
  if (root == 0) return false;
  // The root table must have a readable vtable header; fields are checked as they are read.
  const vtable = <i64>root - <i64>load<i32>(response_bytes + <usize>root);
  if (vtable < 0 || vtable + 4 > <i64>response_length) return false;
  response_table = root;
  return true;
}

/** The response's id (the request's), or 0. */
export function inferResponseId(): u32 {
  const field = fieldOf(response_table, 0, 4);
  return field == 0 ? 0 : load<u32>(response_bytes + <usize>field);
}

/** The response's error code (InferErrorCode; None on success). */
export function inferResponseErrorCode(): i32 {
  const field = fieldOf(response_table, 4, 1);
  return field == 0 ? InferErrorCode.None : <i32>load<u8>(response_bytes + <usize>field);
}

/** How many output tensors the response holds. */
export function inferResponseOutputs(): i32 {
  const count = vectorLength(vectorOf(response_table, 3), 4);
  return count < 0 ? 0 : <i32>count;
}

/** The table of output `index`, or 0. */
function outputTable(index: i32): u32 {
  const vector = vectorOf(response_table, 3);
  const count = vectorLength(vector, 4);
  if (index < 0 || <i64>index >= count) return 0;
  return followOffset(vector + 4 + (<u32>index << 2));
}

/** Selects `table` as the output if it is a float32 tensor whose data fits; returns its
 * value count, or -1. */
function selectFloat32(table: u32): i32 {
  output_data = 0;
  output_count = 0;
  const dtype = fieldOf(table, 1, 1);
  if (dtype == 0 || load<u8>(response_bytes + <usize>dtype) != dtype_float32) return -1;
  const vector = vectorOf(table, 3);
  const bytes = vectorLength(vector, 1);
  if (bytes < 0 || (bytes & 3) != 0) return -1;
  output_data = response_bytes + <usize>vector + 4;
  output_count = <i32>(bytes >> 2);
  return output_count;
}

/** Selects output `index` of the response. Returns its number of f32 values, or -1 when
 * there is no such output or it is not a float32 tensor. Read it with inferOutputValue. */
export function inferOutputF32(index: i32): i32 {
  return selectFloat32(outputTable(index));
}

/** Selects the first output named `name` (compared as UTF-8 bytes). Returns its number of
 * f32 values, or -1 when there is none or it is not a float32 tensor. */
export function inferOutputF32Named(name: string): i32 {
  const length = encodeUtf8(name, name_scratch, topic_name_bytes_max, false);
  if (length < 0) return -1;
  const outputs = inferResponseOutputs();
  for (let index = 0; index < outputs; index++) {
    const table = outputTable(index);
    const text = vectorOf(table, 0);
    if (vectorLength(text, 1) != <i64>length) continue;
    if (memory.compare(response_bytes + <usize>text + 4, name_scratch, <usize>length) == 0) return selectFloat32(table);
  }
  output_data = 0;
  output_count = 0;
  return -1;
}

/** Value `index` of the selected output. Traps when index is outside 0..count-1. */
export function inferOutputValue(index: i32): f32 {
  if (<u32>index >= <u32>output_count) unreachable();
  return load<f32>(output_data + (<usize>index << 2));
}

/** Address of the selected output's values (little-endian f32, not necessarily aligned;
 * load<f32> reads them anyway), or 0 when none is selected. */
export function inferOutputData(): usize {
  return output_data;
}
