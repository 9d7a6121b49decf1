import { createHash } from 'node:crypto';
import fc from 'fast-check';
import * as flatbuffers from 'flatbuffers';
import { describe, expect, it } from 'vitest';
import { LogCorruptError, LogFormatError } from '../src/errors.ts';
import { encodeEndInto, frameRecord, logMagicBytes } from '../src/log/format.ts';
import { readLog } from '../src/log/reader.ts';
import { LogWriter, MemorySink } from '../src/log/writer.ts';
import { logContentArb, writeLogBytes, type LogContent } from './arbitraries.ts';

/** Frame boundaries of an intact log, read straight from the length fields (not through the reader). */
function frameBoundaries(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const boundaries = [logMagicBytes];
  let offset = logMagicBytes;
  while (offset < bytes.length) {
    const length = view.getUint32(offset, true);
    offset += 12 + length + ((4 - (length % 4)) % 4);
    boundaries.push(offset);
  }
  expect(offset).toBe(bytes.length);
  return boundaries;
}

/** The hash chain after each record, computed independently of the reader: sha256(chain || body). */
function chainsAfterEachRecord(bytes: Uint8Array, boundaries: number[]): string[] {
  let chain = Buffer.alloc(32);
  const chains = [chain.toString('hex')];
  for (let i = 0; i + 1 < boundaries.length; i++) {
    const start = boundaries[i]!;
    const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(start, true);
    chain = createHash('sha256').update(chain).update(bytes.subarray(start + 12, start + 12 + length)).digest();
    chains.push(chain.toString('hex'));
  }
  return chains;
}

/**
 * Writes the log, but frames its End record by hand with 1-3 extra zero bytes in the body
 * (a FlatBuffer ignores trailing bytes) so that the frame needs pad bytes: the writer's own
 * bodies are always multiples of 4, and the pad rule must be exercised too.
 */
function writeLogWithPaddedEnd(content: LogContent, extraBodyBytes: number): Uint8Array {
  const sink = new MemorySink();
  const writer = new LogWriter(sink);
  writer.writeHeader(content.header);
  for (const tick of content.ticks) writer.appendTick(tick);
  const end = content.end ?? { ticks: content.ticks.length, reason: 'padded' };
  const body = encodeEndInto(new flatbuffers.Builder(64), end, Buffer.from(writer.chainHex, 'hex'));
  const padded = new Uint8Array(body.length + extraBodyBytes);
  padded.set(body);
  const frame = frameRecord(padded);
  const head = sink.bytes();
  const bytes = new Uint8Array(head.length + frame.length);
  bytes.set(head);
  bytes.set(frame, head.length);
  return bytes;
}

/** A log as bytes, sometimes with a padded End frame; and sometimes placed at an odd offset inside a larger buffer. */
const logBytesArb = fc
  .record({ content: logContentArb, extraEndBodyBytes: fc.constantFrom(0, 0, 1, 2, 3), sourceOffset: fc.constantFrom(0, 0, 1, 3, 6) })
  .map(({ content, extraEndBodyBytes, sourceOffset }) => {
    const bytes = extraEndBodyBytes === 0 ? writeLogBytes(content) : writeLogWithPaddedEnd(content, extraEndBodyBytes);
    return { content, bytes, sourceOffset };
  });

/** Copies `bytes` to `offset` inside a fresh, larger buffer (the reader must not assume alignment). */
function placeAt(bytes: Uint8Array, offset: number): Uint8Array {
  const backing = new Uint8Array(bytes.length + offset + 5).fill(0xee);
  backing.set(bytes, offset);
  return backing.subarray(offset, offset + bytes.length);
}

describe('replay log integrity', () => {
  it('the log reader repairs any truncation', () => {
    fc.assert(
      fc.property(logBytesArb, fc.nat(), fc.integer({ min: -13, max: 13 }), fc.boolean(), ({ content, bytes, sourceOffset }, pick, delta, nearBoundary) => {
        const boundaries = frameBoundaries(bytes);
        const chains = chainsAfterEachRecord(bytes, boundaries);
        const headerEnd = boundaries[1]!;
        // Half the cuts land near a frame boundary (where off-by-one bugs live), half anywhere after the header.
        const cut = nearBoundary
          ? Math.min(bytes.length, Math.max(headerEnd, boundaries[pick % boundaries.length]! + delta))
          : headerEnd + (pick % (bytes.length - headerEnd + 1));
        const log = readLog(placeAt(bytes.subarray(0, cut), sourceOffset));

        const wholeRecords = boundaries.filter((boundary) => boundary <= cut).length - 1;
        const lastBoundary = boundaries[wholeRecords]!;
        expect(log.recordOffsets).toEqual(boundaries.slice(0, wholeRecords));
        expect(log.header).toEqual(content.header);
        const wholeTicks = Math.min(wholeRecords - 1, content.ticks.length);
        expect(log.ticks).toEqual(content.ticks.slice(0, wholeTicks));
        expect(log.tickBodies).toHaveLength(wholeTicks);
        expect(log.end === null).toBe(wholeRecords - 1 <= content.ticks.length);
        expect(log.chainHex).toBe(chains[wholeRecords]);
        if (cut === lastBoundary) expect(log.tornTail).toBeNull();
        else expect(log.tornTail).toEqual({ offset: lastBoundary, bytesCut: cut - lastBoundary });
      }),
      { numRuns: 400 },
    );
  });

  it('the log reader detects any single-byte corruption', () => {
    fc.assert(
      fc.property(
        logBytesArb,
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.integer({ min: -14, max: 14 }),
        fc.boolean(),
        ({ bytes, sourceOffset }, pick, mask, delta, nearBoundary) => {
          const boundaries = frameBoundaries(bytes);
          // Half the flips land near frame boundaries: length, check, CRC and pad bytes.
          const position = nearBoundary
            ? Math.min(bytes.length - 1, Math.max(0, boundaries[pick % boundaries.length]! + delta))
            : pick % bytes.length;
          const flipped = bytes.slice();
          flipped[position] = flipped[position]! ^ mask;
          let thrown: unknown = null;
          try {
            readLog(placeAt(flipped, sourceOffset));
          } catch (error) {
            thrown = error;
          }
          if (position < logMagicBytes) {
            expect(thrown).toBeInstanceOf(LogFormatError);
            expect(String(thrown)).toMatch(/not a lockstep log/);
          } else {
            // Reported at the frame holding the changed byte: never skipped, never blamed on a neighbour.
            const frameStart = boundaries.filter((boundary) => boundary <= position).pop()!;
            expect(thrown).toBeInstanceOf(LogCorruptError);
            expect((thrown as LogCorruptError).offset).toBe(frameStart);
          }
        },
      ),
      { numRuns: 600 },
    );
  });
});
