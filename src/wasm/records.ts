/**
 * The pool's side of the records of protocol.ts: the commands of a tick, encoded as they
 * are queued into one growable buffer per lane, and the result records, decoded into each
 * agent's output for the tick (what an agent published goes straight into a shared
 * mailbox slab: its final place). Every transport uses these, so a command reaches an
 * AgentHost as the same bytes whether it crossed a ring to a worker or was handed over on
 * the orchestrator's thread, and a result reads the same whichever way it came back.
 */
import { copyBytes } from '../copy.ts';
import { envelopeHeaderBytes, envelopeSlotBytes, EnvelopeAt } from '../envelope-layout.ts';
import type { MailboxSlabs, Slab } from '../slabs.ts';
import { CrashKind, Op, Result, agentTickRecordBytes, deliverRecordBytes, publishHeadBytes, readU32, type CrashKindCode } from './protocol.ts';

/** Bytes of the u32 length written before each record in a queue. */
export const queueLengthBytes = 4;
const lengthBytes = queueLengthBytes;

/**
 * One lane's commands for the next barrier, encoded when queued: records one after
 * another, each after its u32 length. No object per command, and the transport copies each
 * record once, into its ring (or hands a view of it to the in-thread host).
 */
export class CommandQueue {
  bytes = new Uint8Array(4096);
  /** `bytes` as 32-bit words (records are multiples of 4 bytes, lengths included). */
  words = new Int32Array(this.bytes.buffer);
  private view = new DataView(this.bytes.buffer);
  /** Bytes used. */
  length = 0;
  /** Records queued. */
  count = 0;

  /** The next record's body: reserves `bodyBytes` after its length and returns where the body starts. */
  private reserve(bodyBytes: number): number {
    const needed = this.length + lengthBytes + bodyBytes;
    if (needed > this.bytes.length) {
      const grown = new Uint8Array((Math.max(needed, this.bytes.length * 2) + 3) & ~3);
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
      this.words = new Int32Array(grown.buffer);
      this.view = new DataView(grown.buffer);
    }
    this.view.setUint32(this.length, bodyBytes, true);
    const at = this.length + lengthBytes;
    this.length = needed;
    this.count++;
    return at;
  }

  /** A 12-byte command: op, agent, one word (LOAD's token, STEP's tick, else 0). */
  push(op: number, agent: number, word = 0): void {
    const at = this.reserve(12);
    this.view.setUint32(at, op, true);
    this.view.setUint32(at + 4, agent, true);
    this.view.setUint32(at + 8, word >>> 0, true);
  }

  /** AGENT_TICK: the agent's last accepted seq and its backpressure count. */
  pushAgentTick(agent: number, seq: number, backpressure: number): void {
    const at = this.reserve(agentTickRecordBytes);
    this.view.setUint32(at, Op.agentTick, true);
    this.view.setUint32(at + 4, agent, true);
    this.view.setUint32(at + 8, seq >>> 0, true);
    this.view.setUint32(at + 12, Math.floor(seq / 0x1_0000_0000), true);
    this.view.setUint32(at + 16, backpressure >>> 0, true);
  }

  /** DELIVER: the envelope of `length` bytes at `slab[at]`. */
  pushDeliver(agent: number, slab: number, at: number, length: number): void {
    const body = this.reserve(deliverRecordBytes);
    this.view.setUint32(body, Op.deliver, true);
    this.view.setUint32(body + 4, agent, true);
    this.view.setUint32(body + 8, slab, true);
    this.view.setUint32(body + 12, at, true);
    this.view.setUint32(body + 16, length, true);
  }

  /** Empties the queue (keeping its buffer). */
  clear(): void {
    this.length = 0;
    this.count = 0;
  }

  /** Calls `fn` with each record's start and length in `bytes`, in order. */
  forEach(fn: (start: number, length: number) => void): void {
    for (let at = 0; at < this.length; ) {
      const length = this.view.getUint32(at, true);
      fn(at + lengthBytes, length);
      at += lengthBytes + length;
    }
  }

  /** The body length of the record whose length word is at `cursor` (a cursor walks 0, then cursor + 4 + length...). */
  lengthAt(cursor: number): number {
    return this.view.getUint32(cursor, true);
  }
}

/** A tick boundary record (TICK_BEGIN or TICK_END) in `scratch`, which must hold 12 bytes. */
export function tickRecord(scratch: Uint8Array, op: typeof Op.tickBegin | typeof Op.tickEnd, tick: number): Uint8Array {
  const view = new DataView(scratch.buffer, scratch.byteOffset, 12);
  view.setUint32(0, op, true);
  view.setUint32(4, 0, true);
  view.setUint32(8, tick >>> 0, true);
  return scratch.subarray(0, 12);
}

/** What an agent published this tick, placed in a slab (see Kernel.publishPlaced). */
export interface PlacedPublish {
  slab: Slab;
  at: number;
  topic: number;
  priority: number;
  /** Payload bytes. */
  length: number;
  seq: number;
  hashHi: number;
  hashLo: number;
}

export interface AgentTickOutput {
  publishes: PlacedPublish[];
  /** `name` is set when the topic id is no topic's (a refused inference lookup, agent-host.ts). */
  refused: { topic: number; code: number; name: string | null }[];
  logs: { level: number; text: string }[];
  crash: { kind: CrashKindCode; consumed: number; reason: string } | null;
  stopRequested: boolean;
  loaded: { ok: boolean; error: string } | null;
}

