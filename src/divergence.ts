/**
 * Finding the first difference between two runs' tick records: which tick, which actor,
 * which message. Shared by `replay` and the testing kit.
 */
import { ACTOR_DIGEST_STRIDE, type EnvelopeRecord, type TickRecord } from './log/types.ts';
import { digestHex } from './hash.ts';

export interface Names {
  actorName(id: number): string;
  topicName(id: number): string;
}

export interface Divergence {
  tick: number;
  /** The actor whose behaviour differs first, when one can be named. */
  actor: string | null;
  /** The first message that differs, when the log level lets us name it. */
  message: string | null;
  detail: string;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function payloadPreview(payload: Uint8Array): string {
  const bytesShown = 16;
  let hex = '';
  for (let i = 0; i < Math.min(payload.length, bytesShown); i++) hex += payload[i]!.toString(16).padStart(2, '0');
  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(payload.subarray(0, 64));
  } catch {
    text = '';
  }
  const printable = text.length > 0 && /^[\x20-\x7e]*$/.test(text) ? ` "${text}${payload.length > 64 ? '…' : ''}"` : '';
  return `${payload.length} bytes ${hex}${payload.length > bytesShown ? '…' : ''}${printable}`;
}

/** Describes one envelope for a person. */
export function describeEnvelope(envelope: EnvelopeRecord, names: Names): string {
  return (
    `topic '${names.topicName(envelope.topic)}' from '${names.actorName(envelope.sender)}' seq ${envelope.seq} ` +
    `priority ${envelope.priority}, payload ${payloadPreview(envelope.payload)}`
  );
}

function envelopesEqual(a: EnvelopeRecord, b: EnvelopeRecord): boolean {
  return (
    a.topic === b.topic &&
    a.sender === b.sender &&
    a.seq === b.seq &&
    a.tick === b.tick &&
    a.priority === b.priority &&
    bytesEqual(a.payload, b.payload)
  );
}

/** The first envelope that differs between two delivered lists, described; null if none. */
export function firstEnvelopeDifference(
  expected: readonly EnvelopeRecord[],
  actual: readonly EnvelopeRecord[],
  names: Names,
): { index: number; text: string; sender: number } | null {
  const count = Math.max(expected.length, actual.length);
  for (let i = 0; i < count; i++) {
    const want = expected[i];
    const got = actual[i];
    if (want !== undefined && got !== undefined && envelopesEqual(want, got)) continue;
    const wantText = want === undefined ? 'nothing' : describeEnvelope(want, names);
    const gotText = got === undefined ? 'nothing' : describeEnvelope(got, names);
    return {
      index: i,
      sender: (want ?? got)!.sender,
      text: `delivered message #${i + 1}: recorded ${wantText}; replayed ${gotText}`,
    };
  }
  return null;
}

/**
 * Compares a recorded tick record with a re-executed one. Returns the first difference,
 * or null when they agree. `names` resolves ids for the report.
 */
