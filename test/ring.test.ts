import { describe, expect, it } from 'vitest';
import { ConfigError, RecordTooLargeError } from '../src/errors.ts';
import { SabRing } from '../src/ring.ts';

/** A body whose bytes say which record and which offset they are, so a mix-up shows. */
function body(len: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(len);
  for (let i = 0; i < len; i++) bytes[i] = (seed * 31 + i * 7 + 1) & 0xff;
  return bytes;
}

/** Bounds waits that should end at once, so a lost wake-up fails the test instead of hanging it. */
const waitBoundMs = 5_000;

function drainAll(ring: SabRing, maxRecords?: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  ring.drain((view) => out.push(view.slice()), maxRecords);
  return out;
}

describe('SabRing configuration', () => {
  it.each([0, 32, 100, 65_535, 2 ** 31, 1.5, Number.NaN])('rejects capacity %s with a ConfigError saying what to pass', (capacity) => {
    expect(() => SabRing.create(capacity)).toThrow(ConfigError);
    expect(() => SabRing.create(capacity)).toThrow(/power of two between 64 and 1073741824 bytes.*pass e\.g\./);
  });

  it('suggests the next power of two for a capacity in range', () => {
    expect(() => SabRing.create(100)).toThrow(/got 100; pass e\.g\. 128/);
  });

  it('accepts the extremes of the range and reports sizes', () => {
    const ring = SabRing.create(64);
    expect(ring.capacityBytes).toBe(64);
    expect(ring.recordBytesMax).toBe(60);
    expect(ring.footprintOf(0)).toBe(4);
    expect(ring.footprintOf(1)).toBe(8);
    expect(ring.footprintOf(4)).toBe(8);
    expect(ring.footprintOf(5)).toBe(12);
    expect(SabRing.create().capacityBytes).toBe(64 * 1024);
  });

  it('rejects an index start that is not a 4-aligned uint32', () => {
    expect(() => SabRing.create(64, { indexStart: 2 })).toThrow(/indexStart must be a multiple of 4/);
    expect(() => SabRing.create(64, { indexStart: 2 ** 32 })).toThrow(ConfigError);
  });

  it('refuses to attach a buffer that is not a ring', () => {
    expect(() => SabRing.attach(new SharedArrayBuffer(1024))).toThrow(/does not start with a ring header/);
    expect(() => SabRing.attach(new SharedArrayBuffer(8))).toThrow(/too small to be a ring/);
    expect(() => SabRing.attach(new ArrayBuffer(1024) as unknown as SharedArrayBuffer)).toThrow(/expected a SharedArrayBuffer/);
  });
});

