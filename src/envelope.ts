import { jsonDecode, utf8Decode } from './codec.ts';
import type { Slab } from './slabs.ts';

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
 * agent. Its `payload` is then first a view into the slab; the first read of `payload`
 * swaps in a copy of its own, so an actor that keeps a payload keeps a few bytes, never a
 * whole slab alive.
 */
export class Envelope {
  private payloadBytes: Uint8Array;
  private inSlab: boolean;

  constructor(
    readonly topicInfo: Topic,
    readonly sender: number,
    readonly seq: number,
    /** The tick the envelope was published in (delivered in the next one). */
    readonly tick: number,
    readonly priority: number,
    payload: Uint8Array,
    readonly hashHi: number,
    readonly hashLo: number,
    /** The shared mailbox slab the envelope lives in, or null. */
    readonly slab: Slab | null = null,
    /** Where in `slab` its Envelope FlatBuffer starts. */
    readonly slabAt = 0,
  ) {
    this.payloadBytes = payload;
    this.inSlab = slab !== null;
  }

  /** The payload bytes. */
  get payload(): Uint8Array {
    if (this.inSlab) {
      this.payloadBytes = this.payloadBytes.slice();
      this.inSlab = false;
    }
    return this.payloadBytes;
  }

  /** Payload length in bytes (no copy). */
  get payloadLength(): number {
    return this.payloadBytes.length;
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
