/**
 * `lockstep/log`: the replay log as a file format, for tools that read, write or repair
 * logs themselves (the runtime writes its log on its own; `replay` reads one).
 *
 *   readLog(path | bytes)   → header, tick records, end record, integrity (torn tail)
 *   repairLog(path)         → cuts a torn tail at the last whole record
 *   LogWriter + a LogSink   → writes records (FileSink, MemorySink, or your own sink)
 */
export { readLog, repairLog, type ReadLogResult } from './reader.ts';
export { FileSink, LogWriter, MemorySink, type LogSink } from './writer.ts';
export {
  actorDigestsOf,
  LOG_FORMAT_VERSION,
  type ActorDigest,
  type Digest64,
  type DropRecord,
  type EndRecord,
  type EnvelopeRecord,
  type InferenceProvider,
  type InferenceRecord,
  type InjectedInput,
  type LifecycleEvent,
  type LogHeader,
  type LogLevel,
  type LogRecord,
  type TickRecord,
  type TopicDeclaration,
} from './types.ts';
