/**
 * The replay log's logical records (ADR-007). The on-disk form is FlatBuffers
 * (`schemas/log.fbs`), framed with lengths, CRCs and a SHA-256 hash chain (see `format.ts`).
 * These types are what the writer takes and the reader gives back.
 */

import { ACTOR_DIGEST_STRIDE, ActorDigestField, type Digest64, type TickFacts } from '../tick-facts.ts';

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

export {
  ACTOR_DIGEST_STRIDE,
  ActorDigestField,
  type Digest64,
  type DropRecord,
  type EnvelopeRecord,
  type InjectedInput,
  type LifecycleEvent,
  type TopicDeclaration,
} from '../tick-facts.ts';

export interface ActorDigest {
  actor: number;
  /** Messages the actor processed this tick. */
  received: number;
  /** Messages the actor published this tick. */
  sent: number;
  receivedDigest: Digest64;
  sentDigest: Digest64;
}

/** One tick in the log: the kernel's facts of the tick, and the inference answers settled in it. */
export interface TickRecord extends Omit<TickFacts, 'replies' | 'askFailures'> {
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
