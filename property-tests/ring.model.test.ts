/**
 * Model-based test of src/ring.ts: random sequences of producer and consumer operations
 * run against the real ring and against a plain bounded FIFO, which must agree after
 * every step. Tiny capacities make full rings and wrapped records the common case.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { RecordTooLargeError } from '../src/errors.ts';
import { SabRing } from '../src/ring.ts';

/**
 * The specification, independent of the implementation: records cost align4(4 + len),
 * a write fits iff used + cost <= capacity, staged records become readable on flush.
 */
class RingModel {
  readonly published: Uint8Array[] = [];
  staged: Uint8Array[] = [];
  usedBytes = 0;

  constructor(readonly capacityBytes: number) {}

  static cost(len: number): number {
    return Math.ceil((4 + len) / 4) * 4;
  }

  publishedBytes(): number {
    return this.published.reduce((sum, record) => sum + RingModel.cost(record.length), 0);
  }

  take(): Uint8Array | undefined {
    const record = this.published.shift();
    if (record !== undefined) this.usedBytes -= RingModel.cost(record.length);
    return record;
  }

  flush(): void {
    this.published.push(...this.staged);
    this.staged = [];
  }
}

/** The producer and the consumer hold separate handles: only the shared buffer connects them. */
interface Real {
  producer: SabRing;
  consumer: SabRing;
}

type RingCommand = fc.Command<RingModel, Real>;

function checkUsed(model: RingModel, real: Real): void {
  expect(real.producer.usedBytes()).toBe(model.usedBytes);
  expect(real.consumer.usedBytes()).toBe(model.publishedBytes());
}

class WriteCommand implements RingCommand {
  constructor(readonly bytes: Uint8Array) {}
  check(): boolean {
    return true;
  }
  run(model: RingModel, real: Real): void {
    const len = this.bytes.length;
    if (len > model.capacityBytes - 4) {
      expect(() => real.producer.tryWrite(this.bytes)).toThrow(RecordTooLargeError);
    } else {
      const fits = model.usedBytes + RingModel.cost(len) <= model.capacityBytes;
      expect(real.producer.tryWrite(this.bytes)).toBe(fits);
      if (fits) {
        model.staged.push(this.bytes.slice());
        model.usedBytes += RingModel.cost(len);
      }
    }
    checkUsed(model, real);
  }
  toString(): string {
    return `Write(${this.bytes.length})`;
  }
}

class FlushCommand implements RingCommand {
  check(): boolean {
    return true;
  }
  run(model: RingModel, real: Real): void {
    real.producer.flush();
    model.flush();
    checkUsed(model, real);
  }
  toString(): string {
    return 'Flush';
  }
}

class ReadCommand implements RingCommand {
  check(): boolean {
    return true;
  }
  run(model: RingModel, real: Real): void {
    const expected = model.take() ?? null;
    expect(real.consumer.tryRead()).toEqual(expected);
    checkUsed(model, real);
  }
  toString(): string {
    return 'Read';
  }
}

class DrainCommand implements RingCommand {
  constructor(readonly maxRecords: number) {}
  check(): boolean {
    return true;
  }
  run(model: RingModel, real: Real): void {
    const got: Uint8Array[] = [];
    const count = real.consumer.drain((view) => got.push(view.slice()), this.maxRecords);
    const expected: Uint8Array[] = [];
    for (let i = 0; i < this.maxRecords; i++) {
      const record = model.take();
      if (record === undefined) break;
      expected.push(record);
    }
    expect(count).toBe(expected.length);
    expect(got).toEqual(expected);
    checkUsed(model, real);
  }
  toString(): string {
    return `Drain(${this.maxRecords})`;
  }
}

/** Zero-timeout waits must answer exactly what the model says, and never block. */
class ProbeWaitsCommand implements RingCommand {
  constructor(readonly len: number) {}
  check(model: RingModel): boolean {
    return this.len <= model.capacityBytes - 4;
  }
  run(model: RingModel, real: Real): void {
    expect(real.consumer.waitReadableSync(0)).toBe(model.published.length > 0);
    // Waiting for space publishes the staged records first.
    const writable = real.producer.waitWritableSync(this.len, 0);
    model.flush();
    expect(writable).toBe(model.usedBytes + RingModel.cost(this.len) <= model.capacityBytes);
    checkUsed(model, real);
  }
  toString(): string {
    return `ProbeWaits(${this.len})`;
  }
}

function commandsFor(capacityBytes: number) {
  const recordBytesMax = capacityBytes - 4;
  const length = fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 12 }) },
    { weight: 4, arbitrary: fc.integer({ min: 0, max: recordBytesMax }) },
    { weight: 2, arbitrary: fc.integer({ min: recordBytesMax - 8, max: recordBytesMax }) },
    { weight: 1, arbitrary: fc.integer({ min: recordBytesMax + 1, max: recordBytesMax + 4 }) },
  );
  const bytes = length.chain((len) => fc.uint8Array({ minLength: len, maxLength: len }));
  return fc.commands(
    [
      bytes.map((b) => new WriteCommand(b)),
      fc.constant(new FlushCommand()),
      fc.constant(new ReadCommand()),
      fc.integer({ min: 0, max: 6 }).map((k) => new DrainCommand(k)),
      fc.integer({ min: 0, max: recordBytesMax }).map((len) => new ProbeWaitsCommand(len)),
    ],
    // 'large' gives runs of ~100 commands; the default size gives ~5, too few to fill and
    // wrap a ring repeatedly.
    { maxCommands: 200, size: 'large' },
  );
}

const scenario = fc
  .record({
    capacityBytes: fc.constantFrom(64, 128, 256),
    // Some runs start just below 2^32 so the free-running counters wrap mid-run.
    indexStart: fc.oneof(fc.constant(0), fc.integer({ min: 2 ** 30 - 1024, max: 2 ** 30 - 1 }).map((w) => w * 4)),
  })
  .chain(({ capacityBytes, indexStart }) =>
    fc.record({
      capacityBytes: fc.constant(capacityBytes),
      indexStart: fc.constant(indexStart),
      commands: commandsFor(capacityBytes),
    }),
  );

it('the ring behaves like a bounded FIFO of byte records', () => {
  fc.assert(
    fc.property(scenario, ({ capacityBytes, indexStart, commands }) => {
      const producer = SabRing.create(capacityBytes, { indexStart });
      const consumer = SabRing.attach(producer.buffer);
      fc.modelRun(() => ({ model: new RingModel(capacityBytes), real: { producer, consumer } }), commands);
    }),
    { numRuns: 200 },
  );
});
