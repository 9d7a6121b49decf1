/**
 * `npm run bench`: lockstep against its targets and its peers, all in one run on one
 * machine. `npm run bench -- --json` prints one JSON object instead of the table.
 *
 * What each number is:
 * - routed_msgs_per_s: a ring of 64 JS actors with 16 tokens each; every actor forwards
 *   each 16-byte token it receives to the next actor's inbox. Counted: deliveries to actors
 *   per second of wall time, including the canonical sort, the mailboxes, the digests and
 *   the replay log (level digest, written to a file).
 * - tick_overhead_us_per_50_agents_p50/p99: wall time of one tick of 50 actors that each
 *   receive one message and send one (a ring with one token each), log included.
 * - xstate_send_per_s: the same ring pattern with xstate v5 actors sending to each other.
 * - postmessage_per_s: a worker posting a 64-byte Uint8Array per message, one way.
 * - sab_ring_per_s: lockstep's SharedArrayBuffer ring, 64-byte records, batched, one way.
 * - wasm_step_overhead_us_p50: a tick with one trivial WASM agent minus the same tick
 *   without it: dispatch to its worker and return, excluding the agent's own work.
 * - wasm_routed_v1_msgs_per_s: the same ring with ABI v1 agents (16-byte message headers),
 *   to show what the v2 Envelope messages cost; routed_msgs_per_s_workers0: the v2 ring
 *   with workers: 0 (every agent on the orchestrator's thread).
 * - wasm_routed_msgs_per_s: a ring of 16 WASM agents (ABI v2) alternating between 2 workers, each
 *   forwarding every token to the next agent; deliveries per second (log level digest).
 * - metering_overhead_ratio: a CPU-bound sieve, metered time / unmetered time.
 * - piscina_task_per_s: the peer: one piscina task per message, 2 workers.
 * - restart_ticks: ticks from a child's `running -> crashed` record to its next
 *   `initializing -> running` record in the replay log, the most over five crashes under
 *   one_for_one supervisors (a JS step that throws, a fault-plan crash of a JS actor, and of
 *   a signed WASM counter agent: crash, exhaustFuel, killWorker). See bench/supervision.ts.
 * - restart_us_p50: wall time of the tick(s) in which a supervisor restarts a crashed WASM
 *   agent (crashActor; 8 agents on 2 workers) until it is running; beside it, in the same
 *   run, a tick with no restart (restart_baseline_tick_us_p50).
 * - worker_replace_ms_p50: `await killWorker(w)` until every agent that was on w runs again,
 *   with a warm spare worker (the default); worker_replace_no_spare_ms_p50 the same with
 *   spareWorkers 0; worker_start_ms_p50 Node's own `new Worker` (no tsx) to first message.
 * - infer_batched_req_per_s: 64 JS agents each publish a policy request (obs [1, 16]) to
 *   `infer/policy` every tick; the inference actor runs each tick's requests as one batch on
 *   its worker. Counted: answers received (all checked: errorCode 'none') per second of wall
 *   time over a window after warm-up; beside it ticks/s, mean and p50 tick, the worker's own
 *   run time of a batch. infer_direct_req_per_s: the peer, the same observations, one
 *   onnxruntime-node `session.run` each, batch 1, on the main thread, same pinned options.
 *   infer_vad_*: the same pair for Silero VAD v5 (state kept per agent). See bench/inference.ts.
 * - infer_actor_overhead_us_p50: one agent asking every tick: p50 tick (infer_actor_tick_us_p50)
 *   minus p50 tick of the same system whose agent does not ask (infer_baseline_tick_us_p50),
 *   stepped alternately, minus p50 of a direct batch-1 run (infer_direct_run_us_p50).
 * - infer_load_ms_policy/silero: load as the inference worker times it (read, sha256, session,
 *   warm-up), median of unload/load rounds; _first: the worker's first load; infer_direct_load_*:
 *   InferenceSession.create plus one run on the main thread.
 * - ask_rtt_us_p50/p99: one caller asking a JS actor through a host (`tickMs: 0`,
 *   durability 'none'), one ask at a time: host.askJson to its resolution. asks_per_s: 64
 *   concurrent callers asking back to back (durability 'none'); asks_per_s_durable: the same
 *   with durability 'tick' on a file log (each answer waits for its tick's fsync);
 *   map_calls_per_s: the peer, the same callers against an async function over a Map;
 *   fsync_per_s: write 64 bytes + fsync in a loop on the same disk. See bench/host.ts.
 * - infer_cache_hit_rate_steady: the batched run's model cache hit rate; _thrash: 4 agents
 *   switching together between the two models every 4 ticks, cacheBytes room for one (1 - 1/4
 *   expected), with its evictions.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createRuntime, defineActor, defineSystem, type LogLevel } from '../src/index.ts';
import { benchAskRtt, benchAsks, benchFsync, benchMapPeer } from './host.ts';
import { benchInference, inferenceKeys } from './inference.ts';
import { benchMetering } from './metering.ts';
import { benchPiscina } from './piscina-peer.ts';
import { benchPostMessage, benchSabRing } from './ring.ts';
import { benchRestartTicks, benchWasmRestart, benchWorkerReplace, benchWorkerStart } from './supervision.ts';
import { benchWasmRouted, benchWasmStep } from './wasm.ts';
import { benchXstate } from './xstate-peer.ts';

const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
const scratch = mkdtempSync(join(tmpdir(), 'lockstep-bench-'));

function progress(text: string): void {
  if (!json) process.stderr.write(`  ${text}\n`);
}

/** A ring of `actors` actors; each forwards every token it receives to the next one. */
function ringSystem(actors: number, tokensPerActor: number, payloadBytes: number) {
  const forwarder = defineActor({
    name: 'forwarder',
    init: (ctx, args: { next: number }) => {
      for (let i = 0; i < tokensPerActor; i++) ctx.send(args.next, new Uint8Array(payloadBytes).fill(i & 0xff));
      return args.next;
    },
    receive: (next, message, ctx) => {
      ctx.send(next, message.payload);
      return next;
    },
  });
  return defineSystem({
    name: `ring-${actors}x${tokensPerActor}`,
    setup(system) {
      // Actor ids are 1..actors in spawn order, so the next of id i is i % actors + 1.
      for (let i = 1; i <= actors; i++) system.spawn(forwarder, { name: `f${i}`, args: { next: (i % actors) + 1 } });
    },
  });
}

