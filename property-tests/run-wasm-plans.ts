/**
 * Child-process half of `WASM and JS systems give identical logs ... across separate
 * processes`: reads WASM system plans as JSON on stdin, runs each on the worker count
 * given as the first argument, prints one SHA-256 of the log bytes per line.
 *
 * Usage: tsx property-tests/run-wasm-plans.ts <workers> [metered-cache-directory] < plans.json
 *
 * The optional folder holds metered modules the parent wrote; with it this process skips
 * binaryen (which tsx takes ~13 s to load here) and runs the very bytes the parent ran.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadWasmDefinitions, runWasmPlan, type WasmSystemPlan } from './wasm-systems.ts';

/** A worker count beyond this is a mistake on the command line, not a test. */
const workers_max = 16;

const [workersArgument, meteredCacheDirectory] = process.argv.slice(2);
const workers = Number(workersArgument);
if (!(Number.isInteger(workers) && workers >= 1 && workers <= workers_max)) {
  process.stderr.write(`usage: run-wasm-plans.ts <workers 1..${workers_max}> [metered-cache-directory] < plans.json; got workers '${workersArgument}'\n`);
  process.exit(2);
}

const plans = JSON.parse(readFileSync(0, 'utf8')) as WasmSystemPlan[];
const definitions = await loadWasmDefinitions(meteredCacheDirectory === undefined ? {} : { meteredCacheDirectory });
for (const plan of plans) {
  const { bytes } = await runWasmPlan(plan, { workers, definitions });
  process.stdout.write(`${createHash('sha256').update(bytes).digest('hex')}\n`);
}
