/**
 * The supervision policy (supervisors/policy.ts), checked directly against plain models
 * written here: the intensity window as a brute-force count over the ticks of the window,
 * the backoff by its laws (and exactly, where the arithmetic is exact), and the restart
 * groups by index predicates per strategy. The engine applies these answers; the stress
 * property in supervision.test.ts checks that it does.
 *
 * The models state today's window edge (a restart at tick `at` counts at `now` while
 * `now - at < period`); a change to OTP's inclusive edge changes `windowTicks` below too.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addRestart, backoffDelay, restartGroup, restartsInWindow } from '../supervisors/policy.ts';
import type { RestartType, Strategy } from '../supervisors/spec.ts';

// ── the window ───────────────────────────────────────────────────────────────────────

/** The ticks the window covers at `now`: the last `period` ticks, `now` included. */
function windowTicks(now: number, period: number): number[] {
  const ticks: number[] = [];
  for (let tick = Math.max(0, now - period + 1); tick <= now; tick++) ticks.push(tick);
  return ticks;
}

/** Brute force: for every tick of the window, every restart decided at that tick. */
function modelCount(restarts: readonly number[], now: number, period: number): number {
  let count = 0;
  for (const tick of windowTicks(now, period)) for (const at of restarts) if (at === tick) count++;
  return count;
}

/** A tick, a period, and restart ticks at or before the tick, oldest first (as the engine keeps them). */
const windowCase = fc
  .record({ now: fc.integer({ min: 0, max: 60 }), period: fc.integer({ min: 1, max: 20 }), intensity: fc.integer({ min: 0, max: 8 }) })
  .chain((c) => fc.record({ now: fc.constant(c.now), period: fc.constant(c.period), intensity: fc.constant(c.intensity), restarts: fc.array(fc.integer({ min: 0, max: c.now }), { maxLength: 12 }).map((ticks) => ticks.sort((a, b) => a - b)) }));

describe('supervision policy: the restart-intensity window', () => {
  it('the restarts in the window are exactly those decided in the last period ticks, in their order', () => {
    fc.assert(
      fc.property(windowCase, ({ now, period, restarts }) => {
        const kept = restartsInWindow(restarts, now, period);
        expect(kept.length).toBe(modelCount(restarts, now, period));
        const window = new Set(windowTicks(now, period));
        expect(kept).toEqual(restarts.filter((at) => window.has(at)));
      }),
      { numRuns: 500 },
    );
  });

  it('addRestart keeps the restarts in the window and appends now, without changing its input', () => {
    fc.assert(
      fc.property(windowCase, ({ now, period, intensity, restarts }) => {
        const before = [...restarts];
        const counted = addRestart(restarts, now, { intensity, period });
        expect(counted.restarts).toEqual([...restartsInWindow(restarts, now, period), now]);
        expect(restarts).toEqual(before);
      }),
      { numRuns: 500 },
    );
  });

  it('a supervisor gives up iff more than intensity restarts fall in the window, counting this one', () => {
    fc.assert(
      fc.property(windowCase, ({ now, period, intensity, restarts }) => {
        expect(addRestart(restarts, now, { intensity, period }).giveUp).toBe(modelCount(restarts, now, period) + 1 > intensity);
      }),
      { numRuns: 500 },
    );
  });

  it('folding addRestart over a run gives up exactly when a count over the whole history says so', () => {
    // The engine keeps only what addRestart returns; forgetting old restarts must never change a verdict.
    const run = fc.record({
      period: fc.integer({ min: 1, max: 12 }),
      intensity: fc.integer({ min: 0, max: 6 }),
      gaps: fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 40 }),
    });
    fc.assert(
      fc.property(run, ({ period, intensity, gaps }) => {
        let kept: number[] = [];
        const history: number[] = [];
        let now = 0;
        for (const gap of gaps) {
          now += gap;
          history.push(now);
          const counted = addRestart(kept, now, { intensity, period });
          expect(counted.giveUp).toBe(modelCount(history, now, period) > intensity);
          expect(counted.restarts.length).toBe(modelCount(history, now, period));
          kept = counted.restarts;
        }
      }),
      { numRuns: 300 },
    );
  });
});