async function benchRouted(options: { actors: number; tokensPerActor: number; deliveries: number; level: LogLevel }): Promise<{
  msgsPerS: number;
  deliveries: number;
  ticks: number;
}> {
  const system = ringSystem(options.actors, options.tokensPerActor, 16);
  const logPath = join(scratch, `routed-${options.level}.log`);
  const runtime = createRuntime(system, { seed: 1, log: logPath, level: options.level, mailboxCapacity: options.tokensPerActor * 2 });
  await runtime.step(); // init: tokens are published, none delivered yet
  const perTick = options.actors * options.tokensPerActor;
  const ticks = Math.ceil(options.deliveries / perTick);
  const started = performance.now();
  for (let i = 0; i < ticks; i++) await runtime.step();
  const elapsed = performance.now() - started;
  const delivered = runtime.snapshot().counters.delivered;
  await runtime.close();
  return { msgsPerS: delivered / (elapsed / 1000), deliveries: delivered, ticks };
}

async function benchTickOverhead(options: { agents: number; ticks: number }): Promise<{ p50: number; p99: number }> {
  const system = ringSystem(options.agents, 1, 16);
  const runtime = createRuntime(system, { seed: 1, log: join(scratch, 'tick.log'), level: 'digest' });
  await runtime.run(100); // warm-up: let V8 optimise the paths a long run takes
  const samples = new Float64Array(options.ticks);
  for (let i = 0; i < options.ticks; i++) {
    const started = performance.now();
    await runtime.step();
    samples[i] = (performance.now() - started) * 1000;
  }
  await runtime.close();
  samples.sort();
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!;
  return { p50: at(0.5), p99: at(0.99) };
}

function median<T>(runs: T[], key: (run: T) => number): T {
  return [...runs].sort((a, b) => key(a) - key(b))[Math.floor(runs.length / 2)]!;
}

