/**
 * Supervision tree specs: `supervisor(flags, children)` and the child specs it takes, with
 * OTP's vocabulary (erlang.org/doc/man/supervisor) on logical ticks. Everything is checked
 * here, when the spec is written, so a bad tree fails before anything runs.
 */
import type { ActorDefinition } from '../actors/js-actor.ts';
import type { WasmAgentDefinition } from '../actors/wasm-agent.ts';
import { SupervisorError } from '../src/errors.ts';
import { checkKeys } from '../src/options.ts';

export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one' | 'simple_one_for_one';
export const strategies: readonly Strategy[] = ['one_for_one', 'one_for_all', 'rest_for_one', 'simple_one_for_one'];

/** permanent: always restarted. transient: only after an abnormal exit (a crash). temporary: never. */
export type RestartType = 'permanent' | 'transient' | 'temporary';
export const restartTypes: readonly RestartType[] = ['permanent', 'transient', 'temporary'];

/**
 * How a child is stopped. A number (ticks, >= 0) or 'infinity' run its stop hook (JS `stop`,
 * WASM `agent_shutdown`); 'brutal_kill' skips it. Stop hooks are synchronous or metered, so
 * a graceful stop always ends within the tick: the timeout never has to fire.
 */
export type Shutdown = 'brutal_kill' | 'infinity' | number;

/**
 * Exponential backoff between restarts of one child, in ticks (lockstep's addition to
 * OTP). Without it a crashed child restarts at the next tick boundary; with it, the n-th
 * restart of a child within `period` comes min(max, initial * factor^(n-1)) ticks after
 * its crash (so `initial: 1` is the same as no backoff).
 */
export interface Backoff {
  /** Ticks from the crash to the first restart within `period` (>= 1). */
  initial: number;
  /** Longest wait, in ticks. */
  max: number;
  /** Growth per restart within `period` (default 2). */
  factor?: number;
}

export interface SupervisorFlags {
  strategy: Strategy;
  /** Most restarts within `period` ticks; one more and the supervisor gives up (default 1, as OTP). */
  intensity?: number;
  /** The intensity window, in ticks (default 5, as OTP's seconds). */
  period?: number;
  backoff?: Backoff;
}

/** What a child runs: a JS actor, a WASM agent, or a nested supervisor. */
export type ChildStart = ActorDefinition<any, any> | WasmAgentDefinition | SupervisorSpec;

export interface ChildSpec {
  /** Unique among the supervisor's children; the actor is named `<supervisor>/<id>`. */
  id: string;
  start: ChildStart;
  /** Passed to the actor's init. */
  args?: unknown;
  /** Scheduling priority 0..255 (default 0). */
  priority?: number;
  mailboxCapacity?: number;
  restart?: RestartType;
  /** Default: 5 for a worker, 'infinity' for a supervisor (as OTP). */
  shutdown?: Shutdown;
}

/** A checked child spec with its defaults filled in. */
export interface ResolvedChildSpec {
  readonly id: string;
  readonly start: ChildStart;
  readonly args: unknown;
  readonly priority: number;
  readonly mailboxCapacity: number | undefined;
  readonly restart: RestartType;
  readonly shutdown: Shutdown;
}

export interface ResolvedFlags {
  readonly strategy: Strategy;
  readonly intensity: number;
  readonly period: number;
  readonly backoff: Required<Backoff> | null;
}

/** A supervision tree: what `spawn` (or a parent's child spec) takes to start one. */
export interface SupervisorSpec {
  readonly kind: 'supervisor';
  readonly flags: ResolvedFlags;
  /** Static children in start order; for simple_one_for_one, the one template. */
  readonly children: readonly ResolvedChildSpec[];
}

const defaultIntensity = 1;
const defaultPeriod = 5;
const defaultWorkerShutdown = 5;

