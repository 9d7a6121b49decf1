/**
 * Writes the replay log (format in `format.ts`): one header, one record per tick, and an
 * End record on a clean close. The writer owns the hash chain and checks the order of
 * records (header first, ticks numbered consecutively, nothing after End); the sink only
 * moves bytes.
 */
import { closeSync, fsync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import * as flatbuffers from 'flatbuffers';
import { LogFormatError } from '../errors.ts';
import {
  LOG_MAGIC,
  assertFrameIntact,
  chainBytes,
  chainFromHex,
  chainToHex,
  encodeEndInto,
  encodeHeaderInto,
  encodeTickInto,
  frameBytesOf,
  frameHeaderBytes,
  frameRecordInto,
  nextChainHex,
} from './format.ts';
import { readLog } from './reader.ts';
import { LOG_FORMAT_VERSION, type EndRecord, type LogHeader, type LogLevel, type TickRecord } from './types.ts';
import { fileSinkChunkBytes, logBuilderBytesInitial, logFrameSlabBytes } from '../limits.ts';

/**
 * Where log bytes go. Small on purpose, so that a test or a user can swap it (a socket,
 * an object store). `write` may keep the array it is given: the writer never reuses it.
 */
export interface LogSink {
  write(bytes: Uint8Array): void;
  /** Pushes buffered bytes to their destination. */
  flush(): void;
  /** Flushes and releases the destination; no write follows. */
  close(): void;
  /**
   * Optional: flushes, then resolves once everything written before the call is durable
   * (a file: fsync). A sink without it cannot back a host's `durability: 'tick'` or
   * `'interval'`. Rejects with the system error when the bytes cannot be made durable.
   */
  sync?(): Promise<void>;
}

/**
 * Keeps the log in memory (tests, `runtime.logBytes()`). It keeps the arrays it is given
 * rather than copying them (the LogSink contract allows it), so a write costs no copy and
 * a long run no re-growing of one big buffer.
 */
export class MemorySink implements LogSink {
  private readonly parts: Uint8Array[] = [];
  private length = 0;

  write(bytes: Uint8Array): void {
    this.parts.push(bytes);
    this.length += bytes.length;
  }

  flush(): void {}

  close(): void {}

  /** A copy of everything written so far, in one array. */
  bytes(): Uint8Array {
    const all = new Uint8Array(this.length);
    let at = 0;
    for (const part of this.parts) {
      all.set(part, at);
      at += part.length;
    }
    return all;
  }
}


/**
 * Writes the log to a file, buffering up to `fileSinkChunkBytes` between writes. Creates
 * missing parent folders. The file is truncated unless `append` is set (used to continue a
 * repaired log). `close` fsyncs, so a log with an End record is on disk.
 */
export class FileSink implements LogSink {
  private readonly fd: number;
  private readonly pending = new Uint8Array(fileSinkChunkBytes);
  private pendingBytes = 0;
  private closed = false;

  /** Takes the path and options; throws the fs error (with its path) when the file cannot be opened. */
  constructor(
    readonly path: string,
    options: { append?: boolean } = {},
  ) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, options.append === true ? 'a' : 'w');
  }

  write(bytes: Uint8Array): void {
    if (this.closed) throw new Error(`assertion failed: write to closed log sink ${this.path}`);
    if (this.pendingBytes + bytes.length > this.pending.length) this.flush();
    if (bytes.length >= this.pending.length) {
      this.writeFully(bytes);
      return;
    }
    this.pending.set(bytes, this.pendingBytes);
    this.pendingBytes += bytes.length;
  }

  flush(): void {
    if (this.pendingBytes === 0) return;
    this.writeFully(this.pending.subarray(0, this.pendingBytes));
    this.pendingBytes = 0;
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    fsyncSync(this.fd);
    closeSync(this.fd);
  }

  /**
   * Flushes, then fsyncs on libuv's thread pool: the event loop (and further ticks) go on
   * meanwhile, and the promise resolves once what was written before the call is on disk.
   */
  sync(): Promise<void> {
    this.flush();
    const fd = this.fd;
    return new Promise((resolve, reject) => fsync(fd, (error) => (error === null ? resolve() : reject(error))));
  }

  /** writeSync may write less than asked (signals, pipes): loop until all is written. */
  private writeFully(bytes: Uint8Array): void {
    let written = 0;
    while (written < bytes.length) written += writeSync(this.fd, bytes, written, bytes.length - written);
  }
}

/** Where a writer continues an existing log from (see `openLogForAppend`). */
export interface LogWriterResumeState {
  header: LogHeader;
  chainHex: string;
  /** The last tick recorded, or null when the log holds only the header. */
  lastTick: number | null;
}



/**
 * Appends records to a log sink. Order is enforced (header, ticks numbered +1 each time,
 * optional End): a violation is a programmer error and throws a plain Error.
 */
export class LogWriter {
  private readonly builder = new flatbuffers.Builder(logBuilderBytesInitial);
  /** The chain after the last record, as bytes (updated in place) and as hex. */
  private readonly chain = new Uint8Array(chainBytes);
  private chainHexValue = chainToHex(this.chain);
  private slab = new Uint8Array(0);
  private slabUsed = 0;
  private state: 'new' | 'open' | 'closed' = 'new';
  private levelValue: LogLevel | null = null;
  private lastTickValue: number | null = null;

