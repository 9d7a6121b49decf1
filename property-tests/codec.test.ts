import fc from 'fast-check';
import * as flatbuffers from 'flatbuffers';
import { describe, expect, it } from 'vitest';
import { Envelope as EnvelopeTable } from '../schemas/generated/lockstep/envelope.ts';
import { LogRecord as LogRecordTable } from '../schemas/generated/lockstep/log/log-record.ts';
import { TickRecord as TickRecordTable } from '../schemas/generated/lockstep/log/tick-record.ts';
import { decodeEnvelope, encodeEnvelope, jsonDecode, jsonEncode, utf8Decode, utf8Encode } from '../src/codec.ts';
import { PayloadEncodingError } from '../src/errors.ts';
import {
  chainZero,
  decodeRecordBody,
  encodeEndInto,
  encodeHeaderInto,
  encodeTickBody,
  lengthCheckOf,
  writeUint32Vector,
} from '../src/log/format.ts';
import { crc32 } from 'node:zlib';
import type { TickRecord } from '../src/log/types.ts';
import { envelopeRecordArb, logHeaderArb, logLevelArb, tickRecordArb, uint53Arb, logStringArb } from './arbitraries.ts';

const chainArb = fc.uint8Array({ minLength: 32, maxLength: 32 });

/** -0 and 0 are the same JSON number: compare JSON values with -0 folded to 0. */
function withoutNegativeZero(value: unknown): unknown {
  if (Object.is(value, -0)) return 0;
  if (Array.isArray(value)) return value.map(withoutNegativeZero);
  if (value !== null && typeof value === 'object') {
    const copy: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      Object.defineProperty(copy, key, { value: withoutNegativeZero((value as Record<string, unknown>)[key]), enumerable: true, writable: true, configurable: true });
    }
    return copy;
  }
  return value;
}

