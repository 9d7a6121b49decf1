import { ACTOR_DIGEST_STRIDE } from '../log/types.ts';
import type { ReadLogResult } from '../log/reader.ts';

/** A person-readable account of a log: header, ticks, traffic, lifecycle, integrity. */
export function inspectLog(log: ReadLogResult, path: string, eventsShown: number): string {
  const { header } = log;
  const topics = new Map<number, string>();
  const actors = new Map<number, string>();
  let delivered = 0;
  let injected = 0;
  let drops = 0;
  let activations = 0;
  const dropReasons = new Map<string, number>();
  const transitions = new Map<string, number>();
  const events: string[] = [];
  for (const tick of log.ticks) {
    for (const topic of tick.newTopics) topics.set(topic.id, topic.name);
    delivered += tick.deliveredCount;
    injected += tick.injected.length;
    drops += tick.drops.length;
    activations += tick.actorDigests.length / ACTOR_DIGEST_STRIDE;
    for (const drop of tick.drops) dropReasons.set(drop.reason, (dropReasons.get(drop.reason) ?? 0) + 1);
    for (const event of tick.lifecycle) {
      if (event.actor === 0) continue; // the runtime's own shutdown marker
      if (event.to === 'created') actors.set(event.actor, event.detail);
      const key = `${event.from} → ${event.to}`;
      transitions.set(key, (transitions.get(key) ?? 0) + 1);
      if (events.length < eventsShown && event.to !== 'created' && event.to !== 'initializing' && !(event.from === 'initializing' && event.to === 'running')) {
        events.push(`    tick ${tick.tick}: ${actors.get(event.actor) ?? `#${event.actor}`} ${key}${event.detail ? ` (${event.detail})` : ''}`);
      }
    }
  }
  const lines = [
    `log ${path}`,
    `  format version ${header.formatVersion}, system '${header.systemName}', seed ${header.seed}, level ${header.level}`,
    `  config ${header.configJson}`,
    `  versions ${header.versions.map((v) => `${v.name} ${v.version}`).join(', ')}`,
    `  ticks ${log.ticks.length}${log.end === null ? ' (no end record: the run did not close cleanly)' : `, closed (${log.end.reason} after ${log.end.ticks} ticks)`}`,
    `  actors ${actors.size}, topics ${topics.size}, activations ${activations}`,
    `  messages delivered ${delivered}, inputs injected ${injected}, drops ${drops}`,
  ];
  if (header.models.length > 0) {
    const answers = log.ticks.flatMap((tick) => tick.inferences);
    const whole = answers.filter((answer) => answer.response !== null).length;
    const notes = [...new Set(answers.map((answer) => answer.note).filter((note) => note.length > 0))];
    lines.push(
      `  models ${header.models.map((model) => `${model.name} (sha256 ${model.sha256.slice(0, 12) || 'unreadable'}…, ${model.bytes} bytes)`).join(', ')}; ` +
        `GPU ${header.gpu ? 'used' : 'not used'}`,
      `  inference answers ${answers.length} (${whole} logged whole, ${answers.length - whole} as digests)`,
      ...notes.slice(0, 5).map((note) => `    note: ${note}`),
    );
  }
  for (const [reason, count] of [...dropReasons].sort((a, b) => b[1] - a[1])) lines.push(`    dropped ${count}: ${reason}`);
  lines.push('  lifecycle transitions');
  for (const [key, count] of [...transitions].sort()) lines.push(`    ${key}: ${count}`);
  if (events.length > 0) {
    lines.push('  lifecycle events (beyond start-up)');
    lines.push(...events);
  }
  lines.push(
    `  integrity: every record's CRC and hash chain verified; ` +
      (log.tornTail === null
        ? 'no torn tail'
        : `torn tail of ${log.tornTail.bytesCut} bytes at offset ${log.tornTail.offset} (cut by 'repair'; whole records before it are intact)`),
  );
  lines.push(`  final chain ${log.chainHex}`);
  return lines.join('\n');
}