// ── the backoff ──────────────────────────────────────────────────────────────────────

/** A backoff as spec.ts accepts it: initial >= 1, max >= initial, factor >= 1. */
const backoffArb = fc
  .record({ initial: fc.integer({ min: 1, max: 50 }), extra: fc.integer({ min: 0, max: 500 }), factor: fc.oneof(fc.constantFrom(1, 1.5, 2, 3), fc.double({ min: 1, max: 4, noNaN: true })) })
  .map(({ initial, extra, factor }) => ({ initial, max: initial + extra, factor }));
const restartsArb = fc.integer({ min: 1, max: 64 });

describe('supervision policy: the backoff', () => {
  it('the first restart in the window waits exactly initial ticks', () => {
    fc.assert(fc.property(backoffArb, (backoff) => {
      expect(backoffDelay(backoff, 1)).toBe(backoff.initial);
    }), { numRuns: 300 });
  });

  it('the backoff never shrinks as restarts in the window grow', () => {
    fc.assert(
      fc.property(backoffArb, restartsArb, (backoff, n) => {
        expect(backoffDelay(backoff, n + 1)).toBeGreaterThanOrEqual(backoffDelay(backoff, n));
      }),
      { numRuns: 500 },
    );
  });

  it('the backoff is a whole number of ticks between initial and max', () => {
    fc.assert(
      fc.property(backoffArb, restartsArb, (backoff, n) => {
        const delay = backoffDelay(backoff, n);
        expect(Number.isInteger(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(backoff.initial);
        expect(delay).toBeLessThanOrEqual(backoff.max);
      }),
      { numRuns: 500 },
    );
  });

  it('with a whole factor the backoff multiplies by it each restart until it reaches max', () => {
    // Exact integer arithmetic: the model needs no rounding.
    const wholeBackoff = fc
      .record({ initial: fc.integer({ min: 1, max: 50 }), extra: fc.integer({ min: 0, max: 100_000 }), factor: fc.integer({ min: 1, max: 4 }) })
      .map(({ initial, extra, factor }) => ({ initial, max: initial + extra, factor }));
    fc.assert(
      fc.property(wholeBackoff, fc.integer({ min: 1, max: 30 }), (backoff, n) => {
        let delay = BigInt(backoff.initial);
        for (let k = 2; k <= n; k++) delay *= BigInt(backoff.factor);
        const expected = delay > BigInt(backoff.max) ? backoff.max : Number(delay);
        expect(backoffDelay(backoff, n)).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('a long enough run of restarts always reaches max when the factor grows', () => {
    fc.assert(
      fc.property(backoffArb.filter((b) => b.factor >= 1.5), (backoff) => {
        expect(backoffDelay(backoff, 64)).toBe(backoff.max);
      }),
      { numRuns: 300 },
    );
  });
});

// ── the restart groups ───────────────────────────────────────────────────────────────

interface TestChild {
  readonly name: string;
  readonly restart: RestartType;
}

/** Children in start order (distinct objects), and the index of the one that exited (never temporary: it is being restarted). */
const groupCase = fc
  .array(fc.constantFrom<RestartType>('permanent', 'transient', 'temporary'), { minLength: 1, maxLength: 8 })
  .chain((types) =>
    fc.record({
      children: fc.constant(types.map((restart, i): TestChild => ({ name: `c${i}`, restart }))),
      exited: fc.integer({ min: 0, max: types.length - 1 }),
    }),
  )
  .map(({ children, exited }) => ({ children: children.map((c, i) => (i === exited && c.restart === 'temporary' ? { ...c, restart: 'permanent' as const } : c)), exited }));
const strategyArb = fc.constantFrom<Strategy>('one_for_one', 'one_for_all', 'rest_for_one', 'simple_one_for_one');
const restartOf = (child: TestChild) => child.restart;

/** Which start positions a strategy's group covers, by index alone. */
function inGroup(strategy: Strategy, index: number, exited: number): boolean {
  if (strategy === 'one_for_all') return true;
  if (strategy === 'rest_for_one') return index >= exited;
  return index === exited;
}

describe('supervision policy: restart groups', () => {
  it('one_for_one and simple_one_for_one restart exactly the exited child and stop nobody', () => {
    fc.assert(
      fc.property(groupCase, fc.constantFrom<Strategy>('one_for_one', 'simple_one_for_one'), ({ children, exited }, strategy) => {
        const group = restartGroup(strategy, children, children[exited]!, restartOf);
        expect(group).toEqual({ stop: [], forget: [], restart: [children[exited]] });
      }),
      { numRuns: 300 },
    );
  });

  it('one_for_all stops everyone else and restarts everyone but temporary siblings', () => {
    fc.assert(
      fc.property(groupCase, ({ children, exited }) => {
        const group = restartGroup('one_for_all', children, children[exited]!, restartOf);
        expect(new Set([...group.stop, children[exited]])).toEqual(new Set(children));
        expect(group.restart).toEqual(children.filter((c, i) => i === exited || c.restart !== 'temporary'));
      }),
      { numRuns: 300 },
    );
  });

  it("rest_for_one's group is the suffix of the start order from the exited child", () => {
    fc.assert(
      fc.property(groupCase, ({ children, exited }) => {
        const group = restartGroup('rest_for_one', children, children[exited]!, restartOf);
        expect(new Set([...group.stop, children[exited]])).toEqual(new Set(children.slice(exited)));
        expect(group.restart).toEqual(children.slice(exited).filter((c, i) => i === 0 || c.restart !== 'temporary'));
      }),
      { numRuns: 300 },
    );
  });

  it('every strategy agrees with the index model: stop in reverse start order, restart in start order', () => {
    fc.assert(
      fc.property(strategyArb, groupCase, (strategy, { children, exited }) => {
        const group = restartGroup(strategy, children, children[exited]!, restartOf);
        const members = children.filter((_, i) => inGroup(strategy, i, exited));
        const stop = children.filter((_, i) => i !== exited && inGroup(strategy, i, exited)).reverse();
        expect(group.stop).toEqual(stop);
        expect(group.forget).toEqual(stop.filter((c) => c.restart === 'temporary'));
        expect(group.restart).toEqual(members.filter((c) => c === children[exited] || c.restart !== 'temporary'));
      }),
      { numRuns: 500 },
    );
  });

  it('the stop order is the reverse of the restart order, with the exited child in its place and the forgotten left out', () => {
    fc.assert(
      fc.property(strategyArb, groupCase, (strategy, { children, exited }) => {
        const group = restartGroup(strategy, children, children[exited]!, restartOf);
        const startOrder = [...group.stop].reverse();
        const at = startOrder.findIndex((c) => children.indexOf(c) > exited);
        startOrder.splice(at < 0 ? startOrder.length : at, 0, children[exited]!);
        expect(startOrder.filter((c) => !group.forget.includes(c))).toEqual(group.restart);
      }),
      { numRuns: 500 },
    );
  });

  it('each member of a group is restarted or forgotten, exactly once, and the exited child is always restarted', () => {
    fc.assert(
      fc.property(strategyArb, groupCase, (strategy, { children, exited }) => {
        const group = restartGroup(strategy, children, children[exited]!, restartOf);
        const outcomes = [...group.restart, ...group.forget];
        expect(new Set(outcomes).size).toBe(outcomes.length);
        expect(new Set(outcomes)).toEqual(new Set([...group.stop, children[exited]]));
        expect(group.restart).toContain(children[exited]);
        expect(group.stop).not.toContain(children[exited]);
      }),
      { numRuns: 500 },
    );
  });
});