describe('codec', () => {
  it('envelope and log records round-trip through the codec', () => {
    fc.assert(
      fc.property(envelopeRecordArb, (envelope) => {
        expect(decodeEnvelope(encodeEnvelope(envelope))).toEqual(envelope);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(logLevelArb.chain((level) => fc.tuple(tickRecordArb(level), logHeaderArb(level))), chainArb, ([tick, header], chain) => {
        const body = encodeTickBody(tick, chain);
        const decoded = decodeRecordBody(body);
        expect(decoded.record).toEqual({ kind: 'tick', tick });
        expect([...decoded.prevChain]).toEqual([...chain]);

        const builder = new flatbuffers.Builder(16);
        const headerDecoded = decodeRecordBody(encodeHeaderInto(builder, header).slice());
        expect(headerDecoded.record).toEqual({ kind: 'header', header });
        expect([...headerDecoded.prevChain]).toEqual([...chainZero]);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.record({ ticks: uint53Arb, reason: logStringArb }), chainArb, (end, chain) => {
        const decoded = decodeRecordBody(encodeEndInto(new flatbuffers.Builder(16), end, chain).slice());
        expect(decoded.record).toEqual({ kind: 'end', end });
      }),
    );
  });

  it('encoding is deterministic whatever the builder held before', () => {
    const dirty = new flatbuffers.Builder(64);
    fc.assert(
      fc.property(logLevelArb.chain((level) => fc.array(tickRecordArb(level), { minLength: 2, maxLength: 4 })), chainArb, (ticks, chain) => {
        for (const tick of ticks) encodeTickBody(tick, chain, dirty);
        const last = ticks[ticks.length - 1]!;
        expect(encodeTickBody(last, chain, dirty)).toEqual(encodeTickBody(last, chain));
      }),
    );
    fc.assert(
      fc.property(fc.array(envelopeRecordArb, { minLength: 2, maxLength: 4 }), (envelopes) => {
        for (const envelope of envelopes) encodeEnvelope(envelope, dirty);
        expect(encodeEnvelope(envelopes[0]!, dirty)).toEqual(encodeEnvelope(envelopes[0]!, new flatbuffers.Builder(8)));
      }),
    );
  });

  it("the BigInt-free uint64 and bulk vector paths write exactly what flatc's generated code writes", () => {
    fc.assert(
      fc.property(envelopeRecordArb, (envelope) => {
        // Reference: flatc's generated adders (BigInt for uint64), in the same order as writeEnvelope.
        const builder = new flatbuffers.Builder(16);
        const payload = envelope.payload.length === 0 ? 0 : builder.createByteVector(envelope.payload);
        EnvelopeTable.startEnvelope(builder);
        EnvelopeTable.addSeq(builder, BigInt(envelope.seq));
        EnvelopeTable.addTick(builder, BigInt(envelope.tick));
        if (payload !== 0) EnvelopeTable.addPayload(builder, payload);
        EnvelopeTable.addTopic(builder, envelope.topic);
        EnvelopeTable.addSender(builder, envelope.sender);
        EnvelopeTable.addPriority(builder, envelope.priority);
        builder.finish(EnvelopeTable.endEnvelope(builder));
        const ours = encodeEnvelope(envelope);
        expect(ours).toEqual(builder.asUint8Array());
        // And the generated getters read back what we wrote.
        const table = EnvelopeTable.getRootAsEnvelope(new flatbuffers.ByteBuffer(ours));
        expect(table.seq()).toBe(BigInt(envelope.seq));
        expect(table.tick()).toBe(BigInt(envelope.tick));
      }),
    );
    fc.assert(
      fc.property(tickRecordArb('digest'), chainArb, (tick, chain) => {
        const body = encodeTickBody(tick, chain);
        const root = LogRecordTable.getRootAsLogRecord(new flatbuffers.ByteBuffer(body));
        const table = root.tick(new TickRecordTable())!;
        expect(table.tick()).toBe(BigInt(tick.tick));
        expect(table.actorDigestsLength()).toBe(tick.actorDigests.length);
        for (let i = 0; i < tick.actorDigests.length; i++) expect(table.actorDigests(i)).toBe(tick.actorDigests[i]);
        expect(table.envelopesLength()).toBe(0);
        expect(table.injectedLength()).toBe(tick.injected.length);
        for (let i = 0; i < tick.injected.length; i++) expect(table.injected(i)!.seq()).toBe(BigInt(tick.injected[i]!.seq));
        for (let i = 0; i < tick.drops.length; i++) expect(table.drops(i)!.seq()).toBe(BigInt(tick.drops[i]!.seq));
      }),
    );
    fc.assert(
      fc.property(fc.uint32Array({ maxLength: 40 }), fc.nat({ max: 3 }), (values, offsetWords) => {
        // A view at an offset into a larger buffer, as the kernel may hand over.
        const backing = new Uint32Array(values.length + offsetWords);
        backing.set(values, offsetWords);
        const view = backing.subarray(offsetWords);
        const bulk = new flatbuffers.Builder(8);
        bulk.finish(writeUint32Vector(bulk, view, true));
        const loop = new flatbuffers.Builder(8);
        loop.finish(writeUint32Vector(loop, view, false));
        expect(bulk.asUint8Array()).toEqual(loop.asUint8Array());
      }),
    );
  });

  it('the length check is crc32 of the four length bytes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), (length) => {
        const bytes = new Uint8Array(4);
        new DataView(bytes.buffer).setUint32(0, length, true);
        expect(lengthCheckOf(length)).toBe(crc32(bytes) >>> 0);
      }),
    );
  });

  it('refuses out-of-range fields with a clear error', () => {
    const envelope = { topic: 1, sender: 2, seq: 3, tick: 4, priority: 5, payload: new Uint8Array(0) };
    expect(() => encodeEnvelope({ ...envelope, seq: 2 ** 53 })).toThrow(/envelope seq must be an integer in \[0, 2\^53-1\]/);
    expect(() => encodeEnvelope({ ...envelope, tick: -1 })).toThrow(/envelope tick/);
    expect(() => encodeEnvelope({ ...envelope, seq: 1.5 })).toThrow(RangeError);
    expect(() => encodeEnvelope({ ...envelope, priority: 256 })).toThrow(/priority must be an integer in \[0, 255\]/);
    expect(() => encodeEnvelope({ ...envelope, topic: 2 ** 32 })).toThrow(/topic must be an integer in \[0, 2\^32-1\]/);
    expect(() => encodeEnvelope({ ...envelope, sender: -1 })).toThrow(/sender/);
    const tick: TickRecord = {
      tick: 1, newTopics: [], injected: [], lifecycle: [], drops: [], deliveredCount: 0,
      deliveredDigest: { hi: 0, lo: 0 }, actorDigests: new Uint32Array(0), envelopes: null, inferences: [],
    };
    expect(() => encodeTickBody({ ...tick, tick: 2 ** 60 }, chainZero)).toThrow(/tick must be an integer/);
    expect(() => encodeTickBody(tick, new Uint8Array(31))).toThrow(/32 bytes/);
    expect(() => decodeEnvelope(new Uint8Array(3))).toThrow(RangeError);
  });

  it('decoded payloads never alias the source bytes, even a Buffer', () => {
    const envelope = { topic: 1, sender: 2, seq: 3, tick: 4, priority: 5, payload: new Uint8Array([1, 2, 3]) };
    const source = Buffer.from(encodeEnvelope(envelope));
    const decoded = decodeEnvelope(source);
    source.fill(0);
    expect(decoded).toEqual(envelope);
  });
});