export function compareRecords(expected: TickRecord, actual: TickRecord, names: Names): Divergence | null {
  const tick = expected.tick;
  const at = (detail: string, actor: string | null = null, message: string | null = null): Divergence => ({
    tick,
    actor,
    message,
    detail: actor === null ? detail : `actor '${actor}': ${detail}`,
  });
  if (expected.tick !== actual.tick) return at(`record is for tick ${actual.tick}, the log has tick ${expected.tick}`);

  const lifecycleCount = Math.max(expected.lifecycle.length, actual.lifecycle.length);
  for (let i = 0; i < lifecycleCount; i++) {
    const want = expected.lifecycle[i];
    const got = actual.lifecycle[i];
    if (want && got && want.actor === got.actor && want.from === got.from && want.to === got.to && want.detail === got.detail) {
      continue;
    }
    const show = (e: typeof want) => (e === undefined ? 'no event' : `${e.from} → ${e.to}${e.detail ? ` (${e.detail})` : ''}`);
    const actor = names.actorName((want ?? got)!.actor);
    return at(`lifecycle: recorded ${show(want)}; replayed ${show(got)}`, actor);
  }

  // Before the actor digests: an inference answer that differs shows there as the inference
  // actor's sent digest, but here it can be named (model, requester, request).
  const inferenceCount = Math.max(expected.inferences.length, actual.inferences.length);
  for (let i = 0; i < inferenceCount; i++) {
    const want = expected.inferences[i];
    const got = actual.inferences[i];
    if (
      want && got && want.model === got.model && want.requester === got.requester && want.seq === got.seq &&
      want.requestId === got.requestId && want.digest.hi === got.digest.hi && want.digest.lo === got.digest.lo
    ) {
      continue;
    }
    const show = (r: typeof want) =>
      r === undefined
        ? 'no answer'
        : `model '${r.model}' answered request ${r.requestId} (seq ${r.seq}) on ${r.provider}, digest ${digestHex(r.digest.hi, r.digest.lo)}`;
    const requester = names.actorName((want ?? got)!.requester);
    const detail =
      want && got && want.model === got.model && want.requester === got.requester && want.seq === got.seq
        ? `the inference answer differs: recorded ${show(want)}; replayed ${show(got)}. ` +
          'CPU answers are bit-identical for the same model file and session options: check that the model files match the header (sha256) and that onnxruntime-node is the same version'
        : `inference answers differ: recorded ${show(want)}; replayed ${show(got)}`;
    return at(detail, requester);
  }

  const a = expected.actorDigests;
  const b = actual.actorDigests;
  const entries = Math.max(a.length, b.length) / ACTOR_DIGEST_STRIDE;
  for (let e = 0; e < entries; e++) {
    const i = e * ACTOR_DIGEST_STRIDE;
    const same = i + ACTOR_DIGEST_STRIDE <= a.length && i + ACTOR_DIGEST_STRIDE <= b.length && a.subarray(i, i + ACTOR_DIGEST_STRIDE).every((v, k) => v === b[i + k]);
    if (same) continue;
    if (i >= a.length) return at(`ran on replay but not in the recorded run`, names.actorName(b[i]!));
    if (i >= b.length) return at(`ran in the recorded run but not on replay`, names.actorName(a[i]!));
    if (a[i] !== b[i]) {
      return at(`run order differs: recorded '${names.actorName(a[i]!)}' next, replayed '${names.actorName(b[i]!)}'`, names.actorName(a[i]!));
    }
    const actor = names.actorName(a[i]!);
    if (a[i + 1] !== b[i + 1] || a[i + 3] !== b[i + 3] || a[i + 4] !== b[i + 4]) {
      return at(
        `received ${a[i + 1]} messages (digest ${digestHex(a[i + 3]!, a[i + 4]!)}) in the recorded run, ` +
          `${b[i + 1]} (digest ${digestHex(b[i + 3]!, b[i + 4]!)}) on replay`,
        actor,
      );
    }
    return at(
      `sent ${a[i + 2]} messages (digest ${digestHex(a[i + 5]!, a[i + 6]!)}) in the recorded run, ` +
        `${b[i + 2]} (digest ${digestHex(b[i + 5]!, b[i + 6]!)}) on replay`,
      actor,
    );
  }

  if (expected.envelopes !== null && actual.envelopes !== null) {
    const difference = firstEnvelopeDifference(expected.envelopes, actual.envelopes, names);
    if (difference !== null) return at(difference.text, names.actorName(difference.sender), difference.text);
  }
  if (expected.deliveredCount !== actual.deliveredCount || expected.deliveredDigest.hi !== actual.deliveredDigest.hi || expected.deliveredDigest.lo !== actual.deliveredDigest.lo) {
    return at(
      `delivered ${expected.deliveredCount} envelopes (digest ${digestHex(expected.deliveredDigest.hi, expected.deliveredDigest.lo)}) ` +
        `in the recorded run, ${actual.deliveredCount} (digest ${digestHex(actual.deliveredDigest.hi, actual.deliveredDigest.lo)}) on replay`,
    );
  }

  const dropCount = Math.max(expected.drops.length, actual.drops.length);
  for (let i = 0; i < dropCount; i++) {
    const want = expected.drops[i];
    const got = actual.drops[i];
    if (want && got && want.actor === got.actor && want.topic === got.topic && want.sender === got.sender && want.seq === got.seq && want.reason === got.reason) continue;
    const show = (d: typeof want) =>
      d === undefined ? 'no drop' : `'${names.topicName(d.topic)}' #${d.seq} from '${names.actorName(d.sender)}' (${d.reason})`;
    return at(`drops: recorded ${show(want)}; replayed ${show(got)}`, names.actorName((want ?? got)!.actor));
  }

  const injectedCount = Math.max(expected.injected.length, actual.injected.length);
  for (let i = 0; i < injectedCount; i++) {
    const want = expected.injected[i];
    const got = actual.injected[i];
    if (want && got && want.topic === got.topic && want.seq === got.seq && want.priority === got.priority && bytesEqual(want.payload, got.payload)) continue;
    return at(`injected input #${i + 1} differs`);
  }

  const topicCount = Math.max(expected.newTopics.length, actual.newTopics.length);
  for (let i = 0; i < topicCount; i++) {
    const want = expected.newTopics[i];
    const got = actual.newTopics[i];
    if (want && got && want.id === got.id && want.name === got.name) continue;
    return at(`topic table differs: recorded ${want ? `'${want.name}'=#${want.id}` : 'nothing'}, replayed ${got ? `'${got.name}'=#${got.id}` : 'nothing'}`);
  }
  return null;
}