function emptyOutput(): AgentTickOutput {
  return { publishes: [], refused: [], logs: [], crash: null, stopRequested: false, loaded: null };
}

function outputOf(outputs: Map<number, AgentTickOutput>, agent: number): AgentTickOutput {
  let output = outputs.get(agent);
  if (output === undefined) {
    output = emptyOutput();
    outputs.set(agent, output);
  }
  return output;
}

const utf8 = new TextDecoder();

/**
 * A PUBLISH record's Envelope, placed into a slab: its 60-byte header, as the host wrote
 * it, from `head[headStart]` and its `length` payload bytes from `payload[payloadStart]`,
 * copied a word at a time where they can be (`headWords`/`payloadWords`: the same bytes
 * as words, or null).
 */
function placePublish(
  outputs: Map<number, AgentTickOutput>,
  slabs: MailboxSlabs,
  agent: number,
  hashHi: number,
  hashLo: number,
  head: Uint8Array,
  headWords: Int32Array | null,
  headStart: number,
  length: number,
  payload: Uint8Array,
  payloadWords: Int32Array | null,
  payloadStart: number,
): void {
  if (readU32(head, headStart + EnvelopeAt.payloadLength) !== length || readU32(head, headStart + EnvelopeAt.sender) !== agent) {
    throw new Error(`assertion failed: a PUBLISH of agent ${agent} whose Envelope names another sender or payload length`);
  }
  const topic = readU32(head, headStart + EnvelopeAt.topic);
  const seq = readU32(head, headStart + EnvelopeAt.seq) + readU32(head, headStart + EnvelopeAt.seq + 4) * 0x1_0000_0000;
  const priority = head[headStart + EnvelopeAt.priority]!;
  const at = slabs.allocate(envelopeSlotBytes(length));
  const slab = slabs.lastSlab!;
  copyBytes(slab.bytes, slab.words, at, head, headWords, headStart, envelopeHeaderBytes);
  copyBytes(slab.bytes, slab.words, at + envelopeHeaderBytes, payload, payloadWords, payloadStart, length);
  outputOf(outputs, agent).publishes.push({ slab, at, topic, priority, length, seq, hashHi, hashLo });
}

/**
 * Folds the result record `bytes[start, +length)` into `outputs` (copying what it keeps:
 * `bytes` may be a ring's or a host's scratch); returns the tick of a TICK_DONE, else -1.
 * `words` is `bytes` as 32-bit words (records start 4-aligned), or null.
 */
export function decodeResult(
  bytes: Uint8Array,
  words: Int32Array | null,
  start: number,
  length: number,
  outputs: Map<number, AgentTickOutput>,
  slabs: MailboxSlabs,
): number {
  const op = readU32(bytes, start);
  const agent = readU32(bytes, start + 4);
  if (op === Result.publish) {
    if (length < publishHeadBytes + envelopeHeaderBytes) throw new Error(`assertion failed: a PUBLISH record of ${length} bytes`);
    placePublish(outputs, slabs, agent, readU32(bytes, start + 8), readU32(bytes, start + 12), bytes, words, start + publishHeadBytes, length - publishHeadBytes - envelopeHeaderBytes, bytes, words, start + publishHeadBytes + envelopeHeaderBytes);
    return -1;
  }
  if (op === Result.tickDone) return readU32(bytes, start + 8);
  const view = bytes.subarray(start, start + length);
  switch (op) {
    case Result.refused:
      outputOf(outputs, agent).refused.push({ topic: readU32(view, 8), code: readU32(view, 12), name: view.length > 16 ? utf8.decode(view.subarray(16)) : null });
      break;
    case Result.log:
      outputOf(outputs, agent).logs.push({ level: readU32(view, 8), text: utf8.decode(view.subarray(12)) });
      break;
    case Result.crash:
      outputOf(outputs, agent).crash = { kind: readU32(view, 8) as CrashKindCode, consumed: readU32(view, 12), reason: utf8.decode(view.subarray(16)) };
      break;
    case Result.stop:
      outputOf(outputs, agent).stopRequested = true;
      break;
    case Result.loaded: {
      const output = outputOf(outputs, agent);
      output.loaded = { ok: readU32(view, 8) === 1, error: utf8.decode(view.subarray(12)) };
      if (!output.loaded.ok) output.crash = { kind: CrashKind.instantiate, consumed: 0, reason: output.loaded.error };
      break;
    }
    default:
      throw new Error(`assertion failed: unknown result opcode ${op}`);
  }
  return -1;
}

/**
 * `decodeResult` for a PUBLISH the host wrote in two parts (the in-thread transport gets
 * them as they are: its head in the host's scratch, the payload in the agent's memory).
 */
export function decodePublishParts(
  outputs: Map<number, AgentTickOutput>,
  slabs: MailboxSlabs,
  head: Uint8Array,
  headStart: number,
  headLength: number,
  body: Uint8Array,
  bodyStart: number,
  bodyLength: number,
  headWords: Int32Array | null = null,
  bodyWords: Int32Array | null = null,
): void {
  if (headLength !== publishHeadBytes + envelopeHeaderBytes) throw new Error('assertion failed: a PUBLISH whose head is not a publish head and an Envelope header');
  placePublish(outputs, slabs, readU32(head, headStart + 4), readU32(head, headStart + 8), readU32(head, headStart + 12), head, headWords, headStart + publishHeadBytes, bodyLength, body, bodyWords, bodyStart);
}
