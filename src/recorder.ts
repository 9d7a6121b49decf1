/**
 * The recorder: turns what each tick did (the kernel's `TickFacts`, plus the inference
 * answers settled in the tick) into the replay log's tick record and appends it; writes
 * the header and the end marker. It owns the log format's side of a run, so the kernel
 * never builds a log record and the log writer never sees a kernel type.
 */
import type { TickFacts } from './tick-facts.ts';
import type { EndRecord, InferenceRecord, LogHeader, TickRecord } from './log/types.ts';
import { LogWriter, MemorySink, type LogSink } from './log/writer.ts';

export class Recorder {
  private readonly writer: LogWriter;
  /** The in-memory log when no file or sink was given. */
  readonly memory: MemorySink | null;
  private inferences: InferenceRecord[] = [];
  private readonly sink: LogSink;

  constructor(sink: LogSink | null) {
    this.memory = sink === null ? new MemorySink() : null;
    this.sink = sink ?? this.memory!;
    this.writer = new LogWriter(this.sink);
  }

  /** True when the sink can make what it holds durable (see `sync`). */
  get canSync(): boolean {
    return typeof this.sink.sync === 'function';
  }

  /** Flushes and resolves once every record written so far is durable; resolves at once for a sink that cannot sync. */
  async sync(): Promise<void> {
    this.writer.flush();
    await this.sink.sync?.();
  }

  writeHeader(header: LogHeader): void {
    this.writer.writeHeader(header);
  }

  /** An inference answer settled in the tick under way: it goes into that tick's record. */
  addInference(record: InferenceRecord): void {
    this.inferences.push(record);
  }

  /** Builds the tick's record from its facts, appends it, and returns it with its bytes. */
  record(facts: TickFacts): { record: TickRecord; bytes: Uint8Array } {
    const record: TickRecord = {
      tick: facts.tick,
      newTopics: facts.newTopics,
      injected: facts.injected,
      lifecycle: facts.lifecycle,
      drops: facts.drops,
      deliveredCount: facts.deliveredCount,
      deliveredDigest: facts.deliveredDigest,
      actorDigests: facts.actorDigests,
      envelopes: facts.envelopes,
      inferences: this.inferences,
    };
    this.inferences = [];
    return { record, bytes: this.writer.appendTick(record) };
  }

  /** Writes the end marker and closes the sink. */
  close(end: EndRecord): void {
    this.writer.close(end);
  }

  /** Pushes buffered records to the sink (a file log is otherwise written in ~1 MiB chunks). */
  flush(): void {
    this.writer.flush();
  }

  /** The hash chain over every record so far: the run's digest once closed. */
  get chainHex(): string {
    return this.writer.chainHex;
  }
}
