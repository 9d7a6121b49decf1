// What a user writes to property-test the determinism of their own system.
import { describe, expect, it } from 'vitest';
import { assertDeterministic, DeterminismError } from 'lockstep/testing';
import { pipeline, pipelineWithClock } from './systems.ts';

describe('my system is deterministic', () => {
  it('gives identical logs for the same seed and inputs', async () => {
    await assertDeterministic(pipeline, { ticks: 30, numRuns: 25, inputs: { topics: ['numbers'] } });
  });

  it('catches an actor that reads Date.now()', async () => {
    let caught: unknown;
    try {
      await assertDeterministic(pipelineWithClock, { ticks: 30, numRuns: 25, inputs: { topics: ['numbers'] } });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(DeterminismError);
    const error = caught as DeterminismError;
    expect(error.divergence.actor).toBe('stamper');
    expect(error.message).toMatch(/system 'pipeline-with-clock' is not deterministic: two runs with seed \d+/);
    expect(error.message).toMatch(/first differ at tick \d+, actor 'stamper'/);
    // Shrunk: the clock makes runs differ with no inputs at all.
    expect(error.inputs).toEqual([]);
  });
});