async function main(): Promise<void> {
  const repeats = quick ? 1 : 5;
  const deliveries = quick ? 500_000 : 2_000_000;
  if (!json) process.stderr.write(`lockstep bench: ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown cpu'}), node ${process.version}\n`);

  progress('routed messages (lockstep, level digest)…');
  // The first run warms V8 up; the median of the rest is reported.
  await benchRouted({ actors: 64, tokensPerActor: 16, deliveries: 200_000, level: 'digest' });
  const routedRuns: Awaited<ReturnType<typeof benchRouted>>[] = [];
  for (let i = 0; i < repeats; i++) routedRuns.push(await benchRouted({ actors: 64, tokensPerActor: 16, deliveries, level: 'digest' }));
  const routed = median(routedRuns, (r) => r.msgsPerS);
  progress('routed messages (lockstep, level full)…');
  const routedFull = await benchRouted({ actors: 64, tokensPerActor: 16, deliveries: deliveries / 2, level: 'full' });

  progress('tick overhead, 50 agents…');
  const tick = await benchTickOverhead({ agents: 50, ticks: quick ? 2_000 : 20_000 });

  progress('xstate v5 actors, same ring…');
  const xstateRuns: { msgsPerS: number }[] = [];
  for (let i = 0; i < repeats; i++) xstateRuns.push(await benchXstate({ actors: 64, tokensPerActor: 16, deliveries: quick ? 100_000 : 400_000 }));
  const xstate = median(xstateRuns, (r) => r.msgsPerS);

  progress('worker postMessage, 64 B…');
  const post = await benchPostMessage({ messages: quick ? 100_000 : 500_000, payloadBytes: 64 });
  progress('SharedArrayBuffer ring, 64 B, batched…');
  const ringRuns: { msgsPerS: number }[] = [];
  for (let i = 0; i < repeats; i++) ringRuns.push(await benchSabRing({ records: quick ? 500_000 : 2_000_000, payloadBytes: 64 }));
  const ring = median(ringRuns, (r) => r.msgsPerS);

  progress('WASM agent step overhead…');
  const wasmStepRuns: { overheadUsP50: number }[] = [];
  for (let i = 0; i < repeats; i++) wasmStepRuns.push(await benchWasmStep({ ticks: quick ? 1_000 : 5_000 }));
  const wasmStep = median(wasmStepRuns, (r) => r.overheadUsP50);
  progress('WASM agents routing between workers…');
  const wasmRoutedRuns: { msgsPerS: number }[] = [];
  for (let i = 0; i < repeats; i++) wasmRoutedRuns.push(await benchWasmRouted({ deliveries: quick ? 200_000 : 1_000_000, workers: 2 }));
  const wasmRouted = median(wasmRoutedRuns, (r) => r.msgsPerS);
  progress('WASM agents routing, ABI v1 (16-byte header) for comparison…');
  const wasmRoutedV1Runs: { msgsPerS: number }[] = [];
  for (let i = 0; i < repeats; i++) wasmRoutedV1Runs.push(await benchWasmRouted({ deliveries: quick ? 200_000 : 1_000_000, workers: 2, abi: 1 }));
  const wasmRoutedV1 = median(wasmRoutedV1Runs, (r) => r.msgsPerS);
  progress('WASM agents routing in one thread (workers: 0)…');
  const wasmRoutedWorkers0Runs: { msgsPerS: number }[] = [];
  for (let i = 0; i < repeats; i++) wasmRoutedWorkers0Runs.push(await benchWasmRouted({ deliveries: quick ? 200_000 : 1_000_000, workers: 0 }));
  const wasmRoutedWorkers0 = median(wasmRoutedWorkers0Runs, (r) => r.msgsPerS);
  progress('metering overhead…');
  const metering = await benchMetering();
  progress('piscina, one task per message…');
  const piscina = await benchPiscina({ messages: quick ? 20_000 : 100_000, workers: 2 });

  progress('supervision: ticks from crash to running (JS and WASM children)…');
  const restartTicks = await benchRestartTicks();
  progress('supervision: WASM agent restart wall time…');
  const wasmRestart = await benchWasmRestart({ agents: 8, restarts: quick ? 20 : 50, warmMs: quick ? 750 : 1_500 });
  progress('supervision: killed worker replaced, warm spare…');
  // Idle before each kill so the spare started after the previous replacement has loaded
  // (about 0.4 s under tsx on this machine); see bench/supervision.ts.
  const replace = await benchWorkerReplace({ kills: quick ? 4 : 10, agents: 8, warmMs: quick ? 750 : 1_500 });
  progress('supervision: killed worker replaced, no spare…');
  const replaceCold = await benchWorkerReplace({ kills: quick ? 2 : 4, agents: 8, spareWorkers: 0, warmMs: 200 });
  const workerStart = await benchWorkerStart({ starts: quick ? 5 : 10 });
  progress('host: ask round trip, asks/s with 64 callers, fsync rate…');
  const askRtt = await benchAskRtt({ asks: quick ? 2_000 : 10_000 });
  const asks = await benchAsks({ callers: 64, calls: quick ? 300 : 1_500, durability: 'none', scratch });
  const asksDurable = await benchAsks({ callers: 64, calls: quick ? 100 : 500, durability: 'tick', scratch });
  const mapPeer = await benchMapPeer({ callers: 64, calls: quick ? 2_000 : 10_000 });
  const fsyncRate = benchFsync({ syncs: quick ? 200 : 1_000, scratch });
  const inference = inferenceKeys(await benchInference({ quick, progress }));

  const result = {
    routed_msgs_per_s: Math.round(routed.msgsPerS),
    routed_full_log_msgs_per_s: Math.round(routedFull.msgsPerS),
    tick_overhead_us_per_50_agents_p50: Number(tick.p50.toFixed(1)),
    tick_overhead_us_per_50_agents_p99: Number(tick.p99.toFixed(1)),
    xstate_send_per_s: Math.round(xstate.msgsPerS),
    postmessage_per_s: Math.round(post.msgsPerS),
    sab_ring_per_s: Math.round(ring.msgsPerS),
    wasm_step_overhead_us_p50: Number(wasmStep.overheadUsP50.toFixed(1)),
    wasm_routed_msgs_per_s: Math.round(wasmRouted.msgsPerS),
    wasm_routed_v1_msgs_per_s: Math.round(wasmRoutedV1.msgsPerS),
    routed_msgs_per_s_workers0: Math.round(wasmRoutedWorkers0.msgsPerS),
    metering_overhead_ratio: Number(metering.ratio.toFixed(2)),
    piscina_task_per_s: Math.round(piscina.tasksPerS),
    restart_ticks: restartTicks.maxTicks,
    restart_us_p50: Number(wasmRestart.restartUsP50.toFixed(1)),
    restart_baseline_tick_us_p50: Number(wasmRestart.baselineUsP50.toFixed(1)),
    worker_replace_ms_p50: Number(replace.msP50.toFixed(1)),
    worker_replace_no_spare_ms_p50: Number(replaceCold.msP50.toFixed(1)),
    worker_kill_ms_p50: Number(replace.killMsP50.toFixed(1)),
    worker_start_ms_p50: Number(workerStart.msP50.toFixed(1)),
    ask_rtt_us_p50: Number(askRtt.p50.toFixed(1)),
    ask_rtt_us_p99: Number(askRtt.p99.toFixed(1)),
    asks_per_s: Math.round(asks.asksPerS),
    asks_per_s_durable: Math.round(asksDurable.asksPerS),
    asks_durable_ticks_per_s: Math.round(asksDurable.ticksPerS),
    map_calls_per_s: Math.round(mapPeer.callsPerS),
    fsync_per_s: Math.round(fsyncRate.fsyncPerS),
    ...inference,
    cores: availableParallelism(),
  };
  rmSync(scratch, { recursive: true, force: true });
  if (json) {
    console.log(JSON.stringify(result));
    return;
  }
  const rows: [string, string, string][] = [
    ['routed msgs/s, JS actors (log: digest)', fmt(result.routed_msgs_per_s), `target ≥ 1,000,000 and ≥ 5× xstate (${(result.routed_msgs_per_s / result.xstate_send_per_s).toFixed(1)}×)`],
    ['routed msgs/s, JS actors (log: full)', fmt(result.routed_full_log_msgs_per_s), 'every envelope logged'],
    ['xstate v5 send/s, same ring', fmt(result.xstate_send_per_s), 'peer'],
    ['tick overhead, 50 agents, p50 (µs)', String(result.tick_overhead_us_per_50_agents_p50), 'target ≤ 100 (design floor 10,000)'],
    ['tick overhead, 50 agents, p99 (µs)', String(result.tick_overhead_us_per_50_agents_p99), ''],
    ['SAB ring msgs/s, 64 B, batched', fmt(result.sab_ring_per_s), 'worker → main, one way'],
    ['worker postMessage msgs/s, 64 B', fmt(result.postmessage_per_s), 'peer, one way'],
    ['WASM step overhead, p50 (µs)', String(result.wasm_step_overhead_us_p50), 'target ≤ 20 (design floor: a step under 5,000)'],
    ['WASM routed msgs/s, 2 workers', fmt(result.wasm_routed_msgs_per_s), `ABI v2 (Envelope messages); ≥ 10× piscina (${(result.wasm_routed_msgs_per_s / result.piscina_task_per_s).toFixed(1)}×)`],
    ['WASM routed msgs/s, ABI v1, 2 workers', fmt(result.wasm_routed_v1_msgs_per_s), `16-byte headers; v2 costs ${(100 * (1 - result.wasm_routed_msgs_per_s / result.wasm_routed_v1_msgs_per_s)).toFixed(0)}%`],
    ['WASM routed msgs/s, workers: 0', fmt(result.routed_msgs_per_s_workers0), 'the same ring in one thread (simulation mode)'],
    ['piscina tasks/s, one per message', fmt(result.piscina_task_per_s), 'peer, 2 workers'],
    ['metering overhead (metered / unmetered)', result.metering_overhead_ratio.toFixed(2), 'target ≤ 1.5, CPU-bound sieve'],
    ['restart ticks, crash → running (max)', String(result.restart_ticks), 'target 1; JS and WASM children, one_for_one'],
    ['WASM agent restart tick, p50 (µs)', String(result.restart_us_p50), `target ≤ 5,000; 8 agents, 2 workers`],
    ['tick without restart, same run, p50 (µs)', String(result.restart_baseline_tick_us_p50), 'baseline for the row above'],
    ['worker replaced, agents running, p50 (ms)', String(result.worker_replace_ms_p50), `target ≤ 50; warm spare; kill + exit ${result.worker_kill_ms_p50} ms`],
    ['worker replaced, no spare, p50 (ms)', String(result.worker_replace_no_spare_ms_p50), 'reference: spareWorkers 0 (thread + tsx start)'],
    ['node new Worker to first message (ms)', String(result.worker_start_ms_p50), 'reference: bare thread start, no tsx'],
    ['host ask round trip, p50 / p99 (µs)', `${result.ask_rtt_us_p50} / ${result.ask_rtt_us_p99}`, "target p50 ≤ 200; tickMs 0, durability 'none'"],
    ['host asks/s, 64 callers', fmt(result.asks_per_s), "target ≥ 50,000; durability 'none'"],
    ["host asks/s, 64 callers, durability 'tick'", fmt(result.asks_per_s_durable), `every answer fsynced; ${fmt(result.asks_durable_ticks_per_s)} ticks/s`],
    ['async function over a Map, calls/s, 64 callers', fmt(result.map_calls_per_s), 'peer: no actors, no log'],
    ['fsync/s, 64-byte writes', fmt(result.fsync_per_s), 'what the disk allows'],
    ['inference req/s, 64 agents, batched (policy)', fmt(result.infer_batched_req_per_s), `target ≥ 5× direct (${result.infer_batched_vs_direct}×); ${fmt(result.infer_batched_ticks_per_s)} ticks/s, tick p50 ${result.infer_batched_tick_us_p50} µs`],
    ['inference req/s, direct session.run, batch 1', fmt(result.infer_direct_req_per_s), 'peer, main thread, same observations'],
    ['Silero VAD req/s, 64 agents, batched', fmt(result.infer_vad_batched_req_per_s), `${result.infer_vad_batched_vs_direct}× direct; worker run p50 ${result.infer_vad_worker_run_us_p50} µs`],
    ['Silero VAD req/s, direct session.run', fmt(result.infer_vad_direct_req_per_s), 'peer, state carried per agent'],
    ['inference actor overhead, batch 1, p50 (µs)', String(result.infer_actor_overhead_us_p50), `target ≤ 50; tick ${result.infer_actor_tick_us_p50} − no-ask tick ${result.infer_baseline_tick_us_p50} − direct run ${result.infer_direct_run_us_p50}`],
    ['model load, policy / silero (ms)', `${result.infer_load_ms_policy} / ${result.infer_load_ms_silero}`, `worker-timed; first load ${result.infer_load_ms_policy_first}; direct ${result.infer_direct_load_ms_policy} / ${result.infer_direct_load_ms_silero}`],
    ['model cache hit rate, steady / thrash', `${result.infer_cache_hit_rate_steady} / ${result.infer_cache_hit_rate_thrash}`, `thrash: room for one of two models, ${result.infer_cache_thrash_evictions} evictions`],
  ];
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c]!.length), ['metric', 'value', 'note'][c]!.length));
  const line = (cells: string[]) => `| ${cells.map((cell, c) => (c === 1 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join(' | ')} |`;
  console.log(`lockstep bench — ${result.cores} cores, node ${process.version}, ${deliveries.toLocaleString('en-US')} deliveries per routed run`);
  console.log(line(['metric', 'value', 'note']));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows) console.log(line(row));
}

function fmt(value: number): string {
  return value.toLocaleString('en-US');
}

await main();
