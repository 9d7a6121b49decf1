/**
 * Reads and checks a replay log (format in `format.ts`). Every whole frame is verified:
 * length check, body CRC, zero pad, hash chain, a decodable body, record order. What the
 * reader tells apart:
 *
 * - a torn tail: the file ends inside a frame (a crash mid-write). Recoverable: the whole
 *   records before it are returned and `tornTail` says where to cut (`repairLog` cuts it).
 *   A tail of zero bytes up to the end of the file counts as torn too: a file system can
 *   extend a file before the data reaches the disk, and no real frame starts with 12 zeros.
 * - corruption: a whole frame whose bytes changed. Never skipped: LogCorruptError with the
 *   frame's byte offset.
 * - not a log / unsupported / nothing to recover: LogFormatError.
 */
import { openSync, closeSync, ftruncateSync, fsyncSync, readFileSync } from 'node:fs';
import { plainBytes } from '../codec.ts';
import { LogCorruptError, LogFormatError } from '../errors.ts';
import { BodyDecodeError, LOG_MAGIC, bodyChecksumOf, chainBytes, chainFromHex, chainToHex, decodeRecordBody, frameBytesOf, frameHeaderBytes, lengthCheckOf, logMagicBytes, nextChainHex, peekHeaderFormatVersion, prevChainMatches } from './format.ts';
import { LOG_FORMAT_VERSION, type EndRecord, type LogHeader, type LogRecord, type TickRecord } from './types.ts';
import { recordBodyBytesMax } from '../limits.ts';

/** One verified record, in file order. */
export interface LogEntry {
  record: LogRecord;
  /** Byte offset of the record's frame in the file. */
  offset: number;
  /** The record's body bytes (a view into the source). */
  body: Uint8Array;
}

/** Where a torn tail starts and how many bytes it holds. */
export interface TornTail {
  offset: number;
  bytesCut: number;
}

/** What `iterateLog` returns when it is done (the generator's return value). */
export interface LogScanSummary {
  tornTail: TornTail | null;
  /** The chain after the last whole record. */
  chainHex: string;
}

export interface ReadLogResult {
  header: LogHeader;
  ticks: TickRecord[];
  /** The body bytes of each tick record (views into the source), for byte-exact replay. */
  tickBodies: Uint8Array[];
  end: EndRecord | null;
  tornTail: TornTail | null;
  chainHex: string;
  /** Byte offset of every whole record's frame: header, ticks, then End if present. */
  recordOffsets: number[];
}

function isMagicPrefix(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length && i < logMagicBytes; i++) if (bytes[i] !== LOG_MAGIC[i]) return false;
  return true;
}

