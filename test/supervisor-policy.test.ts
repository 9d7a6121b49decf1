/**
 * Edge cases of the supervision policy (supervisors/policy.ts), by example: the window's
 * edge, intensity 0, period 1, backoff rounding, the groups of a four-child supervisor, and
 * the contracts' throws. The laws are in property-tests/supervision-policy.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { addRestart, backoffDelay, forgetsWhenDown, inRestartWindow, restartGroup, restartsInWindow, shouldRestart } from '../supervisors/policy.ts';
import type { RestartType } from '../supervisors/spec.ts';

describe('policy: the intensity window', () => {
  it('a restart counts while now - at < period: period 5 at tick 10 keeps ticks 6..10, drops 5', () => {
    expect(inRestartWindow(6, 10, 5)).toBe(true);
    expect(inRestartWindow(5, 10, 5)).toBe(false);
    expect(restartsInWindow([1, 5, 6, 9, 10], 10, 5)).toEqual([6, 9, 10]);
  });

  it('intensity 0: the first restart gives up', () => {
    expect(addRestart([], 7, { intensity: 0, period: 5 })).toEqual({ restarts: [7], giveUp: true });
  });

  it('period 1: only restarts of the same tick count', () => {
    expect(addRestart([4], 5, { intensity: 1, period: 1 })).toEqual({ restarts: [5], giveUp: false });
    expect(addRestart([5], 5, { intensity: 1, period: 1 })).toEqual({ restarts: [5, 5], giveUp: true });
  });

  it("OTP's defaults (intensity 1, period 5): a second restart within 5 ticks gives up, one 5 ticks later does not", () => {
    const first = addRestart([], 10, { intensity: 1, period: 5 });
    expect(first.giveUp).toBe(false);
    expect(addRestart(first.restarts, 14, { intensity: 1, period: 5 }).giveUp).toBe(true);
    expect(addRestart(first.restarts, 15, { intensity: 1, period: 5 })).toEqual({ restarts: [15], giveUp: false });
  });
});

describe('policy: the backoff', () => {
  it('doubles from initial and stops at max', () => {
    const backoff = { initial: 2, max: 5, factor: 2 };
    expect([1, 2, 3, 4].map((n) => backoffDelay(backoff, n))).toEqual([2, 4, 5, 5]);
  });

  it('initial 1 with factor 1 is no backoff at all', () => {
    expect([1, 2, 10].map((n) => backoffDelay({ initial: 1, max: 1, factor: 1 }, n))).toEqual([1, 1, 1]);
  });

  it('rounds a fractional growth to whole ticks (half up)', () => {
    // 3, 4.5, 6.75, 10.125
    expect([1, 2, 3, 4].map((n) => backoffDelay({ initial: 3, max: 100, factor: 1.5 }, n))).toEqual([3, 5, 7, 10]);
  });

  it('refuses a count that does not include the restart being decided', () => {
    expect(() => backoffDelay({ initial: 1, max: 4, factor: 2 }, 0)).toThrow(RangeError);
    expect(() => backoffDelay({ initial: 1, max: 4, factor: 2 }, 1.5)).toThrow(/integer >= 1/);
  });
});

describe('policy: restart types', () => {
  it('permanent always, transient after a crash, temporary never', () => {
    const table = (['permanent', 'transient', 'temporary'] as RestartType[]).map((type) => [shouldRestart(type, true), shouldRestart(type, false)]);
    expect(table).toEqual([
      [true, true],
      [true, false],
      [false, false],
    ]);
  });

  it('a child left down is forgotten when temporary or under simple_one_for_one, kept otherwise', () => {
    expect(forgetsWhenDown('one_for_one', 'temporary')).toBe(true);
    expect(forgetsWhenDown('simple_one_for_one', 'transient')).toBe(true);
    expect(forgetsWhenDown('simple_one_for_one', 'permanent')).toBe(true);
    expect(forgetsWhenDown('one_for_all', 'transient')).toBe(false);
    expect(forgetsWhenDown('rest_for_one', 'permanent')).toBe(false);
  });
});

describe('policy: restart groups', () => {
  const [a, b, c, d] = (['permanent', 'permanent', 'temporary', 'transient'] as RestartType[]).map((restart, i) => ({ name: 'abcd'[i]!, restart }));
  const children = [a!, b!, c!, d!];
  const restartOf = (child: { restart: RestartType }) => child.restart;

  it('b of a, b, c (temporary), d exits: what each strategy stops, forgets and restarts', () => {
    expect(restartGroup('one_for_one', children, b!, restartOf)).toEqual({ stop: [], forget: [], restart: [b] });
    expect(restartGroup('one_for_all', children, b!, restartOf)).toEqual({ stop: [d, c, a], forget: [c], restart: [a, b, d] });
    expect(restartGroup('rest_for_one', children, b!, restartOf)).toEqual({ stop: [d, c], forget: [c], restart: [b, d] });
  });

  it('rest_for_one on the last child, and one_for_all with one child, restart only that child', () => {
    expect(restartGroup('rest_for_one', children, d!, restartOf)).toEqual({ stop: [], forget: [], restart: [d] });
    expect(restartGroup('one_for_all', [a!], a!, restartOf)).toEqual({ stop: [], forget: [], restart: [a] });
  });

  it('refuses an exited child that is not among the children', () => {
    expect(() => restartGroup('one_for_one', [a!, b!], d!, restartOf)).toThrow(RangeError);
  });
});
