// The hand-written ABI v2 message layout is a valid schemas/envelope.fbs Envelope: the
// flatc-generated reader reads every field of what writeEnvelopeHeader writes.
import fc from 'fast-check';
import * as flatbuffers from 'flatbuffers';
import { describe, expect, it } from 'vitest';
import { Envelope } from '../schemas/generated/lockstep/envelope.ts';
import { EnvelopeAt, envelopeBytes, envelopeSlotBytes, readEnvelopeHeader, writeEnvelopeFields, writeEnvelopeHeader, writeEnvelopeSeq } from '../src/envelope-layout.ts';

function write(fields: { topic: number; sender: number; seq: number; tick: number; priority: number; payload: Uint8Array }, at = 0): Uint8Array {
  const bytes = new Uint8Array(at + envelopeBytes(fields.payload.length)).fill(0xee);
  writeEnvelopeHeader(new DataView(bytes.buffer), at, fields.topic, fields.sender, fields.seq, fields.tick, fields.priority, fields.payload.length);
  bytes.set(fields.payload, at + EnvelopeAt.payload);
  return bytes.subarray(at);
}

const fieldsArbitrary = fc.record({
  topic: fc.integer({ min: 0, max: 0xffff_ffff }),
  sender: fc.integer({ min: 0, max: 0xffff_ffff }),
  seq: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  tick: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  priority: fc.integer({ min: 0, max: 255 }),
  payload: fc.uint8Array({ maxLength: 300 }),
});

describe('the ABI v2 message layout', () => {
  it('is an Envelope the flatc-generated reader reads field for field, at any 8-aligned offset', () => {
    fc.assert(
      fc.property(fieldsArbitrary, fc.integer({ min: 0, max: 8 }), (fields, slot) => {
        const bytes = write(fields, slot * 8);
        const envelope = Envelope.getRootAsEnvelope(new flatbuffers.ByteBuffer(new Uint8Array(bytes)));
        expect(envelope.topic()).toBe(fields.topic);
        expect(envelope.sender()).toBe(fields.sender);
        expect(envelope.seq()).toBe(BigInt(fields.seq));
        expect(envelope.tick()).toBe(BigInt(fields.tick));
        expect(envelope.priority()).toBe(fields.priority);
        expect(Array.from(envelope.payloadArray() ?? [])).toEqual(Array.from(fields.payload));
        expect(readEnvelopeHeader(new DataView(bytes.buffer, bytes.byteOffset), 0)).toEqual({ ...fields, payload: undefined, payloadBytes: fields.payload.length } as never);
      }),
      { numRuns: 300 },
    );
  });

  it('has its fields where docs/abi.md says, 8-aligned u64s, zeroed padding', () => {
    const bytes = write({ topic: 7, sender: 3, seq: 2 ** 40 + 5, tick: 9, priority: 200, payload: Uint8Array.of(1, 2, 3) });
    const view = new DataView(bytes.buffer);
    expect(bytes.length).toBe(63);
    expect(view.getUint32(0, true)).toBe(20);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((i) => view.getUint16(4 + 2 * i, true))).toEqual([16, 36, 4, 8, 12, 20, 32, 28]);
    expect(view.getInt32(20, true)).toBe(16);
    expect([view.getUint32(24, true), view.getUint32(28, true)]).toEqual([7, 3]);
    expect(view.getBigUint64(32, true)).toBe(2n ** 40n + 5n);
    expect(view.getBigUint64(40, true)).toBe(9n);
    expect(view.getUint32(48, true)).toBe(8);
    expect([bytes[52], bytes[53], bytes[54], bytes[55]]).toEqual([200, 0, 0, 0]);
    expect(view.getUint32(56, true)).toBe(3);
    expect(Array.from(bytes.subarray(60))).toEqual([1, 2, 3]);
    writeEnvelopeSeq(view, 0, 42);
    expect(Envelope.getRootAsEnvelope(new flatbuffers.ByteBuffer(new Uint8Array(bytes))).seq()).toBe(42n);
    expect([envelopeSlotBytes(0), envelopeSlotBytes(3), envelopeSlotBytes(4), envelopeSlotBytes(5)]).toEqual([64, 64, 64, 72]);
  });

  it('rewrites only the fields of a reused header: the bytes equal a header written afresh', () => {
    fc.assert(
      fc.property(fieldsArbitrary, fieldsArbitrary, (first, second) => {
        const reused = new Uint8Array(envelopeBytes(0));
        const view = new DataView(reused.buffer);
        writeEnvelopeHeader(view, 0, first.topic, first.sender, first.seq, first.tick, first.priority, first.payload.length);
        writeEnvelopeFields(view, 0, second.topic, second.sender, second.seq, second.tick, second.priority, second.payload.length);
        const fresh = new Uint8Array(envelopeBytes(0));
        writeEnvelopeHeader(new DataView(fresh.buffer), 0, second.topic, second.sender, second.seq, second.tick, second.priority, second.payload.length);
        expect(Array.from(reused)).toEqual(Array.from(fresh));
      }),
      { numRuns: 200 },
    );
  });
});
