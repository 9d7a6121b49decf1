/**
 * The replay log's logical records (ADR-007). The on-disk form is FlatBuffers
 * (`schemas/log.fbs`), framed with lengths, CRCs and a SHA-256 hash chain (see `format.ts`).
 * These types are what the writer takes and the reader gives back.
 */

/** Bumped whenever the bytes a given run writes would change meaning. */
export const LOG_FORMAT_VERSION = 1;

/**
 * What a tick record carries about delivered traffic.
 * - `digest`: per-actor digests of what each actor received and sent: cheap, names tick and actor.
 * - `full`:   every delivered envelope too: names the message, costs log bandwidth.
 */
export type LogLevel = 'digest' | 'full';

export interface LibraryVersion {
  name: string;
  version: string;
}

/** A registered model's version: the sha256 of its file when the run began. */
export interface ModelVersionRecord {
  name: string;
  /** Hex; empty when the file could not be read. */
  sha256: string;
  bytes: number;
}

export interface LogHeader {
  formatVersion: number;
  systemName: string;
  /** The run seed, an unsigned 32-bit integer. */
  seed: number;
  level: LogLevel;
  /** Canonical JSON (sorted keys) of the runtime config the run used. */
  configJson: string;
  versions: LibraryVersion[];
  /** The inference actor's models (empty without one). */
  models: ModelVersionRecord[];
  /** True when a GPU (WebGPU) session served the run's models at its start. */
  gpu: boolean;
  /** Canonical JSON of the inference config (provider asked for, cache, models' options); empty without one. */
  inferenceJson: string;
}

/** Who computed an inference answer: nobody (an error before any run), the CPU or a GPU. */
export type InferenceProvider = 'none' | 'cpu' | 'webgpu';

/**
 * One answer of the inference actor. CPU answers are bit-identical run to run, so the log
 * keeps their digest and replay checks it; GPU answers are not, so the log keeps them
 * whole and replay substitutes them (as it does a CPU answer logged whole).
 */
export interface InferenceRecord {
  model: string;
  /** The requesting actor's id. */
  requester: number;
  /** The request envelope's sender seq. */
  seq: number;
  /** The id the requester put in its request. */
  requestId: number;
  provider: InferenceProvider;
  /** Digest of the response payload (two 32-bit lanes). */
  digest: Digest64;
  /** The whole response payload, when kept whole; null otherwise. */
  response: Uint8Array | null;
  /** A GPU fallback or other event worth a person's attention; usually empty. */
  note: string;
}

/** An external input, taken in at the start of the tick whose record holds it. */
export interface InjectedInput {
  topic: number;
  /** Injection sequence number, counted over the whole run (the external sender's seq). */
  seq: number;
  priority: number;
  payload: Uint8Array;
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

/** One delivered envelope, as stored at the `full` level. */
export interface EnvelopeRecord {
  topic: number;
  sender: number;
  seq: number;
  /** The tick the envelope was published in. */
  tick: number;
  priority: number;
  payload: Uint8Array;
}

/** A 64-bit digest as two unsigned 32-bit halves; kept as numbers to stay off BigInt. */
export interface Digest64 {
  hi: number;
  lo: number;
}

/**
 * Per-actor digest entries are stored flat, `ACTOR_DIGEST_STRIDE` uint32 values per actor,
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

export interface ActorDigest {
  actor: number;
  /** Messages the actor processed this tick. */
  received: number;
  /** Messages the actor published this tick. */
  sent: number;
  receivedDigest: Digest64;
  sentDigest: Digest64;
}

export interface TickRecord {
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
  /** The inference actor's answers settled in this tick, in request order. */
  inferences: InferenceRecord[];
}

/** Written by a clean close; a log without one was cut short (crash, kill, torn tail). */
export interface EndRecord {
  ticks: number;
  reason: string;
}

export type LogRecord =
  | { kind: 'header'; header: LogHeader }
  | { kind: 'tick'; tick: TickRecord }
  | { kind: 'end'; end: EndRecord };

/** Expands the flat per-actor digest array into objects (for reports, not for the hot path). */
export function actorDigestsOf(flat: Uint32Array): ActorDigest[] {
  const digests: ActorDigest[] = [];
  for (let i = 0; i + ACTOR_DIGEST_STRIDE <= flat.length; i += ACTOR_DIGEST_STRIDE) {
    digests.push({
      actor: flat[i + ActorDigestField.actor]!,
      received: flat[i + ActorDigestField.received]!,
      sent: flat[i + ActorDigestField.sent]!,
      receivedDigest: { hi: flat[i + ActorDigestField.receivedHi]!, lo: flat[i + ActorDigestField.receivedLo]! },
      sentDigest: { hi: flat[i + ActorDigestField.sentHi]!, lo: flat[i + ActorDigestField.sentLo]! },
    });
  }
  return digests;
}