function zeroFrom(bytes: Uint8Array, offset: number): boolean {
  for (let i = offset; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

function noCompleteHeader(where: string, bytes: number): LogFormatError {
  return new LogFormatError(
    `${where}: no complete header: the log is cut short after ${bytes} bytes, before its header record ended. ` +
      'There is nothing to recover; record the run again',
  );
}

function versionMismatch(where: string, found: number): LogFormatError {
  const advice =
    found > LOG_FORMAT_VERSION
      ? 'it was written by a newer lockstep: read it with that version (or upgrade this one)'
      : 'it was written by an older lockstep: read it with that version, or record the run again';
  return new LogFormatError(
    `${where}: log format version ${found} is not supported; this lockstep reads format version ${LOG_FORMAT_VERSION}. ${advice}`,
  );
}

/**
 * Walks a log's records, verifying each frame before yielding it. Takes the whole file's
 * bytes and optionally its path (for messages). Yields one LogEntry per whole record and
 * returns the torn tail (or null) and the final chain. Throws LogFormatError when the
 * bytes are not a lockstep log, have another format version or hold no complete header;
 * LogCorruptError, with the frame's offset, for any whole frame that fails a check.
 */
export function* iterateLog(source: Uint8Array, path?: string): Generator<LogEntry, LogScanSummary, void> {
  const where = path ?? 'log';
  // Bodies handed out are views of this: plain Uint8Arrays, whose slice() copies (a Buffer's does not).
  const bytes = plainBytes(source);
  if (!isMagicPrefix(bytes)) {
    throw new LogFormatError(`${where}: not a lockstep log (the file does not start with 'LKSTPLOG')`);
  }
  if (bytes.length < logMagicBytes) throw noCompleteHeader(where, bytes.length);

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chain = new Uint8Array(chainBytes); // chain_0, then updated in place
  let offset = logMagicBytes;
  let headerSeen = false;
  let endSeen = false;
  let lastTick: number | null = null;
  let envelopesExpected = false;
  const corrupt = (at: number, reason: string) => new LogCorruptError(at, reason, path);

  while (offset < bytes.length) {
    const remaining = bytes.length - offset;
    if (endSeen) throw corrupt(offset, `${remaining} bytes follow the End record; nothing is written after End`);
    if (remaining < frameHeaderBytes) {
      if (!headerSeen) throw noCompleteHeader(where, bytes.length);
      return { tornTail: { offset, bytesCut: remaining }, chainHex: chainToHex(chain) };
    }
    const length = view.getUint32(offset, true);
    if (view.getUint32(offset + 4, true) !== lengthCheckOf(length)) {
      if (zeroFrom(bytes, offset)) {
        if (!headerSeen) throw noCompleteHeader(where, bytes.length);
        return { tornTail: { offset, bytesCut: remaining }, chainHex: chainToHex(chain) };
      }
      throw corrupt(offset, 'the frame length fails its check (a changed length field)');
    }
    if (length === 0 || length > recordBodyBytesMax) {
      throw corrupt(offset, `frame length ${length} is outside 1..${recordBodyBytesMax}`);
    }
    const frameBytes = frameBytesOf(length);
    if (frameBytes > remaining) {
      if (!headerSeen) throw noCompleteHeader(where, bytes.length);
      return { tornTail: { offset, bytesCut: remaining }, chainHex: chainToHex(chain) };
    }
    const bodyStart = offset + frameHeaderBytes;
    const body = bytes.subarray(bodyStart, bodyStart + length);
    if (view.getUint32(offset + 8, true) !== bodyChecksumOf(body)) {
      throw corrupt(offset, 'the record body fails its CRC (changed bytes)');
    }
    for (let i = bodyStart + length; i < offset + frameBytes; i++) {
      if (bytes[i] !== 0) throw corrupt(offset, `pad byte at offset ${i} is not zero`);
    }
    if (!headerSeen) {
      // Checked before a full decode: a log from another format version may not decode with this schema.
      const version = peekHeaderFormatVersion(body);
      if (version !== null && version !== LOG_FORMAT_VERSION) throw versionMismatch(where, version);
    }
    let decoded;
    try {
      decoded = decodeRecordBody(body);
    } catch (error) {
      if (error instanceof BodyDecodeError) throw corrupt(offset, `the record body does not decode: ${error.message}`);
      throw error;
    }
    if (!prevChainMatches(decoded.prevChain, chain)) {
      throw corrupt(offset, 'the hash chain is broken: prev_chain does not match the records before it (a record was removed, reordered or duplicated)');
    }
    const record = decoded.record;
    if (!headerSeen) {
      if (record.kind !== 'header') throw corrupt(offset, `the first record is a ${record.kind} record; a log starts with its header`);
      headerSeen = true;
      envelopesExpected = record.header.level === 'full';
    } else if (record.kind === 'header') {
      throw corrupt(offset, 'a second header record');
    } else if (record.kind === 'tick') {
      const tick = record.tick;
      if (lastTick !== null && tick.tick !== lastTick + 1) {
        throw corrupt(offset, `tick ${tick.tick} follows tick ${lastTick}; ticks are logged consecutively`);
      }
      if ((tick.envelopes !== null) !== envelopesExpected) {
        throw corrupt(offset, `tick ${tick.tick} ${envelopesExpected ? 'lacks the envelopes a full-level log carries' : 'carries envelopes in a digest-level log'}`);
      }
      lastTick = tick.tick;
    } else {
      endSeen = true;
    }
    chainFromHex(nextChainHex(chain, body), chain);
    yield { record, offset, body };
    offset += frameBytes;
  }
  if (!headerSeen) throw noCompleteHeader(where, bytes.length);
  return { tornTail: null, chainHex: chainToHex(chain) };
}

/**
 * Reads a whole log. Takes the file's bytes or its path. Returns the header, the tick
 * records and their bodies, the End record if any, the torn tail if any (records before it
 * are all returned) and the final chain. Throws as `iterateLog` does, and the fs error
 * when the path cannot be read.
 */
export function readLog(source: Uint8Array | string): ReadLogResult {
  const path = typeof source === 'string' ? source : undefined;
  const bytes = typeof source === 'string' ? readFileSync(source) : source;
  let header: LogHeader | null = null;
  const ticks: TickRecord[] = [];
  const tickBodies: Uint8Array[] = [];
  const recordOffsets: number[] = [];
  let end: EndRecord | null = null;
  const records = iterateLog(bytes, path);
  for (;;) {
    const step = records.next();
    if (step.done === true) {
      // iterateLog never finishes without a header: it throws "no complete header".
      return { header: header!, ticks, tickBodies, end, tornTail: step.value.tornTail, chainHex: step.value.chainHex, recordOffsets };
    }
    const { record, offset, body } = step.value;
    recordOffsets.push(offset);
    if (record.kind === 'header') header = record.header;
    else if (record.kind === 'tick') {
      ticks.push(record.tick);
      tickBodies.push(body);
    } else end = record.end;
  }
}

/**
 * Cuts a torn tail off a log file on disk, keeping every whole record. Takes the path.
 * Returns how many bytes were cut (0 for an intact log). Throws, changing nothing, when
 * the log is corrupt (LogCorruptError), not a log or holds no complete header (LogFormatError).
 */
export function repairLog(path: string): { bytesCut: number } {
  const log = readLog(path);
  if (log.tornTail === null) return { bytesCut: 0 };
  const fd = openSync(path, 'r+');
  try {
    ftruncateSync(fd, log.tornTail.offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { bytesCut: log.tornTail.bytesCut };
}
