/**
 * `npm start`: runs the market demo on embedded defaults, writes its replay log, replays
 * it, and prints a summary. No service, no network.
 */
import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createRuntime, replay } from 'lockstep';
import system, { runtimeOptions } from './system.ts';

const ticks = Number(process.env.DEMO_TICKS ?? system.ticks ?? 2000);
const seed = Number(process.env.DEMO_SEED ?? 42);
mkdirSync('.lockstep', { recursive: true });
const logPath = '.lockstep/demo.log';

const runtime = createRuntime(system, { ...runtimeOptions, seed, log: logPath, level: 'full' });
const started = performance.now();
const summary = await runtime.run(ticks);
const elapsedMs = performance.now() - started;
const snapshot = runtime.snapshot();
const finalDigest = await runtime.close();

const replayStarted = performance.now();
const report = await replay(logPath, system, runtimeOptions);
const replayMs = performance.now() - replayStarted;

const crashed = snapshot.actors.filter((a) => a.lastCrash !== null);
const wasmAgents = snapshot.actors.filter((a) => a.name.startsWith('risk-model') || a.name === 'sieve' || a.name === 'pilot');
const desk = runtime.actor('desk').state<{ digests: number; sieves: number; lastPrimes: number; pilotDecisions: number }>();
const inference = snapshot.inference!;
const policy = inference.models[0]!;
const rows: [string, string][] = [
  ['system', `${system.name}: ${snapshot.counters.actors} actors, ${snapshot.counters.topics} topics, seed ${seed}`],
  ['ticks', String(summary.ticks)],
  ['messages delivered', `${summary.counters.delivered.toLocaleString('en-US')} (${summary.counters.mailboxDeliveries.toLocaleString('en-US')} into mailboxes)`],
  ['messages published', summary.counters.published.toLocaleString('en-US')],
  ['inputs injected', summary.counters.injected.toLocaleString('en-US')],
  ['dropped (logged)', `${summary.counters.dropped} (refused by backpressure: ${summary.counters.refused})`],
  ['throughput', `${Math.round(summary.counters.mailboxDeliveries / (elapsedMs / 1000)).toLocaleString('en-US')} msgs/s into mailboxes over ${elapsedMs.toFixed(0)} ms (JSON payloads, log level full, ${availableParallelism()} cores)`],
  ['WASM agents', `${wasmAgents.length} on worker threads: ${desk?.digests ?? 0} risk-model digests, ${desk?.sieves ?? 0} sieve runs (last: ${desk?.lastPrimes ?? 0} primes)`],
  [
    'inference',
    `${inference.requests.toLocaleString('en-US')} requests (40 traders + the WASM pilot, every tick) in ${inference.runs.toLocaleString('en-US')} batched ONNX Runtime runs, ` +
      `${inference.errors} errors; model '${policy.name}' sha256 ${policy.sha256.slice(0, 12)}… on ${policy.provider}; pilot decisions: ${desk?.pilotDecisions ?? 0}`,
  ],
  ['crashed actors', crashed.length === 0 ? 'none' : crashed.map((a) => `${a.name}: ${a.lastCrash?.message}`).join('; ')],
  ['log', logPath],
  ['final digest', finalDigest],
  ['replay verified', `${report.bitExact ? 'bit for bit' : 'by content'}, ${report.ticks} ticks in ${replayMs.toFixed(0)} ms${report.chainHex === finalDigest ? ', same final digest' : ''}`],
];
const width = Math.max(...rows.map(([key]) => key.length));
console.log('lockstep demo');
for (const [key, value] of rows) console.log(`  ${key.padEnd(width)}  ${value}`);
if (report.chainHex !== finalDigest) {
  console.error('replay ended on a different digest than the run');
  process.exit(1);
}
