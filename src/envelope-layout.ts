/**
 * One message as a WASM agent gets it (ABI version 2, docs/abi.md) and as the worker rings
 * and shared mailboxes carry it: a `schemas/envelope.fbs` Envelope FlatBuffer in one fixed
 * layout, written by hand (no builder, no allocation) and readable by any FlatBuffers
 * library; test/envelope-layout.test.ts reads what this writes with the flatc-generated code.
 *
 *   offset  bytes  content
 *    0       4     root uoffset = 20 (the table)
 *    4      16     vtable: size 16, table size 36, then the field offsets from the table:
 *                  topic 4, sender 8, seq 12, tick 20, priority 32, payload 28
 *   20       4     table: soffset 16 (vtable at 20 - 16 = 4)
 *   24       4     topic    u32
 *   28       4     sender   u32
 *   32       8     seq      u64  (8-aligned from the start, as FlatBuffers wants)
 *   40       8     tick     u64
 *   48       4     payload  uoffset = 8 (the vector at 56)
 *   52       1     priority u8, then 3 bytes of padding
 *   56       4     payload length n
 *   60       n     payload bytes
 *
 * Every field is present (defaults are written too), so a reader may also use the offsets
 * above directly, as the SDKs do. The message is 60 + n bytes; where envelopes are packed
 * one after another (a shared mailbox slab) each starts 8-aligned.
 */

export const EnvelopeAt = {
  root: 0,
  vtable: 4,
  table: 20,
  topic: 24,
  sender: 28,
  seq: 32,
  tick: 40,
  payloadOffset: 48,
  priority: 52,
  payloadLength: 56,
  payload: 60,
} as const;

/** Bytes before the payload: the header every message carries. */
export const envelopeHeaderBytes = EnvelopeAt.payload;

/** The vtable and the table's fixed words, as they always are. */
const vtable = [16, 36, EnvelopeAt.topic - EnvelopeAt.table, EnvelopeAt.sender - EnvelopeAt.table, EnvelopeAt.seq - EnvelopeAt.table, EnvelopeAt.tick - EnvelopeAt.table, EnvelopeAt.priority - EnvelopeAt.table, EnvelopeAt.payloadOffset - EnvelopeAt.table] as const;

/** Bytes of the message of a payload of `payloadBytes`. */
export function envelopeBytes(payloadBytes: number): number {
  return envelopeHeaderBytes + payloadBytes;
}

/** `envelopeBytes` rounded up to 8, so the next envelope packed after it is 8-aligned. */
export function envelopeSlotBytes(payloadBytes: number): number {
  return (envelopeHeaderBytes + payloadBytes + 7) & ~7;
}

/**
 * Writes the 60-byte header of an envelope into `bytes` at `at` (which must be 4-aligned
 * within its buffer); the caller writes the `payloadBytes` bytes at `at + 60`. `seq` and
 * `tick` are integers below 2^53. Takes the DataView of `bytes`' buffer (callers keep one).
 */
export function writeEnvelopeHeader(
  view: DataView,
  at: number,
  topic: number,
  sender: number,
  seq: number,
  tick: number,
  priority: number,
  payloadBytes: number,
): void {
  view.setUint32(at + EnvelopeAt.root, EnvelopeAt.table, true);
  for (let i = 0; i < vtable.length; i++) view.setUint16(at + EnvelopeAt.vtable + 2 * i, vtable[i]!, true);
  view.setInt32(at + EnvelopeAt.table, EnvelopeAt.table - EnvelopeAt.vtable, true);
  view.setUint32(at + EnvelopeAt.topic, topic, true);
  view.setUint32(at + EnvelopeAt.sender, sender, true);
  writeU64(view, at + EnvelopeAt.seq, seq);
  writeU64(view, at + EnvelopeAt.tick, tick);
  view.setUint32(at + EnvelopeAt.payloadOffset, EnvelopeAt.payloadLength - EnvelopeAt.payloadOffset, true);
  view.setUint32(at + EnvelopeAt.priority, priority & 0xff, true);
  view.setUint32(at + EnvelopeAt.payloadLength, payloadBytes, true);
}

/**
 * Writes only the fields of a header `writeEnvelopeHeader` wrote before at `at` (the root,
 * the vtable and the offsets are the same in every envelope): for a scratch header that is
 * rewritten for every message.
 */
export function writeEnvelopeFields(
  view: DataView,
  at: number,
  topic: number,
  sender: number,
  seq: number,
  tick: number,
  priority: number,
  payloadBytes: number,
): void {
  view.setUint32(at + EnvelopeAt.topic, topic, true);
  view.setUint32(at + EnvelopeAt.sender, sender, true);
  writeU64(view, at + EnvelopeAt.seq, seq);
  writeU64(view, at + EnvelopeAt.tick, tick);
  view.setUint32(at + EnvelopeAt.priority, priority & 0xff, true);
  view.setUint32(at + EnvelopeAt.payloadLength, payloadBytes, true);
}

/** Rewrites the seq of an envelope written by `writeEnvelopeHeader` (the kernel assigns it). */
export function writeEnvelopeSeq(view: DataView, at: number, seq: number): void {
  writeU64(view, at + EnvelopeAt.seq, seq);
}

function writeU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value >>> 0, true);
  view.setUint32(at + 4, Math.floor(value / 0x1_0000_0000), true);
}

function readU64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * 0x1_0000_0000;
}

/** The fields of an envelope in this layout (for the host and tests; agents read it themselves). */
export function readEnvelopeHeader(view: DataView, at: number): { topic: number; sender: number; seq: number; tick: number; priority: number; payloadBytes: number } {
  return {
    topic: view.getUint32(at + EnvelopeAt.topic, true),
    sender: view.getUint32(at + EnvelopeAt.sender, true),
    seq: readU64(view, at + EnvelopeAt.seq),
    tick: readU64(view, at + EnvelopeAt.tick),
    priority: view.getUint8(at + EnvelopeAt.priority),
    payloadBytes: view.getUint32(at + EnvelopeAt.payloadLength, true),
  };
}
