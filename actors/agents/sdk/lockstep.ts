// @ts-nocheck: AssemblyScript, compiled by asc (actors/agents/build.ts), not by tsc.
/**
 * lockstep agent SDK for AssemblyScript: ABI v1 (docs/abi.md).
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
 * its bump pointer in a global that only a start function can initialise; ABI v1 refuses
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

// ---- The host imports: module `lockstep`, exactly the four of docs/abi.md ----

@external("lockstep", "publish")
declare function host_publish(topic: i32, ptr: i32, len: i32, priority: i32): i32;

@external("lockstep", "topic")
declare function host_topic(ptr: i32, len: i32): i32;

@external("lockstep", "log")
declare function host_log(level: i32, ptr: i32, len: i32): void;

@external("lockstep", "random")
declare function host_random(): i32;

// ---- Constants ----

/** The ABI this SDK implements; `lockstep_abi_version` returns it. */
export const abi_version: i32 = 1;

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
  /** The topic is not in the manifest's capabilities.publish. */
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

/** Size of the inbound message header: topic, sender, seq, priority (4 x u32 LE). */
export const header_bytes: i32 = 16;

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

// The object header is placed in a 32-byte slot ending where the data starts, so the inbox,
// its payload (inbox + 16) and the outbox are 16-byte aligned: any load<T> on them is.
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
 * The inbound message: an overlay on its 16-byte header (docs/abi.md, inbound layout), so
 * reading a field is one load. Valid until the next message arrives.
 */
@final @unmanaged
export class Message {
  /** Topic id; compare with what `topic(name)` returned. */
  readonly topic: i32;
  /** Sender actor id; 0 = external input. */
  readonly sender: u32;
  /** Sender sequence number, low 32 bits. */
  readonly seq: u32;
  /** Priority, 0..255. */
  readonly priority: u32;

  /** The payload, a view over the inbox (no copy). */
  get payload(): Uint8Array {
    return changetype<Uint8Array>(payload_view);
  }

  /** Address of the payload's first byte, for `load<T>`. */
  get payloadPtr(): usize {
    return changetype<usize>(this) + <usize>header_bytes;
  }

  /** Payload length in bytes. */
  get payloadLength(): i32 {
    return load<i32>(payload_view, offsetof<Uint8Array>("byteLength"));
  }
}

/**
 * The message agent_receive was given. Traps when (ptr, len) is not a whole message in the
 * inbox: the host always copies it to agent_alloc's address, so anything else is a host bug.
 */
export function message(ptr: i32, len: i32): Message {
  const address = <usize>ptr;
  if (address != inbox || len < header_bytes || len > inbox_bytes_max) unreachable();
  setView(payload_view, inbox, inbox_bytes_max, inbox + <usize>header_bytes, len - header_bytes);
  return changetype<Message>(address);
}

// ---- Topics and publishing ----

/** The id of topic `name`, or -1 when it is unknown or not in the manifest's capabilities.
 * Look topics up once, in agent_init, and keep the ids in globals. */
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
