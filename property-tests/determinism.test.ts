import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReplayDivergenceError, replay } from '../src/index.ts';
import { readLog } from '../src/log/index.ts';
import { actorDigestsOf as digestsOf } from '../src/log/types.ts';
import { actorName, buildSystem, runPlan, systemPlans } from './systems.ts';

describe('determinism of random actor systems', () => {
  it('same seed and inputs give byte-identical logs', async () => {
    await fc.assert(
      fc.asyncProperty(systemPlans(), async (plan) => {
        const first = await runPlan(plan);
        const second = await runPlan(plan);
        expect(Buffer.compare(first.bytes, second.bytes)).toBe(0);
      }),
      { numRuns: 60 },
    );
  });

  it('same seed and inputs give byte-identical logs across separate processes', async () => {
    const plans = fc.sample(systemPlans(), { numRuns: 25, seed: 20261127 });
    const here: string[] = [];
    for (const plan of plans) here.push(createHash('sha256').update((await runPlan(plan)).bytes).digest('hex'));
    const script = fileURLToPath(new URL('./run-plans.ts', import.meta.url));
    const tsx = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url));
    const there = execFileSync(tsx, [script], { input: JSON.stringify(plans), encoding: 'utf8' }).trim().split('\n');
    expect(there).toEqual(here);
  });

  it('a different seed gives a different log when actors use randomness', async () => {
    await fc.assert(
      fc.asyncProperty(systemPlans(), async (plan) => {
        fc.pre(plan.actors.some((a) => a.emitChance > 0 && a.emitChance < 255));
        fc.pre(plan.ticks >= 10);
        const other = { ...plan, seed: (plan.seed + 1) >>> 0 };
        expect((await runPlan(plan)).chainHex).not.toBe((await runPlan(other)).chainHex);
      }),
      { numRuns: 20 },
    );
  });
});

describe('ordering', () => {
  it('every subscriber of a topic sees the same order, and so does every rerun', async () => {
    await fc.assert(
      fc.asyncProperty(systemPlans(), async (plan) => {
        const run = await runPlan(plan);
        const rerun = await runPlan(plan);
        for (const [topic, names] of run.subscribers) {
          const lists = names.map((name) => run.seen.get(name)!.filter((entry) => entry.startsWith(`${topic}:`)));
          // A subscriber that was scheduled less may have seen fewer, never others or in another order.
          const longest = lists.reduce((a, b) => (b.length > a.length ? b : a), [] as string[]);
          for (const list of lists) expect(list).toEqual(longest.slice(0, list.length));
        }
        expect([...rerun.seen]).toEqual([...run.seen]);
      }),
      { numRuns: 60 },
    );
  });
});

describe('replay', () => {
  it('replay of any recorded run verifies', async () => {
    await fc.assert(
      fc.asyncProperty(systemPlans(), fc.constantFrom('digest' as const, 'full' as const), async (plan, level) => {
        const run = await runPlan(plan, { level });
        const report = await replay(run.bytes, buildSystem(plan));
        expect(report.bitExact).toBe(true);
        expect(report.chainHex).toBe(run.chainHex);
      }),
      { numRuns: 40 },
    );
  });

  it('a mutated actor makes replay report the first divergent tick and that actor', async () => {
    const planWithSender = systemPlans({ ticksMax: 25 }).chain((plan) =>
      fc.record({
        plan: fc.constant(plan),
        actor: fc.integer({ min: 1, max: plan.actors.length }),
        fromTick: fc.integer({ min: 1, max: plan.ticks }),
      }),
    );
    let diverged = 0;
    await fc.assert(
      fc.asyncProperty(planWithSender, async ({ plan, actor, fromTick }) => {
        const run = await runPlan(plan, { level: 'full' });
        const log = readLog(run.bytes);
        // The first tick at or after the mutation in which the mutated actor sent something.
        const firstSend = log.ticks.find(
          (record) => record.tick >= fromTick && record.tick <= plan.ticks && digestsOf(record.actorDigests).some((d) => d.actor === actor && d.sent > 0),
        );
        const mutated = buildSystem(plan, { actor, fromTick });
        if (firstSend === undefined) {
          expect((await replay(run.bytes, mutated)).bitExact).toBe(true);
          return;
        }
        diverged++;
        try {
          await replay(run.bytes, mutated);
          expect.unreachable('replay of a mutated system verified');
        } catch (error) {
          expect(error).toBeInstanceOf(ReplayDivergenceError);
          const { divergence } = error as ReplayDivergenceError;
          expect(divergence.tick).toBe(firstSend.tick);
          expect(divergence.actor).toBe(actorName(actor));
          expect(divergence.message).toMatch(new RegExp(`from '${actorName(actor)}'`));
        }
      }),
      { numRuns: 60 },
    );
    expect(diverged).toBeGreaterThan(10);
  });
});

