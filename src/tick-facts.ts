/**
 * What a tick did, as the kernel reports it: topics interned, inputs taken in, lifecycle
 * transitions, drops, what was delivered and what each actor received and sent. The kernel
 * knows nothing of the log: the recorder (src/recorder.ts) turns these facts into the log's
 * tick record (src/log/types.ts), and the event bus (src/events.ts) tells listeners.
 */

/** An external input, taken in at the start of the tick whose facts hold it. */
export interface InjectedInput {
  topic: number;
  /** Injection sequence number, counted over the whole run (the external sender's seq). */
  seq: number;
  priority: number;
  payload: Uint8Array;
  /** `MessageKind.ask` for an ask from outside (its correlation is `seq`); absent or 0 otherwise. */
  kind?: number;
  /** For an ask: the ticks its target has to reply, counted from the tick that takes it in. */
  timeoutTicks?: number;
}

/** A lifecycle transition of one actor (created, initializing, running, crashed, ...). */
export interface LifecycleEvent {
  actor: number;
  from: string;
  to: string;
  /** Actor name on creation, the error message on a crash, empty otherwise. */
  detail: string;
}

/** A message that did not reach an actor, and why. Nothing is dropped without one of these. */
export interface DropRecord {
  /** The actor that did not get the message (0 when nobody was subscribed). */
  actor: number;
  topic: number;
  sender: number;
  seq: number;
  reason: string;
}

/** A topic interned during this tick: the id it got and its name. */
export interface TopicDeclaration {
  id: number;
  name: string;
}

/** One delivered envelope, as the `full` level keeps it. */
export interface EnvelopeRecord {
  topic: number;
  sender: number;
  seq: number;
  /** The tick the envelope was published in. */
  tick: number;
  priority: number;
  payload: Uint8Array;
  /** A `MessageKind`; absent or 0 for a plain message. */
  kind?: number;
  /** For a reply, a failed ask or a timer: what it answers (see schemas/envelope.fbs). */
  correlation?: number;
}

/** A reply to an ask from outside (a host or `runtime.ask`): the system's answer, out of it. */
export interface ReplyFact {
  /** The ask's correlation: the seq of the input that carried it. */
  correlation: number;
  /** The actor that replied. */
  actor: number;
  payload: Uint8Array;
}

/** An ask from outside that will get no reply: it timed out, or its target went down or never got it. */
export interface AskFailureFact {
  correlation: number;
  /** The actor that was asked. */
  actor: number;
  /** True when it ran out of ticks; false when it failed (then `reason` says why). */
  timedOut: boolean;
  /** False when the actor never got the ask (it was dropped on its way): then it was not processed. */
  received: boolean;
  reason: string;
}

/** A 64-bit digest as two unsigned 32-bit halves; kept as numbers to stay off BigInt. */
export interface Digest64 {
  hi: number;
  lo: number;
}

/**
 * Per-actor digest entries are kept flat, `ACTOR_DIGEST_STRIDE` uint32 values per actor,
 * in this order. Flat storage keeps the per-tick encode to one typed-array copy.
 */
export const ACTOR_DIGEST_STRIDE = 7;
export const ActorDigestField = {
  actor: 0,
  received: 1,
  sent: 2,
  receivedHi: 3,
  receivedLo: 4,
  sentHi: 5,
  sentLo: 6,
} as const;

/** What one tick did. Every list is in the order things happened, which is deterministic. */
export interface TickFacts {
  tick: number;
  newTopics: TopicDeclaration[];
  injected: InjectedInput[];
  lifecycle: LifecycleEvent[];
  drops: DropRecord[];
  /** Envelopes delivered at the start of this tick (before fan-out to subscribers). */
  deliveredCount: number;
  deliveredDigest: Digest64;
  /** `ACTOR_DIGEST_STRIDE` uint32 values per actor that ran this tick, in the order they ran. */
  actorDigests: Uint32Array;
  /** Every delivered envelope, in delivery order; present only at the `full` level. */
  envelopes: EnvelopeRecord[] | null;
  /**
   * Replies to asks from outside, and those asks that failed, in the order they happened.
   * Outputs, not inputs: the log does not hold them (replay makes them again), but a reply
   * is in the replier's sent digest.
   */
  replies: ReplyFact[];
  askFailures: AskFailureFact[];
}
