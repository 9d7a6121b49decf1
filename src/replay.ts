/**
 * Replay: re-execute a recorded run from its log and check it tick by tick.
 *
 * The log header gives the seed and config; the system definition gives the code; the
 * tick records give the external inputs. Every re-executed record is compared with the
 * recorded one, and when the library versions match, byte for byte as well (the hash
 * chain then ends identical too). The first difference is reported with its tick, the
 * actor and, where the level allows, the message.
 */
import { resolveConfig, type RuntimeConfig } from './config.ts';
import { compareRecords, firstEnvelopeDifference, type Divergence } from './divergence.ts';
import { ConfigError, ReplayDivergenceError } from './errors.ts';
import { checkKeys } from './options.ts';
import { readLog } from './log/reader.ts';
import type { InferenceRecord } from './log/types.ts';
import { MessageKind } from './envelope.ts';
import { isShutdownRecord } from './kernel.ts';
import { Runtime } from './runtime.ts';
import type { SystemDefinition } from './system.ts';

export interface ReplayOptions {
  /** Worker threads for WASM agents; the result must not depend on it. */
  workers?: number;
  /** Public keys (PEM) the system's WASM agents may be signed with (as createRuntime's). */
  trustedKeys?: readonly string[];
  /** Development only: run WASM agents without checking their signatures. */
  allowUnsigned?: boolean;
  /** Called every `progressEvery` ticks. */
  onProgress?: (tick: number, total: number) => void;
  progressEvery?: number;
}

const replayOptionKeys: readonly string[] = ['workers', 'trustedKeys', 'allowUnsigned', 'onProgress', 'progressEvery'];

