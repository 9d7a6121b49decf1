import { jsonDecode, utf8Decode } from './codec.ts';

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
 */
export class Envelope {
  constructor(
    readonly topicInfo: Topic,
    readonly sender: number,
    readonly seq: number,
    /** The tick the envelope was published in (delivered in the next one). */
    readonly tick: number,
    readonly priority: number,
    readonly payload: Uint8Array,
    readonly hashHi: number,
    readonly hashLo: number,
  ) {}

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
