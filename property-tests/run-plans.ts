/**
 * Child-process half of `same seed and inputs give byte-identical logs across processes`:
 * reads plans as JSON on stdin, runs each, prints one SHA-256 of the log bytes per line.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { runPlan, type SystemPlan } from './systems.ts';

const plans = JSON.parse(readFileSync(0, 'utf8')) as SystemPlan[];
for (const plan of plans) {
  const { bytes } = await runPlan(plan);
  process.stdout.write(`${createHash('sha256').update(bytes).digest('hex')}\n`);
}