describe('JSON and UTF-8 payloads', () => {
  it('jsonDecode(jsonEncode(v)) gives back any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(jsonDecode(jsonEncode(value))).toEqual(withoutNegativeZero(value));
      }),
      { numRuns: 300 },
    );
  });

  it('jsonEncode refuses what JSON would silently mangle, naming the path', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    class Point {
      x = 1;
    }
    const cases: Array<[unknown, RegExp]> = [
      [Number.NaN, /^payload\.items\[3\]\.at: NaN is not JSON; send a finite number or null$/],
      [Number.POSITIVE_INFINITY, /Infinity is not JSON/],
      [undefined, /undefined is not JSON/],
      [10n, /BigInt is not JSON/],
      [() => 1, /function is not JSON/],
      [Symbol('s'), /symbol is not JSON/],
      [new Map(), /Map is not JSON.*Object\.fromEntries/],
      [new Set([1]), /Set is not JSON/],
      [new Date(0), /Date is not JSON/],
      [new Point(), /instance of class Point is not JSON/],
      [new Uint8Array(2), /Uint8Array is not JSON/],
      [cyclic, /^payload\.items\[3\]\.at\.self: the value contains itself \(a cycle\)/],
      // eslint-disable-next-line no-sparse-arrays
      [[1, , 3], /^payload\.items\[3\]\.at\[1\]: a hole in a sparse array/],
      [{ [Symbol('k')]: 1 }, /symbol keys/],
    ];
    for (const [bad, message] of cases) {
      const value = { items: [0, 1, 2, { at: bad }] };
      expect(() => jsonEncode(value)).toThrow(PayloadEncodingError);
      expect(() => jsonEncode(value)).toThrow(message);
    }
    expect(() => jsonEncode({ 'odd key': NaN })).toThrow(/^payload\["odd key"\]: NaN/);
    expect(() => jsonEncode(NaN, 'input')).toThrow(/^input: NaN/);
    // A shared sub-object is a DAG, not a cycle: JSON copies it.
    const shared = { n: 1 };
    expect(jsonDecode(jsonEncode({ a: shared, b: shared }))).toEqual({ a: { n: 1 }, b: { n: 1 } });
    expect(jsonDecode(jsonEncode(Object.assign(Object.create(null) as object, { k: 1 })))).toEqual({ k: 1 });
  });

  it('jsonEncode refuses a bad value wherever it sits in any JSON value', () => {
    const badArb = fc.constantFrom<unknown>(Number.NaN, Number.NEGATIVE_INFINITY, undefined, 7n, new Map());
    fc.assert(
      fc.property(fc.array(fc.jsonValue(), { maxLength: 5 }), fc.nat(), badArb, (items, at, bad) => {
        const index = items.length === 0 ? 0 : at % (items.length + 1);
        const withBad = [...items.slice(0, index), { deep: [bad] }, ...items.slice(index)];
        expect(() => jsonEncode(withBad)).toThrow(new RegExp(`^payload\\[${index}\\]\\.deep\\[0\\]: `));
      }),
    );
    const cycleArb = fc.jsonValue().map((value) => {
      const holder: Record<string, unknown> = { value };
      holder.loop = [holder];
      return holder;
    });
    fc.assert(
      fc.property(cycleArb, (value) => {
        expect(() => jsonEncode(value)).toThrow(/^payload\.loop\[0\]: the value contains itself/);
      }),
    );
  });

  it('jsonDecode and utf8Decode say clearly what is wrong', () => {
    expect(() => jsonDecode(utf8Encode('{"a": 1'))).toThrow(PayloadEncodingError);
    expect(() => jsonDecode(utf8Encode('{"a": 1'))).toThrow(/payload is not valid JSON .*it starts "\{\\"a\\": 1"/);
    expect(() => jsonDecode(new Uint8Array([0xff, 0xfe]))).toThrow(/not valid UTF-8/);
    expect(() => utf8Decode(new Uint8Array([0xc3]))).toThrow(PayloadEncodingError);
    expect(() => utf8Encode('ab\ud800c')).toThrow(/lone UTF-16 surrogate at index 2/);
  });

  it('utf8Decode(utf8Encode(s)) gives back any well-formed string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (text) => {
        expect(utf8Decode(utf8Encode(text))).toBe(text);
      }),
    );
  });
});
