/**
 * Golden replay logs (test/fixtures/golden): logs recorded once, with the code of lockstep
 * commit e32bf2c, from frozen copies of four systems (the market demo, the kv service under
 * a fault plan, a WASM-heavy supervision tree, the inference actor with the policy network
 * and Silero VAD). Each must still replay bit for bit, end on its recorded chain, and a
 * fresh run of the same recipe must write exactly the same bytes: a change of the log
 * format, of the canonical order, of supervision or of anything else a run records shows
 * up here. The logs are the fixed reference: never re-record them to make this pass.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { LogCorruptError, replay } from 'lockstep';
import { readLog } from 'lockstep/log';
import { devKey, goldenLogPath, recipeNamed, recipes, recordGolden, type GoldenRecipe } from './fixtures/golden/recipes.ts';

function goldenBytes(recipe: GoldenRecipe): Uint8Array {
  return new Uint8Array(gunzipSync(readFileSync(goldenLogPath(recipe.name))));
}

/** Where two logs first differ: the byte offset and the record holding it (for the failure message). */
function firstDifference(golden: Uint8Array, fresh: Uint8Array): string {
  const length = Math.min(golden.length, fresh.length);
  let at = 0;
  while (at < length && golden[at] === fresh[at]) at++;
  if (at === length && golden.length === fresh.length) return 'none';
  const offsets = readLog(golden).recordOffsets;
  let record = 0;
  while (record + 1 < offsets.length && offsets[record + 1]! <= at) record++;
  const what = record === 0 ? 'the header' : record === offsets.length - 1 && readLog(golden).end !== null ? 'the end record' : `the record of tick ${record}`;
  return `byte ${at} (in ${what}); golden ${golden.length} bytes, fresh ${fresh.length} bytes`;
}

/** A copy of `bytes` with one bit flipped in the middle of the body of its middle tick record. */
function corruptCopy(bytes: Uint8Array): { bytes: Uint8Array; frameOffset: number } {
  const offsets = readLog(bytes).recordOffsets;
  const middle = Math.floor(offsets.length / 2);
  const frameOffset = offsets[middle]!;
  const at = Math.floor((frameOffset + offsets[middle + 1]!) / 2);
  const copy = bytes.slice();
  copy[at] = copy[at]! ^ 0x10;
  return { bytes: copy, frameOffset };
}

describe('golden replay logs', () => {
  for (const recipe of recipes) {
    it(`${recipe.name}: replays bit for bit${recipe.replayWorkers.length > 1 ? ` with ${recipe.replayWorkers.join(' and ')} workers` : ''}, and a fresh run writes the same bytes`, async () => {
      const golden = goldenBytes(recipe);
      const { system } = await recipe.load();
      const log = readLog(golden);
      expect(log.header.systemName).toBe(system.name);
      expect(log.header.seed).toBe(recipe.seed);
      expect(log.header.level).toBe(recipe.level);
      expect(log.ticks).toHaveLength(recipe.ticks + 1); // the ticks, then the shutdown record
      expect(log.end).toEqual({ ticks: recipe.ticks, reason: 'shutdown' });
      expect(log.tornTail).toBeNull();

      for (const workers of recipe.replayWorkers) {
        const report = await replay(golden, system, { trustedKeys: [devKey], workers });
        expect(report.notes).toEqual([]);
        expect(report.bitExact).toBe(true);
        expect(report.tornTail).toBeNull();
        expect(report.ticks).toBe(recipe.ticks);
        expect(report.records).toBe(recipe.ticks + 1);
        expect(report.chainHex).toBe(log.chainHex);
      }

      const fresh = await recordGolden(recipe);
      expect(fresh.chainHex).toBe(log.chainHex);
      expect(firstDifference(golden, fresh.bytes), 'a fresh run of the recipe differs from the golden log at').toBe('none');

      // The checks above can fail: one flipped bit in a copy of the log is refused.
      const corrupt = corruptCopy(golden);
      expect(firstDifference(golden, corrupt.bytes)).not.toBe('none');
      const failure = await replay(corrupt.bytes, system, { trustedKeys: [devKey], workers: recipe.workers }).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(LogCorruptError);
      expect((failure as LogCorruptError).offset).toBe(corrupt.frameOffset);
    });
  }

  it('a run that differs in anything (here, the seed) writes different bytes: the byte comparison can fail', async () => {
    const recipe = recipeNamed('service');
    const golden = goldenBytes(recipe);
    const other = await recordGolden({ ...recipe, seed: recipe.seed + 1 });
    expect(firstDifference(golden, other.bytes)).not.toBe('none');
    expect(other.chainHex).not.toBe(readLog(golden).chainHex);
  });
});
