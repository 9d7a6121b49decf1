import { ConfigError } from './errors.ts';
import { checkKeys } from './options.ts';
import type { LogLevel } from './log/types.ts';
import { mailboxCapacityDefault, payloadBytesMaxDefault, tickTasksMaxDefault } from './limits.ts';

/** Everything that changes what a run does; it is written to the log header. */
export interface RuntimeConfig {
  /** Run seed, an unsigned 32-bit integer. */
  seed: number;
  /** Log detail: `digest` (per-actor digests) or `full` (every delivered envelope too). */
  level: LogLevel;
  /** Most actors activated in one tick (ADR-003). */
  tickTasksMax: number;
  /** Default mailbox bound, in messages. */
  mailboxCapacity: number;
  /** Largest payload accepted, in bytes. */
  payloadBytesMax: number;
}


export const configDefaults: RuntimeConfig = Object.freeze({
  seed: 0,
  level: 'digest',
  tickTasksMax: tickTasksMaxDefault,
  mailboxCapacity: mailboxCapacityDefault,
  payloadBytesMax: payloadBytesMaxDefault,
});

/** Merges layers left to right and validates the result; throws ConfigError naming the bad field. */
export function resolveConfig(...layers: (Partial<RuntimeConfig> | undefined)[]): RuntimeConfig {
  const config: RuntimeConfig = { ...configDefaults };
  for (const layer of layers) {
    if (layer === undefined) continue;
    checkKeys(layer, Object.keys(configDefaults), 'runtime config', { noun: 'field' });
    for (const [key, value] of Object.entries(layer)) {
      if (value === undefined) continue;
      (config as unknown as Record<string, unknown>)[key] = value;
    }
  }
  if (!(Number.isInteger(config.seed) && config.seed >= 0 && config.seed <= 0xffff_ffff)) {
    throw new ConfigError(`seed must be an integer in 0..4294967295, got ${config.seed}`);
  }
  if (config.level !== 'digest' && config.level !== 'full') {
    throw new ConfigError(`level must be 'digest' or 'full', got ${JSON.stringify(config.level)}`);
  }
  return config;
}

/** The config as canonical JSON (sorted keys), as stored in the log header. */
export function canonicalConfigJson(config: RuntimeConfig): string {
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(config).sort()) sorted[key] = (config as unknown as Record<string, unknown>)[key];
  return JSON.stringify(sorted);
}
