/**
 * Fast, deterministic 64-bit digests for the hot path, kept as two 32-bit lanes so that no
 * BigInt is ever created per message. These digests detect divergence on replay; integrity
 * of the log itself is guarded by CRC32 and a SHA-256 chain, not by these.
 *
 * Lane mixing is murmur3's fmix32 over FNV-style accumulation: cheap, order-sensitive and
 * well spread. The two lanes start from different offsets so a collision needs both to collide.
 */

const fnvPrime = 0x01000193;
const laneHiOffset = 0x811c9dc5;
const laneLoOffset = 0x6a09e667; // a second, unrelated start (first word of SHA-256's IV)

export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Envelope hashes, written into `out[0]` (hi) and `out[1]` (lo). */
export function hashEnvelope(
  topic: number,
  sender: number,
  seq: number,
  priority: number,
  payload: Uint8Array,
  out: Uint32Array,
): void {
  hashEnvelopeRange(topic, sender, seq, priority, payload, 0, payload.length, out);
}

/**
 * `hashEnvelope` of the payload `bytes[start, start + length)`, without a view of it: the
 * agent host hashes a payload where it lies in the agent's memory. Same digest.
 */
export function hashEnvelopeRange(
  topic: number,
  sender: number,
  seq: number,
  priority: number,
  bytes: Uint8Array,
  start: number,
  length: number,
  out: Uint32Array,
): void {
  let hi = laneHiOffset ^ topic;
  let lo = laneLoOffset ^ sender;
  hi = Math.imul(hi ^ sender, fnvPrime);
  lo = Math.imul(lo ^ topic, fnvPrime);
  // seq may exceed 2^32: fold both halves in.
  const seqHigh = Math.floor(seq / 0x1_0000_0000);
  hi = Math.imul(hi ^ (seq >>> 0), fnvPrime);
  lo = Math.imul(lo ^ seqHigh ^ (priority << 24), fnvPrime);
  hi = Math.imul(hi ^ priority ^ (length << 8), fnvPrime);
  lo = Math.imul(lo ^ length, fnvPrime);
  for (let i = 0; i < length; i++) {
    const b = bytes[start + i]!;
    hi = Math.imul(hi ^ b, fnvPrime);
    lo = Math.imul(lo ^ (b + i), 0x9e3779b1);
  }
  out[0] = fmix32(hi);
  out[1] = fmix32(lo ^ hi);
}

/** Folds one 32-bit value into a running lane; order-sensitive. */
export function foldLane(lane: number, value: number): number {
  return fmix32(Math.imul(lane ^ value, fnvPrime) + 0x9e3779b9);
}

/**
 * Folds an envelope's `kind` and `correlation` into its hash `out` (hi, lo), for every kind
 * but a plain message: a plain message hashes as it did before asks and timers existed, so
 * older logs keep their digests.
 */
export function foldMessageKind(kind: number, correlation: number, out: Uint32Array): void {
  out[0] = foldLane(foldLane(out[0]!, kind), Math.floor(correlation / 0x1_0000_0000));
  out[1] = foldLane(foldLane(out[1]!, kind), correlation >>> 0);
}

export const digestSeedHi = laneHiOffset;
export const digestSeedLo = laneLoOffset;

/** Formats a 64-bit two-lane digest as 16 hex digits. */
export function digestHex(hi: number, lo: number): string {
  return (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

/** A 64-bit digest of bytes alone (an inference answer), into `out[0]` (hi) and `out[1]` (lo). */
export function hashBytes(bytes: Uint8Array, out: Uint32Array): void {
  hashEnvelope(0, 0, 0, 0, bytes, out);
}