function invalid(message: string): never {
  throw new SupervisorError('supervisor_invalid_spec', message);
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/**
 * Declares a supervisor. Throws SupervisorError (code supervisor_invalid_spec) naming the
 * problem: an unknown strategy, a negative intensity, duplicate child ids, a bad child spec,
 * a supervisor nested in itself.
 */
export function supervisor(flags: SupervisorFlags, children: readonly ChildSpec[]): SupervisorSpec {
  if (flags === null || typeof flags !== 'object') invalid('supervisor(flags, children): flags must be an object { strategy, intensity, period }');
  checkKeys(flags, ['strategy', 'intensity', 'period', 'backoff'], 'supervisor flags', { fail: invalid, noun: 'field' });
  if (!strategies.includes(flags.strategy)) {
    invalid(`supervisor flags: unknown strategy ${JSON.stringify(flags.strategy)}; use one of ${strategies.join(', ')}`);
  }
  const intensity = flags.intensity ?? defaultIntensity;
  if (!isNonNegativeInteger(intensity)) invalid(`supervisor flags: intensity must be an integer >= 0 (restarts allowed per period), got ${String(intensity)}`);
  const period = flags.period ?? defaultPeriod;
  if (!(isNonNegativeInteger(period) && period >= 1)) invalid(`supervisor flags: period must be an integer >= 1 (ticks), got ${String(period)}`);
  let backoff: Required<Backoff> | null = null;
  if (flags.backoff !== undefined) {
    if (flags.backoff === null || typeof flags.backoff !== 'object') invalid('supervisor flags: backoff must be an object { initial, max, factor }');
    checkKeys(flags.backoff, ['initial', 'max', 'factor'], 'supervisor flags: backoff', { fail: invalid, noun: 'field' });
    const { initial, max, factor = 2 } = flags.backoff;
    if (!(isNonNegativeInteger(initial) && initial >= 1)) invalid(`supervisor flags: backoff.initial must be an integer >= 1 (ticks), got ${String(initial)}`);
    if (!(isNonNegativeInteger(max) && max >= initial)) invalid(`supervisor flags: backoff.max must be an integer >= backoff.initial, got ${String(max)}`);
    if (!(typeof factor === 'number' && Number.isFinite(factor) && factor >= 1)) invalid(`supervisor flags: backoff.factor must be a number >= 1, got ${String(factor)}`);
    backoff = { initial, max, factor };
  }
  if (!Array.isArray(children)) invalid('supervisor(flags, children): children must be an array of child specs');
  if (flags.strategy === 'simple_one_for_one' && children.length !== 1) {
    invalid(`simple_one_for_one takes exactly one child spec, the template for startChild; got ${children.length}`);
  }
  const spec: { kind: 'supervisor'; flags: ResolvedFlags; children: ResolvedChildSpec[] } = {
    kind: 'supervisor',
    flags: Object.freeze({ strategy: flags.strategy, intensity, period, backoff }),
    children: [],
  };
  const ids = new Set<string>();
  for (const child of children) {
    const resolved = resolveChildSpec(child, spec);
    if (ids.has(resolved.id)) invalid(`duplicate child id '${resolved.id}': ids must be unique within a supervisor`);
    ids.add(resolved.id);
    spec.children.push(resolved);
  }
  Object.freeze(spec.children);
  const made = Object.freeze(spec);
  madeSpecs.add(made);
  return made;
}

/** Specs made by `supervisor()`: a hand-made look-alike could hold itself and never finish starting. */
const madeSpecs = new WeakSet<object>();

/** Checks one child spec (for `supervisor` and `startChild`) and fills in its defaults. */
export function resolveChildSpec(child: ChildSpec, parent?: SupervisorSpec): ResolvedChildSpec {
  if (child === null || typeof child !== 'object') invalid('a child spec must be an object { id, start, restart, shutdown }');
  checkKeys(child, ['id', 'start', 'args', 'priority', 'mailboxCapacity', 'restart', 'shutdown'], `child spec '${String(child.id)}'`, { fail: invalid, noun: 'field' });
  if (typeof child.id !== 'string' || child.id.length === 0 || /[/\s]/.test(child.id)) {
    invalid(`child spec id must be a non-empty string without '/' or spaces, got ${JSON.stringify(child.id)}`);
  }
  const start = child.start as unknown;
  const kind = start !== null && typeof start === 'object' ? (start as { kind?: unknown }).kind : undefined;
  if (kind !== 'js' && kind !== 'wasm' && kind !== 'supervisor') {
    invalid(`child '${child.id}': start must be an actor definition (defineActor), a WASM agent (loadWasmAgent) or a supervisor(...) spec`);
  }
  if (kind === 'supervisor' && !madeSpecs.has(start as object)) {
    invalid(`child '${child.id}': start is a supervisor spec not made by supervisor(...); build nested trees with supervisor(flags, children)`);
  }
  if (parent !== undefined && kind === 'supervisor' && containsSpec(start as SupervisorSpec, parent)) {
    invalid(`child '${child.id}': a supervisor cannot be nested in itself`);
  }
  const restart = child.restart ?? 'permanent';
  if (!restartTypes.includes(restart)) invalid(`child '${child.id}': restart must be one of ${restartTypes.join(', ')}, got ${JSON.stringify(restart)}`);
  const shutdown = child.shutdown ?? (kind === 'supervisor' ? 'infinity' : defaultWorkerShutdown);
  if (!(shutdown === 'brutal_kill' || shutdown === 'infinity' || isNonNegativeInteger(shutdown))) {
    invalid(`child '${child.id}': shutdown must be 'brutal_kill', 'infinity' or ticks (an integer >= 0), got ${JSON.stringify(shutdown)}`);
  }
  const priority = child.priority ?? 0;
  if (!(isNonNegativeInteger(priority) && priority <= 255)) invalid(`child '${child.id}': priority must be an integer in 0..255, got ${String(priority)}`);
  if (child.mailboxCapacity !== undefined && !(isNonNegativeInteger(child.mailboxCapacity) && child.mailboxCapacity >= 1)) {
    invalid(`child '${child.id}': mailboxCapacity must be an integer >= 1, got ${String(child.mailboxCapacity)}`);
  }
  return Object.freeze({
    id: child.id,
    start: start as ChildStart,
    args: child.args,
    priority,
    mailboxCapacity: child.mailboxCapacity,
    restart,
    shutdown,
  });
}

/** True when `tree` is `target` or holds it anywhere below. */
function containsSpec(tree: SupervisorSpec, target: SupervisorSpec): boolean {
  if (tree === target) return true;
  return tree.children.some((child) => child.start.kind === 'supervisor' && containsSpec(child.start, target));
}

/** True for a spec made by `supervisor()`. */
export function isSupervisorSpec(value: unknown): value is SupervisorSpec {
  return value !== null && typeof value === 'object' && madeSpecs.has(value);
}

/** True when `tree` is `target` or holds it anywhere below (a tree started inside itself). */
export function specContains(tree: SupervisorSpec, target: SupervisorSpec): boolean {
  return containsSpec(tree, target);
}
