import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { meterModule } from '../src/wasm/metering.ts';
import {
  arm,
  counterOf,
  countingEntryFuel,
  countingIterationFuel,
  countingWat,
  depthOf,
  fuelOf,
  recurseFrameFuel,
  recurseWat,
  watToWasm,
} from '../test/fixtures/metering-wat.ts';
import { callDepthMaxDefault } from '../src/limits.ts';
import { classifyTrap } from '../src/wasm/traps.ts';

/** What one metered call did, in terms a law can predict. */
interface Outcome {
  kind: 'completed' | 'fuel_exhausted' | 'call_depth_exceeded' | 'memory_limit' | 'trap';
  iterations: number;
  fuelLeft: bigint;
}

function runOnce(module: WebAssembly.Module, exportName: string, arg: number, fuel: bigint, callDepthMax: number): Outcome {
  const instance = new WebAssembly.Instance(module, {});
  arm(instance, fuel);
  try {
    (instance.exports[exportName] as (n: number) => number)(arg);
    expect(depthOf(instance)).toBe(0);
    return { kind: 'completed', iterations: counterOf(instance), fuelLeft: fuelOf(instance) };
  } catch (error) {
    return { kind: classifyTrap(instance.exports, error, { callDepthMax: callDepthMax }).kind, iterations: counterOf(instance), fuelLeft: fuelOf(instance) };
  }
}

/**
 * The cost model's prediction for run(n) with fuel F (see countingWat): entry 3, then 12 per
 * iteration, each charged before the iteration runs.
 */
function predictCounting(n: number, fuel: bigint): Outcome {
  const entry = BigInt(countingEntryFuel);
  const perIteration = BigInt(countingIterationFuel);
  const total = entry + perIteration * BigInt(n);
  if (fuel >= total) return { kind: 'completed', iterations: n, fuelLeft: fuel - total };
  if (fuel < entry) return { kind: 'fuel_exhausted', iterations: 0, fuelLeft: fuel - entry };
  const iterations = (fuel - entry) / perIteration; // floor: the next header cannot pay
  return { kind: 'fuel_exhausted', iterations: Number(iterations), fuelLeft: fuel - entry - perIteration * (iterations + 1n) };
}

describe('fuel metering laws', () => {
  let counting: WebAssembly.Module;
  let recursion: WebAssembly.Module;
  const recursionDepthMax = 64;

  beforeAll(async () => {
    counting = new WebAssembly.Module(await meterModule(watToWasm(countingWat)));
    recursion = new WebAssembly.Module(await meterModule(watToWasm(recurseWat), { callDepthMax: recursionDepthMax }));
  });

  it('fuel runs out at the same instruction every run: remaining fuel is budget - cost, or the trap comes after exactly floor((budget - entry) / iteration) iterations', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 400 }), fc.bigInt({ min: 0n, max: 6_000n }), (loops, fuel) => {
        const predicted = predictCounting(loops, fuel);
        const first = runOnce(counting, 'run', loops, fuel, callDepthMaxDefault);
        const second = runOnce(counting, 'run', loops, fuel, callDepthMaxDefault);
        expect(first).toEqual(predicted);
        expect(second).toEqual(first);
      }),
      { numRuns: 300 },
    );
  });

  it('fuel spent is monotone in the budget: more fuel never completes fewer iterations', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 400 }), fc.bigInt({ min: 0n, max: 6_000n }), fc.bigInt({ min: 1n, max: 500n }), (loops, fuel, extra) => {
        const less = runOnce(counting, 'run', loops, fuel, callDepthMaxDefault);
        const more = runOnce(counting, 'run', loops, fuel + extra, callDepthMaxDefault);
        expect(more.iterations).toBeGreaterThanOrEqual(less.iterations);
      }),
      { numRuns: 150 },
    );
  });

  it('recursion ends at the depth limit or where fuel runs out, whichever comes first, the same every run', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: BigInt(recurseFrameFuel * (recursionDepthMax + 10)) }), (fuel) => {
        const outcome = runOnce(recursion, 'recurse', 0, fuel, recursionDepthMax);
        // Frame k (1-based) pays recurseFrameFuel on entry, then checks the depth.
        const framesPaid = fuel / BigInt(recurseFrameFuel);
        if (framesPaid > BigInt(recursionDepthMax)) {
          expect(outcome).toEqual({
            kind: 'call_depth_exceeded',
            iterations: recursionDepthMax,
            fuelLeft: fuel - BigInt(recurseFrameFuel * (recursionDepthMax + 1)),
          });
        } else {
          expect(outcome).toEqual({
            kind: 'fuel_exhausted',
            iterations: Number(framesPaid),
            fuelLeft: fuel - BigInt(recurseFrameFuel) * (framesPaid + 1n),
          });
        }
        expect(runOnce(recursion, 'recurse', 0, fuel, recursionDepthMax)).toEqual(outcome);
      }),
      { numRuns: 150 },
    );
  });
});
