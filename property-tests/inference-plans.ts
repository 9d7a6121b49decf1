/**
 * Plans of actors that ask models, for the inference properties (inference.test.ts,
 * executors.test.ts): each asker sends one request per tick to the policy network or to
 * Silero VAD, good ones mixed with bad ones (NaN or infinity, wrong dims, garbage bytes).
 * A plan is plain JSON; `requestFor` turns it into the payload of a tick.
 */
import fc from 'fast-check';
import { encodeInferRequest, tensor } from '../src/tensor.ts';

export interface AskerPlan {
  model: 'policy' | 'vad';
  /** Per tick: 0 good, 1 NaN, 2 wrong dims, 3 garbage bytes. */
  kinds: number[];
  phase: number;
}

export function requestFor(plan: AskerPlan, tick: number): Uint8Array {
  const kind = plan.kinds[tick % plan.kinds.length]!;
  if (kind === 3) return new Uint8Array([tick, 1, 2, 3, 4, 5, 6, 7, 8]);
  if (plan.model === 'policy') {
    const obs = new Float32Array(kind === 2 ? 15 : 16).map((_, i) => Math.sin((tick + plan.phase) * 0.3 + i));
    if (kind === 1) obs[3] = Number.NaN;
    return encodeInferRequest({ id: tick, inputs: [tensor('obs', obs, [1, obs.length])] });
  }
  const samples = new Float32Array(kind === 2 ? 100 : 512).map((_, i) => 0.3 * Math.sin((i + tick * 512 + plan.phase) * 0.05));
  if (kind === 1) samples[0] = Number.POSITIVE_INFINITY;
  return encodeInferRequest({ id: tick, inputs: [tensor('input', samples, [1, samples.length]), tensor('sr', new BigInt64Array([16000n]), [])] });
}

export const askerPlanArb: fc.Arbitrary<AskerPlan> = fc.record({
  model: fc.constantFrom('policy' as const, 'vad' as const),
  kinds: fc.array(fc.constantFrom(0, 0, 0, 1, 2, 3), { minLength: 1, maxLength: 5 }),
  phase: fc.nat({ max: 1000 }),
});
