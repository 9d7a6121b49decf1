import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as flatbuffers from 'flatbuffers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixRelativeImports, generateSchemas } from '../schemas/generate.ts';
import { LogCorruptError, LogFormatError } from '../src/errors.ts';
import {
  LOG_MAGIC,
  chainZero,
  encodeEndInto,
  encodeHeaderInto,
  encodeTickInto,
  frameRecord,
  nextChain,
} from '../src/log/format.ts';
import { iterateLog, readLog, repairLog } from '../src/log/reader.ts';
import { FileSink, LogWriter, MemorySink, openLogForAppend } from '../src/log/writer.ts';
import { LOG_FORMAT_VERSION, type EndRecord, type LogHeader, type LogLevel, type TickRecord } from '../src/log/types.ts';
import { fileSinkChunkBytes } from '../src/limits.ts';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lockstep-log-test-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let fileCounter = 0;
function freshPath(name: string): string {
  fileCounter++;
  return join(dir, `${fileCounter}-${name}.lklog`);
}

function header(level: LogLevel, overrides: Partial<LogHeader> = {}): LogHeader {
  return {
    formatVersion: LOG_FORMAT_VERSION,
    systemName: 'ring-demo',
    seed: 0xdeadbeef,
    level,
    configJson: '{"maxTasksPerTick":64,"seed":3735928559}',
    versions: [
      { name: 'lockstep', version: '0.1.0' },
      { name: 'flatbuffers', version: '25.9.23' },
    ],
    models: [],
    gpu: false,
    inferenceJson: '',
    ...overrides,
  };
}

/** A tick record with something in every field, deterministic in `tick`. */
function tickRecord(tick: number, level: LogLevel, actors = 3): TickRecord {
  const digests = new Uint32Array(actors * 7);
  for (let i = 0; i < digests.length; i++) digests[i] = (Math.imul(tick * 131 + i, 0x9e3779b1) >>> 0);
  return {
    tick,
    newTopics: tick === 1 ? [{ id: 1, name: 'orders' }, { id: 2, name: 'actor/7' }] : [],
    injected: tick % 2 === 0 ? [{ topic: 1, seq: tick * 10, priority: 5, payload: new TextEncoder().encode(`{"n":${tick}}`) }] : [],
    lifecycle: tick === 2 ? [{ actor: 7, from: 'running', to: 'crashed', detail: 'boom: ünïcødé ✓' }] : [],
    drops: tick === 3 ? [{ actor: 0, topic: 2, sender: 7, seq: 2 ** 40, reason: 'no subscriber' }] : [],
    deliveredCount: tick * 3,
    deliveredDigest: { hi: 0xffff_ffff - tick, lo: tick },
    actorDigests: digests,
    envelopes:
      level === 'digest'
        ? null
        : tick === 4
          ? []
          : [
              { topic: 1, sender: 7, seq: tick, tick: tick - 1, priority: 255, payload: new Uint8Array([tick, 1, 2]) },
              { topic: 2, sender: 0, seq: 2 ** 53 - 1, tick: tick - 1, priority: 0, payload: new Uint8Array(0) },
            ],
    inferences:
      tick === 5
        ? [
            { model: 'policy', requester: 7, seq: 2 ** 40, requestId: 9, provider: 'cpu', digest: { hi: 1, lo: 0xffff_ffff }, response: null, note: '' },
            { model: 'vad', requester: 8, seq: 1, requestId: 0, provider: 'webgpu', digest: { hi: 2, lo: 3 }, response: new Uint8Array([1, 2, 3]), note: 'fallback ✓' },
          ]
        : [],
  };
}

/** Writes a log to `path` through FileSink. Returns the writer's final chain and the bodies appendTick gave back. */
function writeLogFile(path: string, level: LogLevel, ticks: number, end: EndRecord | null): { chainHex: string; bodies: Uint8Array[] } {
  const writer = new LogWriter(new FileSink(path));
  writer.writeHeader(header(level));
  const bodies: Uint8Array[] = [];
  for (let t = 1; t <= ticks; t++) bodies.push(writer.appendTick(tickRecord(t, level)));
  if (end !== null) writer.close(end);
  else writer.flush(); // a crash: no End record
  return { chainHex: writer.chainHex, bodies };
}

function readBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

/** Frames record bodies built by `encoders` (each given a builder and the chain so far) into a log, chaining them properly. */
function assembleLog(encoders: Array<(builder: flatbuffers.Builder, chain: Uint8Array) => Uint8Array>): Uint8Array {
  const builder = new flatbuffers.Builder(256);
  let chain = chainZero;
  const parts: Uint8Array[] = [LOG_MAGIC];
  for (const encode of encoders) {
    const body = encode(builder, chain).slice();
    parts.push(frameRecord(body));
    chain = nextChain(chain, body);
  }
  return Buffer.concat(parts);
}

function expectCorruptAt(source: Uint8Array | string, offset: number, reason: RegExp): void {
  let thrown: unknown = null;
  try {
    readLog(source);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(LogCorruptError);
  expect((thrown as LogCorruptError).offset).toBe(offset);
  expect((thrown as LogCorruptError).message).toMatch(reason);
  expect((thrown as LogCorruptError).message).toMatch(new RegExp(`at byte offset ${offset}:`));
}

describe('replay log: writing and reading back', () => {
  it('round-trips a header, ticks and an End record through a file', () => {
    const path = join(dir, 'nested', 'folders', 'run.lklog'); // FileSink creates the folders
    const { chainHex, bodies } = writeLogFile(path, 'full', 6, { ticks: 6, reason: 'shutdown' });
    const log = readLog(path);
    expect(log.header).toEqual(header('full'));
    expect(log.ticks).toEqual([1, 2, 3, 4, 5, 6].map((t) => tickRecord(t, 'full')));
    expect(log.end).toEqual({ ticks: 6, reason: 'shutdown' });
    expect(log.tornTail).toBeNull();
    expect(log.chainHex).toBe(chainHex);
    expect(log.tickBodies).toEqual(bodies);
    expect(log.recordOffsets).toHaveLength(8);
    expect(log.recordOffsets[0]).toBe(8);
    expect(log.ticks[3]!.envelopes).toEqual([]); // an empty delivery at the full level stays an array
    // The same bytes read from memory give the same result.
    expect(readLog(readBytes(path))).toEqual(log);
    // Decoded payloads are copies: changing the source afterwards changes nothing (a Buffer's
    // slice() is a view, so this guards the reader against aliasing a Buffer source).
    const source = readFileSync(path);
    const fromBuffer = readLog(source);
    source.fill(0);
    expect(fromBuffer.ticks).toEqual(log.ticks);
    // iterateLog streams the same records.
    const kinds = [...iterateLog(readBytes(path))].map((entry) => entry.record.kind);
    expect(kinds).toEqual(['header', 'tick', 'tick', 'tick', 'tick', 'tick', 'tick', 'end']);
  });

  it('writes the same bytes to a file as to memory, across FileSink chunk boundaries', () => {
    const path = freshPath('chunks');
    const fileWriter = new LogWriter(new FileSink(path));
    const memory = new MemorySink();
    const memoryWriter = new LogWriter(memory);
    fileWriter.writeHeader(header('full'));
    memoryWriter.writeHeader(header('full'));
    // ~3 MiB of small records, then one record larger than a whole chunk.
    let t = 1;
    for (; t <= 1500; t++) {
      const record = tickRecord(t, 'full', 80);
      // Buffer.compare: expect().toEqual walks a typed array element by element, far too slowly here.
      expect(Buffer.compare(fileWriter.appendTick(record), memoryWriter.appendTick(record))).toBe(0);
    }
    const big = { ...tickRecord(t, 'full'), envelopes: [{ topic: 1, sender: 1, seq: 1, tick: 1, priority: 1, payload: new Uint8Array(fileSinkChunkBytes + 17).fill(7) }] };
    fileWriter.appendTick(big);
    memoryWriter.appendTick(big);
    fileWriter.close({ ticks: t, reason: 'shutdown' });
    memoryWriter.close({ ticks: t, reason: 'shutdown' });
    expect(statSync(path).size).toBeGreaterThan(3 * fileSinkChunkBytes);
    expect(Buffer.compare(readBytes(path), memory.bytes())).toBe(0);
    const log = readLog(path);
    expect(log.ticks).toHaveLength(1501);
    expect(log.ticks[1500]!.envelopes![0]!.payload.length).toBe(fileSinkChunkBytes + 17);
  });

  it('keeps envelopes only at the full level', () => {
    const digestPath = freshPath('digest');
    const fullPath = freshPath('full');
    writeLogFile(digestPath, 'digest', 5, { ticks: 5, reason: 'shutdown' });
    writeLogFile(fullPath, 'full', 5, { ticks: 5, reason: 'shutdown' });
    const digest = readLog(digestPath);
    const full = readLog(fullPath);
    expect(digest.header.level).toBe('digest');
    expect(full.header.level).toBe('full');
    expect(digest.ticks.every((tick) => tick.envelopes === null)).toBe(true);
    expect(full.ticks.every((tick) => Array.isArray(tick.envelopes))).toBe(true);
    expect(full.ticks[0]!.envelopes).toHaveLength(2);
    // Everything but the envelopes is the same.
    expect(digest.ticks).toEqual(full.ticks.map((tick) => ({ ...tick, envelopes: null })));
    expect(statSync(fullPath).size).toBeGreaterThan(statSync(digestPath).size);

    const writer = new LogWriter(new MemorySink());
    writer.writeHeader(header('digest'));
    expect(() => writer.appendTick(tickRecord(1, 'full'))).toThrow(/digest-level log takes envelopes: null/);
    const fullWriter = new LogWriter(new MemorySink());
    fullWriter.writeHeader(header('full'));
    expect(() => fullWriter.appendTick(tickRecord(1, 'digest'))).toThrow(/full-level log takes an envelopes array/);
  });

  it('enforces record order when writing', () => {
    const writer = new LogWriter(new MemorySink());
    expect(() => writer.appendTick(tickRecord(1, 'digest'))).toThrow(/missing its header/);
    expect(() => writer.writeHeader(header('digest', { formatVersion: LOG_FORMAT_VERSION + 1 }))).toThrow(/format version/);
    writer.writeHeader(header('digest'));
    expect(() => writer.writeHeader(header('digest'))).toThrow(/written once/);
    writer.appendTick(tickRecord(5, 'digest'));
    expect(() => writer.appendTick(tickRecord(7, 'digest'))).toThrow(/tick 7 appended after tick 5/);
    writer.appendTick(tickRecord(6, 'digest'));
    writer.close({ ticks: 6, reason: 'shutdown' });
    expect(() => writer.appendTick(tickRecord(7, 'digest'))).toThrow(/closed/);
  });

  it('reads a header-only log', () => {
    const path = freshPath('header-only');
    writeLogFile(path, 'digest', 0, null);
    const log = readLog(path);
    expect(log.header).toEqual(header('digest'));
    expect(log.ticks).toEqual([]);
    expect(log.tickBodies).toEqual([]);
    expect(log.end).toBeNull();
    expect(log.tornTail).toBeNull();
    expect(log.recordOffsets).toEqual([8]);
    // And it can be continued.
    const writer = openLogForAppend(path);
    writer.appendTick(tickRecord(1, 'digest'));
    writer.close({ ticks: 1, reason: 'shutdown' });
    expect(readLog(path).ticks).toEqual([tickRecord(1, 'digest')]);
  });
});

describe('replay log: torn tails', () => {
  it('cuts a torn tail at any offset inside the last frame, and appending afterwards gives the log an uninterrupted run writes', () => {
    const reference = new MemorySink();
    const referenceWriter = new LogWriter(reference);
    referenceWriter.writeHeader(header('full'));
    for (let t = 1; t <= 6; t++) referenceWriter.appendTick(tickRecord(t, 'full'));
    referenceWriter.close({ ticks: 6, reason: 'shutdown' });

    const intactPath = freshPath('intact');
    writeLogFile(intactPath, 'full', 4, null);
    const intact = readBytes(intactPath);
    const offsets = readLog(intact).recordOffsets;
    const lastStart = offsets[offsets.length - 1]!;
    const lastLength = intact.length - lastStart;
    for (const kept of [1, 4, 8, 11, 12, 13, 40, lastLength - 1]) {
      const path = freshPath(`torn-${kept}`);
      writeFileSync(path, intact.subarray(0, lastStart + kept));
      const torn = readLog(path);
      expect(torn.tornTail).toEqual({ offset: lastStart, bytesCut: kept });
      expect(torn.ticks).toEqual([1, 2, 3].map((t) => tickRecord(t, 'full')));

      expect(repairLog(path)).toEqual({ bytesCut: kept });
      expect(statSync(path).size).toBe(lastStart);
      const repaired = readLog(path);
      expect(repaired.tornTail).toBeNull();
      expect(repaired.ticks).toHaveLength(3);
      expect(repairLog(path)).toEqual({ bytesCut: 0 });

      const writer = openLogForAppend(path);
      expect(writer.lastTick).toBe(3);
      for (let t = 4; t <= 6; t++) writer.appendTick(tickRecord(t, 'full'));
      writer.close({ ticks: 6, reason: 'shutdown' });
      const continued = readLog(path);
      expect(continued.ticks).toEqual([1, 2, 3, 4, 5, 6].map((t) => tickRecord(t, 'full')));
      expect(continued.end).toEqual({ ticks: 6, reason: 'shutdown' });
      expect(Buffer.compare(readBytes(path), reference.bytes())).toBe(0);
    }
  });

  it('treats zeros up to the end of the file as a torn tail (a file extended before its data reached the disk)', () => {
    const path = freshPath('zero-tail');
    writeLogFile(path, 'digest', 3, null);
    const size = statSync(path).size;
    appendFileSync(path, new Uint8Array(4096));
    expect(readLog(path).tornTail).toEqual({ offset: size, bytesCut: 4096 });
    expect(repairLog(path)).toEqual({ bytesCut: 4096 });
    expect(readLog(path).ticks).toHaveLength(3);
    // Zeros followed by anything else are corruption, not a tail.
    appendFileSync(path, Buffer.concat([new Uint8Array(40), new Uint8Array([1])]));
    expectCorruptAt(path, size, /length fails its check/);
  });

  it('refuses to append to a torn or closed log', () => {
    const torn = freshPath('torn-append');
    writeLogFile(torn, 'digest', 2, null);
    appendFileSync(torn, new Uint8Array([1, 2, 3]));
    expect(() => openLogForAppend(torn)).toThrow(/torn record.*run repairLog/);
    const closed = freshPath('closed-append');
    writeLogFile(closed, 'digest', 2, { ticks: 2, reason: 'shutdown' });
    expect(() => openLogForAppend(closed)).toThrow(/was closed \(shutdown\)/);
  });
});

describe('replay log: corruption is reported with its offset', () => {
  let path = '';
  let intact: Uint8Array = new Uint8Array(0);
  let offsets: number[] = [];
  beforeAll(() => {
    path = freshPath('corruption-source');
    writeLogFile(path, 'full', 5, { ticks: 5, reason: 'shutdown' });
    intact = readBytes(path);
    offsets = readLog(intact).recordOffsets;
  });

  function corruptedCopy(change: (bytes: Uint8Array) => Uint8Array): string {
    const target = freshPath('corrupt');
    writeFileSync(target, change(intact.slice()));
    return target;
  }

  it('a changed byte in a body, a length, a length check or a CRC', () => {
    const record = offsets[2]!;
    const flip = (at: number) => corruptedCopy((bytes) => {
      bytes[at] = bytes[at]! ^ 0x10;
      return bytes;
    });
    expectCorruptAt(flip(record + 12 + 30), record, /body fails its CRC/);
    expectCorruptAt(flip(record + 1), record, /length fails its check/);
    expectCorruptAt(flip(record + 3), record, /length fails its check/); // high byte: the frame would look longer than the file
    expectCorruptAt(flip(record + 6), record, /length fails its check/);
    expectCorruptAt(flip(record + 9), record, /body fails its CRC/);
    expectCorruptAt(flip(offsets[0]! + 20), 8, /body fails its CRC/); // the header itself
    const last = offsets[offsets.length - 1]!;
    expectCorruptAt(flip(intact.length - 1), last, /CRC/); // the End record
    // The path is named.
    const flipped = flip(record + 40);
    expect(() => readLog(flipped)).toThrow(new RegExp(`^${flipped.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: corrupt record`));
  });

  it('two records swapped, or one duplicated', () => {
    const [a, b, c] = [offsets[2]!, offsets[3]!, offsets[4]!];
    const swapped = corruptedCopy((bytes) =>
      Buffer.concat([bytes.subarray(0, a), bytes.subarray(b, c), bytes.subarray(a, b), bytes.subarray(c)]),
    );
    expectCorruptAt(swapped, a, /hash chain is broken/);
    const duplicated = corruptedCopy((bytes) => Buffer.concat([bytes.subarray(0, b), bytes.subarray(a, b), bytes.subarray(b)]));
    expectCorruptAt(duplicated, b, /hash chain is broken/);
    const removed = corruptedCopy((bytes) => Buffer.concat([bytes.subarray(0, a), bytes.subarray(b)]));
    expectCorruptAt(removed, a, /hash chain is broken/);
  });

  it('well-chained records in an impossible order', () => {
    const head = (builder: flatbuffers.Builder) => encodeHeaderInto(builder, header('digest'));
    const tick = (t: number) => (builder: flatbuffers.Builder, chain: Uint8Array) => encodeTickInto(builder, tickRecord(t, 'digest'), chain);
    const end = (builder: flatbuffers.Builder, chain: Uint8Array) => encodeEndInto(builder, { ticks: 2, reason: 'shutdown' }, chain);
    const gap = assembleLog([head, tick(1), tick(3)]);
    expectCorruptAt(gap, readLog(gap.subarray(0, gap.length - 1)).tornTail!.offset, /tick 3 follows tick 1/);
    const backwards = assembleLog([head, tick(2), tick(1)]);
    expectCorruptAt(backwards, readLog(backwards.subarray(0, backwards.length - 1)).tornTail!.offset, /tick 1 follows tick 2/);
    // A header always claims chain_0, so a second one breaks the chain before the order check sees it.
    const twoHeaders = assembleLog([head, tick(1), head]);
    expect(() => readLog(twoHeaders)).toThrow(/hash chain is broken/);
    const afterEnd = assembleLog([head, tick(1), end, tick(2)]);
    expect(() => readLog(afterEnd)).toThrow(/follow the End record/);
    const noHeader = assembleLog([tick(1)]);
    expectCorruptAt(noHeader, 8, /first record is a tick record/);
    const fullTickInDigestLog = assembleLog([head, (builder, chain) => encodeTickInto(builder, tickRecord(1, 'full'), chain)]);
    expect(() => readLog(fullTickInDigestLog)).toThrow(/carries envelopes in a digest-level log/);
    // A byte after End, even a lone one, is not a torn tail: the writer never writes there.
    const closed = assembleLog([head, tick(1), end]);
    expect(() => readLog(Buffer.concat([closed, new Uint8Array([0])]))).toThrow(/1 bytes follow the End record/);
  });

  it('repairLog refuses a corrupt log and leaves it as it was', () => {
    const target = corruptedCopy((bytes) => {
      bytes[offsets[3]! + 50] = bytes[offsets[3]! + 50]! ^ 1;
      return bytes;
    });
    const before = readBytes(target);
    expect(() => repairLog(target)).toThrow(LogCorruptError);
    expect(Buffer.compare(readBytes(target), before)).toBe(0);
  });
});

describe('replay log: files that are not (whole) logs', () => {
  it('wrong magic', () => {
    const path = freshPath('not-a-log');
    writeFileSync(path, '{"this": "is json"}\n');
    expect(() => readLog(path)).toThrow(LogFormatError);
    expect(() => readLog(path)).toThrow(/not a lockstep log/);
    expect(() => readLog(new Uint8Array([0x4c, 0x4b, 0x58]))).toThrow(/not a lockstep log/);
    expect(() => repairLog(path)).toThrow(/not a lockstep log/);
  });

  it('a format version from the future, or the past', () => {
    const future = assembleLog([(builder) => encodeHeaderInto(builder, header('digest', { formatVersion: LOG_FORMAT_VERSION + 1 }))]);
    expect(() => readLog(future)).toThrow(LogFormatError);
    expect(() => readLog(future)).toThrow(
      new RegExp(`format version ${LOG_FORMAT_VERSION + 1} is not supported; this lockstep reads format version ${LOG_FORMAT_VERSION}.*newer lockstep`),
    );
    const past = assembleLog([(builder) => encodeHeaderInto(builder, header('digest', { formatVersion: 0 }))]);
    expect(() => readLog(past)).toThrow(/format version 0 is not supported.*older lockstep/);
  });

  it('an empty file, or one cut inside the magic or the header', () => {
    const path = freshPath('empty');
    writeFileSync(path, '');
    expect(() => readLog(path)).toThrow(LogFormatError);
    expect(() => readLog(path)).toThrow(/no complete header/);
    const whole = assembleLog([(builder) => encodeHeaderInto(builder, header('full'))]);
    for (const cut of [3, 8, 9, 19, 20, whole.length - 1]) {
      expect(() => readLog(whole.subarray(0, cut))).toThrow(/no complete header/);
      const cutPath = freshPath(`header-cut-${cut}`);
      writeFileSync(cutPath, whole.subarray(0, cut));
      expect(() => repairLog(cutPath)).toThrow(/no complete header.*nothing to recover/);
    }
    expect(readLog(whole).ticks).toEqual([]);
    // A whole header frame whose bytes changed is corruption, not a short file.
    const changed = whole.slice();
    changed[40] = changed[40]! ^ 4;
    expectCorruptAt(changed, 8, /CRC/);
  });
});

describe('schemas', () => {
  const generatedDir = fileURLToPath(new URL('../schemas/generated', import.meta.url));
  const flatcInstalled = spawnSync('flatc', ['--version']).status === 0;

  function listFiles(root: string): string[] {
    return readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => relative(root, join(entry.parentPath, entry.name)))
      .sort();
  }

  // The tests need Debian's flatc (.ci/run installs it): a check that quietly skips itself
  // where flatc is missing would pass on exactly the machines that never ran it.
  it('the committed generated code is exactly what `npm run schemas` produces', () => {
    expect(flatcInstalled, 'flatc is not installed: apt-get install flatbuffers-compiler (flatc 2.0.8), then run the tests again').toBe(true);
    const out = join(dir, 'generated');
    generateSchemas(out);
    const files = listFiles(out);
    expect(files).toEqual(listFiles(generatedDir));
    for (const file of files) {
      expect(readFileSync(join(out, file), 'utf8'), file).toBe(readFileSync(join(generatedDir, file), 'utf8'));
    }
  });

  it('the import fixer adds .ts to relative specifiers only', () => {
    const source = [
      "import * as flatbuffers from 'flatbuffers';",
      "import { End } from '../../lockstep/log/end';",
      "export { Envelope } from './lockstep/envelope';",
      "import { Done } from './already.ts';",
    ].join('\n');
    expect(fixRelativeImports(source)).toBe(
      [
        "import * as flatbuffers from 'flatbuffers';",
        "import { End } from '../../lockstep/log/end.ts';",
        "export { Envelope } from './lockstep/envelope.ts';",
        "import { Done } from './already.ts';",
      ].join('\n'),
    );
  });
});