describe('SabRing records', () => {
  it('returns records that straddle the wrap boundary intact, via tryRead and via drain', () => {
    const ring = SabRing.create(64);
    // Move the indices to 44 so the next record's header sits at 44..48 and its body
    // (30 bytes) runs 48..64 then 0..14.
    expect(ring.write(body(40, 1))).toBe(true);
    expect(ring.tryRead()).toEqual(body(40, 1));
    expect(ring.write(body(30, 2))).toBe(true);
    expect(ring.tryRead()).toEqual(body(30, 2));

    // Same shape again, read through drain's scratch path this time.
    expect(ring.write(body(20, 3))).toBe(true); // tail 80 -> position 16
    expect(drainAll(ring)).toEqual([body(20, 3)]);
    expect(ring.write(body(34, 4))).toBe(true); // header at 40, body 44..64 then 0..14
    const views: Uint8Array[] = [];
    expect(ring.drain((view) => views.push(view))).toBe(1);
    // A wrapped record comes from the scratch buffer, not from the shared memory.
    expect(views[0]!.buffer).not.toBe(ring.buffer);
    expect(views[0]).toEqual(body(34, 4));
  });

  it('hands drain a view into the shared memory when the record is contiguous', () => {
    const ring = SabRing.create(64);
    ring.write(body(10, 5));
    let seen: Uint8Array | undefined;
    ring.drain((view) => {
      seen = view;
    });
    expect(seen!.buffer).toBe(ring.buffer);
    expect(seen!.byteLength).toBe(10);
  });

  it('wraps the header at exactly the end of the data area (body starts at 0)', () => {
    const ring = SabRing.create(64);
    ring.write(body(56, 6)); // footprint 60
    expect(ring.tryRead()).toEqual(body(56, 6));
    ring.write(body(12, 7)); // header 60..64, body 0..12
    expect(ring.tryRead()).toEqual(body(12, 7));
  });

  it('stays correct when the free-running counters cross 2^32', () => {
    const ring = SabRing.create(64, { indexStart: 2 ** 32 - 64 });
    for (let i = 0; i < 40; i++) {
      expect(ring.write(body(i % 25, i))).toBe(true);
      expect(ring.write(body((i * 3) % 17, i + 100))).toBe(true);
      expect(drainAll(ring)).toEqual([body(i % 25, i), body((i * 3) % 17, i + 100)]);
      expect(ring.usedBytes()).toBe(0);
    }
  });

  it('accepts a record that exactly fits and refuses one byte more, without overwriting', () => {
    const ring = SabRing.create(64);
    expect(ring.tryWrite(body(20, 1))).toBe(true); // footprint 24, 40 bytes left
    expect(ring.tryWrite(body(37, 2))).toBe(false); // footprint 44 > 40
    expect(ring.usedBytes()).toBe(24);
    expect(ring.tryWrite(body(36, 3))).toBe(true); // footprint 40: exactly full
    expect(ring.usedBytes()).toBe(64);
    expect(ring.tryWrite(new Uint8Array(0))).toBe(false); // even an empty record needs 4
    ring.flush();
    expect(drainAll(ring)).toEqual([body(20, 1), body(36, 3)]);
  });

  it('takes the largest record only into an empty ring', () => {
    const ring = SabRing.create(64);
    expect(ring.write(body(60, 1))).toBe(true);
    expect(ring.usedBytes()).toBe(64);
    expect(ring.write(new Uint8Array(0))).toBe(false);
    expect(ring.tryRead()).toEqual(body(60, 1));
    expect(ring.usedBytes()).toBe(0);
  });

  it('frees space when the consumer drains, and only then', () => {
    const ring = SabRing.create(64);
    let written = 0;
    while (ring.tryWrite(body(12, written))) written++;
    expect(written).toBe(4); // 4 * 16 = 64
    ring.flush();
    expect(ring.write(body(12, 99))).toBe(false);
    expect(drainAll(ring, 1)).toEqual([body(12, 0)]);
    expect(ring.write(body(12, 99))).toBe(true);
    expect(ring.write(body(12, 100))).toBe(false);
  });

  it('returns null and drains nothing from an empty ring', () => {
    const ring = SabRing.create(64);
    expect(ring.tryRead()).toBeNull();
    expect(ring.drain(() => expect.unreachable())).toBe(0);
    ring.write(body(3, 1));
    expect(ring.tryRead()).toEqual(body(3, 1));
    expect(ring.tryRead()).toBeNull();
  });

  it('throws RecordTooLargeError for a record that cannot fit even when empty', () => {
    const ring = SabRing.create(64);
    expect(() => ring.tryWrite(new Uint8Array(61))).toThrow(RecordTooLargeError);
    expect(() => ring.tryWrite(new Uint8Array(61))).toThrow(
      'record of 61 bytes can never fit this ring (largest record: 60 bytes); ' +
        'create the ring with a larger capacity or split the record',
    );
    expect(() => ring.waitWritableSync(61, 0)).toThrow(RecordTooLargeError);
    expect(ring.usedBytes()).toBe(0);
  });

  it('carries zero-length records, each costing a 4-byte header', () => {
    const ring = SabRing.create(64);
    for (let i = 0; i < 16; i++) expect(ring.tryWrite(new Uint8Array(0))).toBe(true);
    expect(ring.tryWrite(new Uint8Array(0))).toBe(false);
    expect(ring.usedBytes()).toBe(64);
    ring.flush();
    expect(ring.tryRead()).toEqual(new Uint8Array(0));
    const lengths: number[] = [];
    expect(ring.drain((view) => lengths.push(view.length))).toBe(15);
    expect(lengths).toEqual(new Array(15).fill(0));
    expect(ring.usedBytes()).toBe(0);
  });

  it('honours maxRecords', () => {
    const ring = SabRing.create(256);
    for (let i = 0; i < 5; i++) ring.tryWrite(body(i, i));
    ring.flush();
    expect(drainAll(ring, 2)).toEqual([body(0, 0), body(1, 1)]);
    expect(drainAll(ring, 0)).toEqual([]);
    expect(drainAll(ring)).toEqual([body(2, 2), body(3, 3), body(4, 4)]);
  });

  it('releases the records handed out before and including one whose callback throws', () => {
    const ring = SabRing.create(256);
    for (let i = 0; i < 4; i++) ring.tryWrite(body(8, i));
    ring.flush();
    let calls = 0;
    expect(() =>
      ring.drain(() => {
        calls++;
        if (calls === 2) throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(drainAll(ring)).toEqual([body(8, 2), body(8, 3)]);
  });

  it('refuses reads of the same ring from inside a drain callback', () => {
    const ring = SabRing.create(256);
    ring.write(body(8, 1));
    ring.write(body(8, 2));
    expect(() => ring.drain(() => ring.tryRead())).toThrow(/inside a drain callback/);
    expect(drainAll(ring)).toEqual([body(8, 2)]);
  });
});

describe('SabRing visibility and sharing', () => {
  it('keeps staged writes invisible to the consumer until flush', () => {
    const producer = SabRing.create(128);
    const consumer = SabRing.attach(producer.buffer);
    expect(producer.tryWrite(body(10, 1))).toBe(true);
    expect(producer.tryWrite(body(0, 2))).toBe(true);
    expect(consumer.tryRead()).toBeNull();
    expect(consumer.drain(() => expect.unreachable())).toBe(0);
    expect(consumer.waitReadableSync(0)).toBe(false);
    expect(consumer.usedBytes()).toBe(0);
    expect(producer.usedBytes()).toBe(16 + 4);
    producer.flush();
    expect(consumer.usedBytes()).toBe(20);
    expect(consumer.waitReadableSync(0)).toBe(true);
    expect(drainAll(consumer)).toEqual([body(10, 1), body(0, 2)]);
    expect(producer.usedBytes()).toBe(0);
  });

  it('lets a second instance attached to the same buffer read, and later take over writing', () => {
    const first = SabRing.create(64);
    // Attached before anything is written, so its idea of head is stale by the time it writes.
    const second = SabRing.attach(first.buffer);
    first.write(body(25, 1));
    first.write(body(9, 2)); // 32 + 16 = 48 used
    expect(second.capacityBytes).toBe(64);
    expect(second.recordBytesMax).toBe(60);
    expect(second.usedBytes()).toBe(48);
    expect(second.tryRead()).toEqual(body(25, 1));
    // Producer role handed over: the second handle writes after the first went quiet.
    expect(second.write(body(30, 3))).toBe(true); // wraps
    expect(first.tryRead()).toEqual(body(9, 2));
    expect(first.tryRead()).toEqual(body(30, 3));
    expect(first.tryRead()).toBeNull();
  });

  it('sees space the consumer freed in the middle of a producer batch, to the exact byte', () => {
    const producer = SabRing.create(64);
    const consumer = SabRing.attach(producer.buffer);
    producer.write(body(20, 1)); // 24, published
    expect(producer.tryWrite(body(16, 2))).toBe(true); // 20 staged: 44 used
    expect(producer.tryWrite(body(17, 3))).toBe(false); // 24 > 20 free
    expect(consumer.tryRead()).toEqual(body(20, 1)); // 44 free now, producer's cached tail is stale
    expect(producer.tryWrite(body(41, 4))).toBe(false); // 48 > 44
    expect(producer.tryWrite(body(40, 5))).toBe(true); // 44: exactly full
    producer.flush();
    expect(drainAll(consumer)).toEqual([body(16, 2), body(40, 5)]);
  });

  it('makes waitWritableSync publish staged records so the consumer can free space', () => {
    const producer = SabRing.create(64);
    const consumer = SabRing.attach(producer.buffer);
    expect(producer.tryWrite(body(60, 1))).toBe(true);
    expect(producer.waitWritableSync(0, 0)).toBe(false); // full, but now published
    expect(consumer.tryRead()).toEqual(body(60, 1));
    expect(producer.waitWritableSync(60, 0)).toBe(true);
  });

  it('resolves waitReadable at once when data is there, on flush when it is not, false on timeout', async () => {
    const producer = SabRing.create(64);
    const consumer = SabRing.attach(producer.buffer);
    expect(await consumer.waitReadable(10)).toBe(false);
    const pending = consumer.waitReadable(waitBoundMs);
    producer.tryWrite(body(4, 1));
    producer.flush();
    expect(await pending).toBe(true);
    expect(await consumer.waitReadable(waitBoundMs)).toBe(true);
    expect(consumer.tryRead()).toEqual(body(4, 1));
  });

  it('keeps waiting through a wake-up that brings no data (a stale notify)', async () => {
    const producer = SabRing.create(64);
    const consumer = SabRing.attach(producer.buffer);
    let settled: boolean | undefined;
    const pending = consumer.waitReadable(waitBoundMs).then((readable) => (settled = readable));
    // A flush that saw the consumer waiting can deliver its notify after the consumer
    // already drained its records; here every word of the buffer gets such a notify.
    const words = new Int32Array(producer.buffer);
    for (let word = 0; word < words.length; word++) Atomics.notify(words, word);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(settled).toBeUndefined();
    producer.write(body(2, 1));
    expect(await pending).toBe(true);
  });

  it('resolves waitWritable once the consumer releases space', async () => {
    const producer = SabRing.create(64);
    const consumer = SabRing.attach(producer.buffer);
    producer.write(body(40, 1));
    expect(await producer.waitWritable(20, 10)).toBe(false);
    const pending = producer.waitWritable(20, waitBoundMs);
    expect(consumer.tryRead()).toEqual(body(40, 1));
    expect(await pending).toBe(true);
    expect(producer.write(body(20, 2))).toBe(true);
  });
});
