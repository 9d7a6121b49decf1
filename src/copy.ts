/**
 * Byte copies on the message path, a word at a time where both ends are 4-aligned. A
 * message is small (a 60-byte header and a few dozen bytes of payload): a subarray and
 * `set` cost more than the copy itself, and a byte loop makes four times the accesses of
 * a word loop.
 */

/**
 * Copies `length` bytes from `source` (with `sourceWords`, an Int32Array over the same
 * buffer from offset 0 of `source`) at `from` to `target` (with `targetWords`) at `to`.
 * The word views may be null when a buffer's size is not a multiple of 4; then, or when
 * either end is not 4-aligned, it copies byte by byte. Regions must not overlap.
 */
export function copyBytes(
  target: Uint8Array,
  targetWords: Int32Array | null,
  to: number,
  source: Uint8Array,
  sourceWords: Int32Array | null,
  from: number,
  length: number,
): void {
  let i = 0;
  if (targetWords !== null && sourceWords !== null && ((to | from) & 3) === 0) {
    const words = length >>> 2;
    const toWord = to >>> 2;
    const fromWord = from >>> 2;
    for (let w = 0; w < words; w++) targetWords[toWord + w] = sourceWords[fromWord + w]!;
    i = words << 2;
  }
  for (; i < length; i++) target[to + i] = source[from + i]!;
}

/** An Int32Array over all of `bytes`' buffer from `bytes`' start, or null when it cannot be (unaligned offset or size). */
export function wordsOf(bytes: Uint8Array): Int32Array | null {
  if ((bytes.byteOffset & 3) !== 0 || (bytes.byteLength & 3) !== 0) return null;
  return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
}
