/**
 * Shared fast-check arbitraries for lockstep's records (envelopes, tick records, whole
 * logs). Shrinking matters here: keep vectors small by default so a failure shrinks to a
 * readable record.
 */
import fc from 'fast-check';
import { LogWriter, MemorySink } from '../src/log/writer.ts';
import {
  type InferenceRecord,
  ACTOR_DIGEST_STRIDE,
  LOG_FORMAT_VERSION,
  type DropRecord,
  type EndRecord,
  type EnvelopeRecord,
  type InjectedInput,
  type LifecycleEvent,
  type LogHeader,
  type LogLevel,
  type TickRecord,
  type TopicDeclaration,
} from '../src/log/types.ts';

export const uint32Arb = fc.integer({ min: 0, max: 0xffff_ffff });
/** uint64 fields kept as JS numbers: the whole safe range, biased towards both ends. */
export const uint53Arb = fc.oneof(fc.nat({ max: 1000 }), fc.maxSafeNat(), fc.constant(Number.MAX_SAFE_INTEGER));
export const priorityArb = fc.integer({ min: 0, max: 255 });
export const payloadArb = fc.uint8Array({ maxLength: 48 });
/**
 * Log strings: well-formed Unicode, including multi-byte graphemes. (A lone surrogate
 * cannot survive UTF-8; the log stores U+FFFD for it, so it is not a round-trip case.)
 */
export const logStringArb = fc.string({ unit: 'grapheme', maxLength: 12 });

export const envelopeRecordArb: fc.Arbitrary<EnvelopeRecord> = fc.record({
  topic: uint32Arb,
  sender: uint32Arb,
  seq: uint53Arb,
  tick: uint53Arb,
  priority: priorityArb,
  payload: payloadArb,
});

const topicDeclarationArb: fc.Arbitrary<TopicDeclaration> = fc.record({ id: uint32Arb, name: logStringArb });
const injectedInputArb: fc.Arbitrary<InjectedInput> = fc.record({ topic: uint32Arb, seq: uint53Arb, priority: priorityArb, payload: payloadArb });
const lifecycleEventArb: fc.Arbitrary<LifecycleEvent> = fc.record({ actor: uint32Arb, from: logStringArb, to: logStringArb, detail: logStringArb });
const dropRecordArb: fc.Arbitrary<DropRecord> = fc.record({ actor: uint32Arb, topic: uint32Arb, sender: uint32Arb, seq: uint53Arb, reason: logStringArb });

const inferenceRecordArb: fc.Arbitrary<InferenceRecord> = fc.record({
  model: logStringArb,
  requester: uint32Arb,
  seq: uint53Arb,
  requestId: uint32Arb,
  provider: fc.constantFrom('none', 'cpu', 'webgpu'),
  digest: fc.record({ hi: uint32Arb, lo: uint32Arb }),
  response: fc.option(payloadArb, { nil: null }),
  note: logStringArb,
});

/** Flat per-actor digests: a whole number of `ACTOR_DIGEST_STRIDE` entries, possibly none. */
export const actorDigestsArb: fc.Arbitrary<Uint32Array> = fc
  .array(fc.array(uint32Arb, { minLength: ACTOR_DIGEST_STRIDE, maxLength: ACTOR_DIGEST_STRIDE }), { maxLength: 6 })
  .map((entries) => Uint32Array.from(entries.flat()));

/** A tick record of `level` numbered `tick` (envelopes null at digest level, an array, maybe empty, at full). */
export function tickRecordArb(level: LogLevel, tick: fc.Arbitrary<number> = uint53Arb): fc.Arbitrary<TickRecord> {
  return fc.record({
    tick,
    newTopics: fc.array(topicDeclarationArb, { maxLength: 3 }),
    injected: fc.array(injectedInputArb, { maxLength: 3 }),
    lifecycle: fc.array(lifecycleEventArb, { maxLength: 3 }),
    drops: fc.array(dropRecordArb, { maxLength: 3 }),
    deliveredCount: uint32Arb,
    deliveredDigest: fc.record({ hi: uint32Arb, lo: uint32Arb }),
    actorDigests: actorDigestsArb,
    envelopes: level === 'digest' ? fc.constant(null) : fc.array(envelopeRecordArb, { maxLength: 4 }),
    inferences: fc.array(inferenceRecordArb, { maxLength: 3 }),
  });
}

export const logLevelArb: fc.Arbitrary<LogLevel> = fc.constantFrom('digest', 'full');

export function logHeaderArb(level: LogLevel): fc.Arbitrary<LogHeader> {
  return fc.record({
    formatVersion: fc.constant(LOG_FORMAT_VERSION),
    systemName: logStringArb,
    seed: uint32Arb,
    level: fc.constant(level),
    configJson: fc.jsonValue({ maxDepth: 2 }).map((value) => JSON.stringify(value)),
    versions: fc.array(fc.record({ name: logStringArb, version: logStringArb }), { maxLength: 3 }),
    models: fc.array(fc.record({ name: logStringArb, sha256: logStringArb, bytes: uint53Arb }), { maxLength: 3 }),
    gpu: fc.boolean(),
    inferenceJson: logStringArb,
  });
}

/** The logical content of a whole log: header, consecutive ticks, maybe an End record. */
export interface LogContent {
  header: LogHeader;
  ticks: TickRecord[];
  end: EndRecord | null;
}

/** A whole log: ticks numbered consecutively from a random first tick. */
export const logContentArb: fc.Arbitrary<LogContent> = logLevelArb.chain((level) =>
  fc
    .record({
      header: logHeaderArb(level),
      firstTick: fc.oneof(fc.nat({ max: 5 }), fc.constant(Number.MAX_SAFE_INTEGER - 20)),
      ticks: fc.array(tickRecordArb(level, fc.constant(0)), { maxLength: 6 }),
      end: fc.option(fc.record({ ticks: uint53Arb, reason: logStringArb }), { nil: null }),
    })
    .map(({ header, firstTick, ticks, end }) => ({
      header,
      ticks: ticks.map((tick, index) => ({ ...tick, tick: firstTick + index })),
      end,
    })),
);

/** Writes `content` with a LogWriter into memory. Returns the log's bytes. */
export function writeLogBytes(content: LogContent): Uint8Array {
  const sink = new MemorySink();
  const writer = new LogWriter(sink);
  writer.writeHeader(content.header);
  for (const tick of content.ticks) writer.appendTick(tick);
  if (content.end !== null) writer.close(content.end);
  return sink.bytes();
}