  constructor(private readonly sink: LogSink) {}

  /**
   * A writer that continues a log already in `sink` (opened for append), from the state
   * read back by `readLog`. Takes the sink and the state; returns a writer ready for ticks.
   */
  static resume(sink: LogSink, from: LogWriterResumeState): LogWriter {
    const writer = new LogWriter(sink);
    chainFromHex(from.chainHex, writer.chain);
    writer.chainHexValue = from.chainHex;
    writer.levelValue = from.header.level;
    writer.lastTickValue = from.lastTick;
    writer.state = 'open';
    return writer;
  }

  /** The hash chain after the last record written, as hex: the run's running digest. */
  get chainHex(): string {
    return this.chainHexValue;
  }

  /** The last tick appended, or null before the first. */
  get lastTick(): number | null {
    return this.lastTickValue;
  }

  get level(): LogLevel | null {
    return this.levelValue;
  }

  /** Writes the magic and the header record. Throws (assertion) if anything was written before or the version is not LOG_FORMAT_VERSION. */
  writeHeader(header: LogHeader): void {
    if (this.state !== 'new') throw new Error('assertion failed: the log header is written once, first');
    if (header.formatVersion !== LOG_FORMAT_VERSION) {
      throw new Error(`assertion failed: this writer writes format version ${LOG_FORMAT_VERSION}, the header says ${header.formatVersion}`);
    }
    const body = encodeHeaderInto(this.builder, header);
    this.sink.write(LOG_MAGIC.slice());
    this.writeFrame(body);
    this.levelValue = header.level;
    this.state = 'open';
  }

  /**
   * Appends one tick record. Takes the record (envelopes must be null at the digest level
   * and an array at the full level; ticks must be consecutive). Returns the record's body
   * bytes, which the caller owns: replay compares them byte for byte with the recorded ones.
   */
  appendTick(tick: TickRecord): Uint8Array {
    if (this.state !== 'open') throw new Error(`assertion failed: appendTick on a log that is ${this.state === 'new' ? 'missing its header' : 'closed'}`);
    if (this.lastTickValue !== null && tick.tick !== this.lastTickValue + 1) {
      throw new Error(`assertion failed: tick ${tick.tick} appended after tick ${this.lastTickValue}; ticks are logged consecutively`);
    }
    if ((tick.envelopes === null) !== (this.levelValue === 'digest')) {
      throw new Error(
        `assertion failed: a ${this.levelValue}-level log takes ${this.levelValue === 'digest' ? 'envelopes: null' : 'an envelopes array'} in every tick record`,
      );
    }
    const body = this.writeFrame(encodeTickInto(this.builder, tick, this.chain));
    this.lastTickValue = tick.tick;
    return body;
  }

  /** Pushes buffered records to the sink's destination. */
  flush(): void {
    this.sink.flush();
  }

  /** Writes the End record and closes the sink. No record may follow. */
  close(end: EndRecord): void {
    if (this.state !== 'open') throw new Error(`assertion failed: close on a log that is ${this.state === 'new' ? 'missing its header' : 'already closed'}`);
    this.writeFrame(encodeEndInto(this.builder, end, this.chain));
    this.state = 'closed';
    this.sink.close();
  }

  /**
   * Frames `body` (a view into the builder) into the slab, advances the chain, writes the
   * frame. Returns the body as a view into the slab, which nothing overwrites.
   */
  private writeFrame(body: Uint8Array): Uint8Array {
    const frameBytes = frameBytesOf(body.length);
    if (this.slabUsed + frameBytes > this.slab.length) {
      this.slab = new Uint8Array(Math.max(logFrameSlabBytes, frameBytes));
      this.slabUsed = 0;
    }
    const at = this.slabUsed;
    this.slabUsed += frameBytes;
    frameRecordInto(this.slab, at, body);
    const frame = this.slab.subarray(at, at + frameBytes);
    this.chainHexValue = nextChainHex(this.chain, body);
    chainFromHex(this.chainHexValue, this.chain);
    // Paired with the reader's check: verify the frame from its own bytes right before it leaves.
    assertFrameIntact(frame);
    this.sink.write(frame);
    return frame.subarray(frameHeaderBytes, frameHeaderBytes + body.length);
  }
}

/**
 * Opens an existing log file to append ticks (a run continued after a crash). Takes the
 * path. Returns a writer positioned after the last record. Throws LogFormatError when the
 * log has a torn tail (run `repairLog` first) or was closed with an End record, and
 * LogFormatError/LogCorruptError when it cannot be read.
 */
export function openLogForAppend(path: string): LogWriter {
  const log = readLog(path);
  if (log.tornTail !== null) {
    throw new LogFormatError(
      `${path}: the log ends in a torn record (${log.tornTail.bytesCut} bytes at offset ${log.tornTail.offset}); ` +
        'run repairLog (lockstep log repair) to cut it before appending',
    );
  }
  if (log.end !== null) {
    throw new LogFormatError(`${path}: the log was closed (${log.end.reason}); a closed log takes no more records, record a new run`);
  }
  const lastTick = log.ticks.length === 0 ? null : log.ticks[log.ticks.length - 1]!.tick;
  return LogWriter.resume(new FileSink(path, { append: true }), { header: log.header, chainHex: log.chainHex, lastTick });
}
