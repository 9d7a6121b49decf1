/**
 * Supervision policy: what a supervisor decides, as small pure functions, the way OTP's
 * supervisor.erl keeps add_restart/3 apart from the code that stops and starts processes.
 * The engine (`supervision.ts`) asks these functions and carries out their answers; nothing
 * here reads the kernel, an actor, a lifecycle or a clock, so each function is checked
 * directly against a plain model (`property-tests/supervision-policy.test.ts`).
 *
 *   an exit of child C, decided at tick `now`
 *     shouldRestart(C's restart type, abnormal?)         → no: forgetsWhenDown says if its spec goes too
 *     addRestart(restarts, now, { intensity, period })  → giveUp: the supervisor stops all and crashes
 *     restartGroup(strategy, children, C, restartOf)     → who to stop (reverse start order), who to
 *                                                          forget, who to restart (start order)
 *     backoffDelay(backoff, C's restarts in window)      → how many ticks after the exit it restarts
 *
 * Restart times are ticks, oldest first (OTP keeps its list newest first; the order does not
 * change any count here).
 */
import type { Backoff, RestartType, Strategy } from './spec.ts';

/**
 * The edge of the intensity window, kept in this one predicate: a restart decided at tick
 * `at` still counts at tick `now` while `now - at < period`, so with `period: 1` only the
 * restarts of the current tick count. OTP's edge is inclusive (add_restart/3 keeps `R` while
 * `R >= Now - Period`, that is `now - at <= period`); moving lockstep to OTP's edge is a
 * change to this line alone (and to the models in the tests that state today's edge).
 *
 * Takes ticks (`at <= now` in every use); returns whether `at` is in the window; throws nothing.
 */
export function inRestartWindow(at: number, now: number, period: number): boolean {
  return now - at < period;
}

/**
 * The restarts that still count at tick `now`: those of `restarts` inside the window of
 * `period` ticks (see inRestartWindow), in their order. Takes restart ticks, the current
 * tick and the period (ticks, >= 1); returns a new array; throws nothing.
 */
export function restartsInWindow(restarts: readonly number[], now: number, period: number): number[] {
  return restarts.filter((at) => inRestartWindow(at, now, period));
}

/** The restart-intensity flags, as `ResolvedFlags` has them. */
export interface IntensityFlags {
  /** Most restarts allowed within `period` (>= 0). */
  readonly intensity: number;
  /** The window, in ticks (>= 1). */
  readonly period: number;
}

/**
 * OTP's add_restart: counts one more restart, decided at tick `now`. Takes the restart ticks
 * counted so far (oldest first), `now`, and the flags. Returns the restarts still in the
 * window followed by `now` (what to keep for the next call), and `giveUp`: true when that
 * makes more than `intensity` restarts within `period` ticks, in which case the supervisor
 * stops its children and crashes instead of restarting. Does not change `restarts`; throws
 * nothing.
 */
export function addRestart(restarts: readonly number[], now: number, flags: IntensityFlags): { restarts: number[]; giveUp: boolean } {
  const counted = restartsInWindow(restarts, now, flags.period);
  counted.push(now);
  return { restarts: counted, giveUp: counted.length > flags.intensity };
}

/**
 * The backoff before the n-th restart of one child within the period, in ticks from its
 * exit: `min(max, round(initial * factor^(n-1)))`, so the first is `initial`, each later one
 * `factor` times longer, none longer than `max`. Takes a checked backoff (spec.ts:
 * `initial >= 1`, `max >= initial`, `factor >= 1`) and n, the child's restarts in the window
 * counting this one. Returns ticks. Throws RangeError unless n is an integer >= 1 (a
 * programmer error: a restart being decided is always in its own window).
 */
export function backoffDelay(backoff: Required<Backoff>, restartsInWindow: number): number {
  if (!(Number.isInteger(restartsInWindow) && restartsInWindow >= 1)) {
    throw new RangeError(`backoffDelay: restarts in the window must be an integer >= 1 (counting the one being decided), got ${String(restartsInWindow)}`);
  }
  return Math.min(backoff.max, Math.round(backoff.initial * backoff.factor ** (restartsInWindow - 1)));
}

/**
 * Whether a child that exited is restarted at all, by its restart type (OTP): `permanent`
 * always, `transient` only after an abnormal exit (a crash), `temporary` never. Takes the
 * type and whether the exit was abnormal; returns the answer; throws nothing.
 */
export function shouldRestart(restart: RestartType, abnormal: boolean): boolean {
  return restart === 'permanent' || (restart === 'transient' && abnormal);
}

/**
 * Whether a child that is down and will not be restarted loses its spec, rather than staying
 * in its supervisor, terminated, for restartChild or deleteChild (OTP): temporary children
 * are forgotten, and so is every child of a simple_one_for_one supervisor. Takes the
 * supervisor's strategy and the child's restart type; returns the answer; throws nothing.
 */
export function forgetsWhenDown(strategy: Strategy, restart: RestartType): boolean {
  return restart === 'temporary' || strategy === 'simple_one_for_one';
}

/** What a strategy does about one child's exit (a restart the intensity allowed). */
export interface RestartGroup<C> {
  /** The exited child's siblings to stop first, in reverse start order (the exited child is down already). */
  readonly stop: C[];
  /** Of `stop`, the temporary ones, in the same order: stopped for good and forgotten, never restarted (OTP). */
  readonly forget: C[];
  /** What restarts once every one of them is down, in start order: the exited child and its other siblings. */
  readonly restart: C[];
}

/**
 * The restart group of a strategy (OTP): `one_for_one` and `simple_one_for_one` restart only
 * the exited child; `one_for_all` stops the others and restarts everyone; `rest_for_one`
 * stops those started after the exited child and restarts it and them. Siblings stop in
 * reverse start order and restart in start order; temporary siblings are stopped but not
 * restarted.
 *
 * Takes the strategy, the supervisor's children in start order (those it still has), the
 * exited child (one of them, and one `shouldRestart` said yes to: it is always in `restart`)
 * and how to read a child's restart type. Returns new arrays of those children. Throws
 * RangeError when `exited` is not among `children` (a programmer error).
 */
export function restartGroup<C>(strategy: Strategy, children: readonly C[], exited: C, restartOf: (child: C) => RestartType): RestartGroup<C> {
  const index = children.indexOf(exited);
  if (index < 0) throw new RangeError('restartGroup: the exited child is not among the children given');
  let members: readonly C[];
  switch (strategy) {
    case 'one_for_one':
    case 'simple_one_for_one':
      members = [exited];
      break;
    case 'one_for_all':
      members = children;
      break;
    case 'rest_for_one':
      members = children.slice(index);
      break;
  }
  const stop: C[] = [];
  for (let i = members.length - 1; i >= 0; i--) {
    const member = members[i]!;
    if (member !== exited) stop.push(member);
  }
  const forget = stop.filter((member) => restartOf(member) === 'temporary');
  const restart = members.filter((member) => member === exited || restartOf(member) !== 'temporary');
  return { stop, forget, restart };
}