export interface ReplayReport {
  ticks: number;
  records: number;
  /** True when every record matched byte for byte (same library versions). */
  bitExact: boolean;
  chainHex: string;
  tornTail: { offset: number; bytesCut: number } | null;
  notes: string[];
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

/**
 * Replays `log` (a path or the log's bytes) against `system`. Returns a report when every
 * tick matches; throws ReplayDivergenceError naming the first divergent tick, actor and
 * message otherwise, LogFormatError/LogCorruptError for an unreadable log, and ConfigError
 * when the log was recorded from another system.
 */
export async function replay(log: string | Uint8Array, system: SystemDefinition, options: ReplayOptions = {}): Promise<ReplayReport> {
  checkKeys(options, replayOptionKeys, 'replay options');
  const recorded = readLog(log);
  const header = recorded.header;
  if (header.systemName !== system.name) {
    throw new ConfigError(
      `the log was recorded from system '${header.systemName}', but replay was given system '${system.name}'; ` +
        'pass the system module the run used',
    );
  }
  const config = resolveConfig(JSON.parse(header.configJson) as Partial<RuntimeConfig>);
  const notes: string[] = [];

  let index = 0;
  let divergence: Divergence | null = null;
  let pendingDetail: { tick: number; actor: string | null } | null = null;
  let bytesDiffer = false;
  // Answers logged whole (GPU answers, or logOutputs 'full') are substituted, not recomputed.
  const wholeAnswers = (tick: number): ReadonlyMap<string, InferenceRecord> | null => {
    const record = recorded.ticks[tick - 1];
    if (record === undefined || record.tick !== tick) return null;
    let answers: Map<string, InferenceRecord> | null = null;
    for (const inference of record.inferences) {
      if (inference.response === null) continue;
      answers ??= new Map();
      answers.set(`${inference.requester}:${inference.seq}`, inference);
    }
    return answers;
  };
  const runtime = new Runtime(
    system,
    { ...config, workers: options.workers, trustedKeys: options.trustedKeys, allowUnsigned: options.allowUnsigned },
    { embeddedInputs: false, recordedInference: wholeAnswers },
  );
  runtime.events.on('tick', ({ record, bytes: body }) => {
    const expected = recorded.ticks[index];
    const expectedBody = recorded.tickBodies[index];
    index++;
    if (expected === undefined || expectedBody === undefined) return;
    if (pendingDetail !== null && divergence !== null && divergence.message === null) {
      // The tick after a divergence shows the message that the divergent actor sent.
      if (expected.envelopes !== null && record.envelopes !== null) {
        const difference = firstEnvelopeDifference(expected.envelopes, record.envelopes, runtime);
        if (difference !== null) divergence = { ...divergence, message: difference.text };
      }
      pendingDetail = null;
      return;
    }
    if (divergence !== null) return;
    const found = compareRecords(expected, record, runtime);
    if (found !== null) {
      divergence = found;
      pendingDetail = { tick: found.tick, actor: found.actor };
    } else if (sameHeader && !bytesEqual(expectedBody, body)) {
      bytesDiffer = true;
    }
  });
  // The header is complete once the runtime started (it says whether a GPU served).
  await runtime.start();
  for (const model of header.models) {
    const now = runtime.header().models.find((entry) => entry.name === model.name);
    if (now === undefined || now.sha256 !== model.sha256) {
      notes.push(
        `model '${model.name}' was sha256 ${model.sha256.slice(0, 12) || '(unreadable)'}… when recorded and is ${now === undefined ? 'not registered' : `${now.sha256.slice(0, 12) || '(unreadable)'}…`} now: ` +
          'answers logged whole are substituted; others are recomputed and will diverge where they differ',
      );
    }
  }
  const sameHeader = JSON.stringify(runtime.header()) === JSON.stringify(header);
  if (!sameHeader) {
    notes.push(
      header.gpu !== runtime.header().gpu
        ? `recorded ${header.gpu ? 'with' : 'without'} a GPU, replayed ${runtime.header().gpu ? 'with' : 'without'} one: records compared by content, not bytes`
        : `recorded with ${header.versions.map((v) => `${v.name} ${v.version}`).join(', ')}; replaying with ` +
        `${runtime.header().versions.map((v) => `${v.name} ${v.version}`).join(', ')}: records compared by content, not bytes`,
    );
  }

  const last = recorded.ticks[recorded.ticks.length - 1];
  const shutdownRecorded = last !== undefined && isShutdownRecord(last);
  const regularTicks = recorded.ticks.length - (shutdownRecorded ? 1 : 0);
  const every = options.progressEvery ?? 1000;
  for (let i = 0; i < regularTicks; i++) {
    const record = recorded.ticks[i];
    if (record === undefined) break;
    for (const input of record.injected) runtime.injectRecorded(input.topic, input.payload, input.priority, input.kind === MessageKind.ask ? (input.timeoutTicks ?? 0) : 0);
    await runtime.step();
    if (divergence !== null && pendingDetail === null) break;
    if (options.onProgress !== undefined && runtime.tick % every === 0) options.onProgress(runtime.tick, regularTicks);
  }
  // The shutdown record also names a message that diverged in the last regular tick.
  if (shutdownRecorded && (divergence === null || pendingDetail !== null)) await runtime.close();
  else await runtime.abandon();
  const found = divergence as Divergence | null;
  if (found !== null) {
    if (found.message === null && config.level === 'digest') {
      notes.push('the log was recorded at level digest: record with --level full to name the message');
    }
    throw new ReplayDivergenceError({
      ...found,
      detail: found.detail + (found.message !== null && !found.detail.includes(found.message) ? `; first differing message: ${found.message}` : ''),
    });
  }
  if (bytesDiffer) {
    throw new ReplayDivergenceError({
      tick: -1,
      actor: null,
      message: null,
      detail: 'every record matched by content but not by bytes: the log encoder changed; re-record with this version',
    });
  }
  return {
    ticks: regularTicks,
    records: index,
    bitExact: sameHeader,
    chainHex: runtime.chainHex,
    tornTail: recorded.tornTail,
    notes,
  };
}
