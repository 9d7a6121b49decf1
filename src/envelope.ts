import { jsonDecode, utf8Decode } from './codec.ts';
import { envelopeHeaderBytes } from './envelope-layout.ts';
import type { Slab } from './slabs.ts';

/**
 * What a message is (the Envelope's `kind`, schemas/envelope.fbs). Most are plain messages;
 * the others come from asks and timers, and `correlation` says what they answer:
 * - `ask`: a reply is awaited; answer it with `ctx.reply(message, ...)`.
 * - `reply`: the answer to your ask whose id (`ctx.ask(...).id`) is `correlation`.
 * - `timer`: your timer `correlation` fired (`ctx.after`, `ctx.every`).
 * - `askTimeout`: your ask `correlation` got no reply within its ticks.
 * - `askFailed`: your ask `correlation` will get none: its target went down or never got it;
 *   the payload says why (`message.text()`).
 */
export const MessageKind = {
  message: 0,
  ask: 1,
  reply: 2,
  timer: 3,
  askTimeout: 4,
  askFailed: 5,
} as const;
export type MessageKindCode = (typeof MessageKind)[keyof typeof MessageKind];

/** The `payload` argument of an envelope whose bytes are in a slab. */
export const inSlab: Uint8Array = new Uint8Array(0);

/** A topic interned to an id. The hot path carries ids; names are for people and the log. */
export interface Topic {
  readonly id: number;
  readonly name: string;
}

/**
 * One message in flight, as actors see it. `topic`, `sender`, `seq`, `tick` and `priority`
 * are the FlatBuffers `Envelope` fields of `schemas/envelope.fbs`; between JS actors the
 * runtime passes this object itself (no encode/decode on the orchestrator thread), and the
 * codec encodes it where bytes are needed (worker rings, `full` log records).
 *
 * `hashHi`/`hashLo` are computed once when the envelope is published and folded into every
 * digest that covers it (delivered, received, sent), so no digest re-reads the payload.
 *
 * An envelope a WASM agent may receive lives in a shared mailbox slab (src/slabs.ts):
 * `slab` and `slabAt` say where, and its bytes there are what a worker copies into the
 * agent. No view of it is made until the first read of `payload`, which takes a copy of
 * its own, so an actor that keeps a payload keeps a few bytes, never a
 * whole slab alive.
 */
export class Envelope {
  /** The payload, or null while it is only in `slab` (made on the first read of `payload`). */
  private payloadBytes: Uint8Array | null;
  private readonly lengthBytes: number;

  constructor(
    readonly topicInfo: Topic,
    readonly sender: number,
    readonly seq: number,
    /** The tick the envelope was published in (delivered in the next one). */
    readonly tick: number,
    readonly priority: number,
    /** The payload; ignored for an envelope in a slab (pass `inSlab`), whose bytes are there. */
    payload: Uint8Array,
    readonly hashHi: number,
    readonly hashLo: number,
    /** The shared mailbox slab the envelope lives in, or null. */
    readonly slab: Slab | null = null,
    /** Where in `slab` its Envelope FlatBuffer starts. */
    readonly slabAt = 0,
    /** The payload's length in bytes (for an envelope in a slab: the only way to say it). */
    payloadLength = payload.length,
    /** What the message is: a `MessageKind`. */
    readonly kind: number = MessageKind.message,
    /** What a reply, a failed ask or a timer answers (see `MessageKind`); 0 for a plain message. */
    readonly correlation = 0,
  ) {
    this.payloadBytes = slab === null ? payload : null;
    this.lengthBytes = payloadLength;
  }

  /** The payload bytes. */
  get payload(): Uint8Array {
    if (this.payloadBytes === null) {
      // Its own copy, not a view: a kept payload must not keep the whole slab alive.
      const start = this.slabAt + envelopeHeaderBytes;
      this.payloadBytes = this.slab!.bytes.slice(start, start + this.lengthBytes);
    }
    return this.payloadBytes;
  }

  /** Payload length in bytes (no copy). */
  get payloadLength(): number {
    return this.lengthBytes;
  }

  get topic(): number {
    return this.topicInfo.id;
  }

  get topicName(): string {
    return this.topicInfo.name;
  }

  /** The payload parsed as JSON; throws PayloadEncodingError on malformed JSON. */
  json<T = unknown>(): T {
    return jsonDecode(this.payload) as T;
  }

  /** The payload decoded as UTF-8 text. */
  text(): string {
    return utf8Decode(this.payload);
  }
}

export type Message = Envelope;
