/**
 * Inference benchmarks: the inference actor (actors/inference.ts) against ONNX Runtime
 * called directly, side by side in one process run. Every answer is checked (errorCode
 * 'none', outputs of the model's shape, finite); a run that sees an error or a missing
 * answer throws, because a benchmark that measures errors measures the wrong thing.
 *
 * - benchInferBatched: `agents` JS actors each publish one policy request (obs [1, 16]) to
 *   `infer/policy` every tick; the inference actor batches a tick's requests into one run
 *   on its worker and answers at the next tick. Counted: answers received per second of
 *   wall time over a window of ticks after a warm-up. The same with Silero VAD (input
 *   [1, 512], sr, state kept by the actor) in benchVadBatched.
 * - benchInferDirect / benchVadDirect: the peer: the same requests (same observations, same
 *   order), one `InferenceSession.run` each, batch 1, on the main thread, with the runtime's
 *   pinned session options.
 * - benchActorOverhead: p50 tick of a system whose one agent asks every tick, minus p50 tick
 *   of the same system whose agent steps without asking, minus p50 of a direct batch-1 run.
 *   The two systems are stepped alternately so that load on the machine hits both alike.
 * - benchModelLoads: load times as the inference worker measures them (read, sha256,
 *   session create, warm-up run), the first load of the worker and then the median of
 *   unload/load rounds; beside them, InferenceSession.create plus a warm-up on the main thread.
 * - benchCacheThrash: agents that switch together between the two models every few ticks,
 *   with cacheBytes that hold only one of them: every switch evicts and reloads.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { policyActionCount, policyModelPath, policyObservationSize } from '../actors/models/policy.ts';
import { createRuntime, defineActor, defineSystem, type InferenceConfig, type Runtime } from '../src/index.ts';
import { decodeInferResponse, encodeInferRequest, tensor, tensorValues, type InferResponseValue } from '../src/tensor.ts';
import { Random } from '../src/prng.ts';
import { sessionOptionsDefault } from '../src/inference/models.ts';

export const sileroModelPath = fileURLToPath(new URL('../node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx', import.meta.url));
/** Silero v5 at 16 kHz takes 512-sample chunks and keeps a [2, batch, 128] state. */
const vadChunkSamples = 512;
const vadSampleRateHz = 16_000n;
const vadStateDims = [2, 1, 128] as const;
/** Distinct observations (or audio chunks) per agent, cycled tick by tick. */
const variantsPerAgent = 16;

const sessionOptions: ort.InferenceSession.SessionOptions = {
  executionProviders: ['cpu'],
  graphOptimizationLevel: sessionOptionsDefault.graphOptimizationLevel,
  executionMode: sessionOptionsDefault.executionMode,
  intraOpNumThreads: sessionOptionsDefault.intraOpNumThreads,
  interOpNumThreads: sessionOptionsDefault.interOpNumThreads,
  logSeverityLevel: 3,
};

function modelsConfig(extra: Partial<InferenceConfig> = {}): InferenceConfig {
  return {
    models: {
      policy: { file: policyModelPath },
      silero: { file: sileroModelPath, state: [{ input: 'state', output: 'stateN', dims: [...vadStateDims], batchAxis: 1 }] },
    },
    ...extra,
  };
}

// ── inputs, shared by the actor path and the direct path ───────────────────────────────

/** Observation `tick % variants` of `agent`: values in [-2, 2) from a seeded stream. */
function observations(agents: number): Float32Array[] {
  const random = new Random(0x0b5, 0, 0);
  return Array.from({ length: agents * variantsPerAgent }, () => Float32Array.from({ length: policyObservationSize }, () => random.next() * 4 - 2));
}

/** Audio chunk `tick % variants` of `agent`: a tone with noise, one per agent. */
function audioChunks(agents: number): Float32Array[] {
  const random = new Random(0xa0d10, 0, 0);
  const chunks: Float32Array[] = [];
  for (let agent = 0; agent < agents; agent++) {
    const hz = 120 + agent * 7;
    for (let variant = 0; variant < variantsPerAgent; variant++) {
      chunks.push(
        Float32Array.from({ length: vadChunkSamples }, (_, i) => {
          const t = (variant * vadChunkSamples + i) / 16_000;
          return 0.3 * Math.sin(2 * Math.PI * hz * t) + 0.05 * (random.next() * 2 - 1);
        }),
      );
    }
  }
  return chunks;
}

function inputAt(pool: readonly Float32Array[], agent: number, tick: number): Float32Array {
  return pool[agent * variantsPerAgent + (tick % variantsPerAgent)]!;
}

/** Throws unless every output is finite and `check` holds. */
function assertFinite(name: string, values: ArrayLike<number>): void {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) throw new Error(`bench: output '${name}' holds ${values[i]} at ${i}`);
}

function checkPolicyProbs(probs: ArrayLike<number>, rows: number): void {
  if (probs.length !== rows * policyActionCount) throw new Error(`bench: probs has ${probs.length} values, expected ${rows * policyActionCount}`);
  assertFinite('probs', probs);
}

// ── agents ──────────────────────────────────────────────────────────────────────────────

/** Answers seen by a system's agents. */
interface Tally {
  answered: number;
  errors: number;
  firstError: string;
}

function newTally(): Tally {
  return { answered: 0, errors: 0, firstError: '' };
}

function assertClean(tally: Tally, what: string): void {
  if (tally.errors > 0) throw new Error(`bench ${what}: ${tally.errors} error answers, first: ${tally.firstError}`);
}

/** What an agent asks at a tick: the topic and the request, or null to step without asking. */
type Ask = (agent: number, tick: number) => { topic: string; payload: Uint8Array } | null;

/** Agents that ask per `ask` every tick and check every answer with `check` (throws on a bad one). */
function askingSystem(name: string, agents: number, tally: Tally, ask: Ask, check: (response: InferResponseValue) => void) {
  const asker = defineActor({
    name: 'asker',
    init: (_ctx, args: { agent: number }) => args.agent,
    step: (agent, ctx) => {
      const request = ask(agent, ctx.tick);
      if (request === null) return;
      const sent = ctx.publish(request.topic, request.payload);
      if (!sent.ok) {
        tally.errors++;
        tally.firstError ||= `request refused: ${sent.reason}`;
      }
    },
    receive: (_agent, message) => {
      const response = decodeInferResponse(message.payload);
      if (response.errorCode !== 'none') {
        tally.errors++;
        tally.firstError ||= `${response.errorCode}: ${response.error}`;
        return;
      }
      check(response);
      tally.answered++;
    },
  });
  return defineSystem({
    name,
    setup(system) {
      for (let agent = 0; agent < agents; agent++) system.spawn(asker, { name: `a${agent}`, args: { agent } });
    },
  });
}

function policyAsk(pool: readonly Float32Array[]): Ask {
  return (agent, tick) => ({
    topic: 'infer/policy',
    payload: encodeInferRequest({ id: tick, inputs: [tensor('obs', inputAt(pool, agent, tick), [1, policyObservationSize])] }),
  });
}

function checkPolicyResponse(response: InferResponseValue): void {
  const probs = response.outputs.find((output) => output.name === 'probs');
  if (probs === undefined) throw new Error(`bench: a policy answer without 'probs'`);
  checkPolicyProbs(tensorValues(probs) as Float32Array, 1);
}

const sampleRate = BigInt64Array.of(vadSampleRateHz);

function vadAsk(pool: readonly Float32Array[]): Ask {
  return (agent, tick) => ({
    topic: 'infer/silero',
    payload: encodeInferRequest({
      id: tick,
      inputs: [tensor('input', inputAt(pool, agent, tick), [1, vadChunkSamples]), tensor('sr', sampleRate, [])],
    }),
  });
}

function checkVadResponse(response: InferResponseValue): void {
  const output = response.outputs.find((value) => value.name === 'output');
  if (output === undefined || output.dims.join() !== '1,1') throw new Error(`bench: a silero answer without 'output' [1, 1]`);
  assertFinite('output', tensorValues(output) as Float32Array);
}

// ── measuring ───────────────────────────────────────────────────────────────────────────

function percentile(samples: ArrayLike<number>, q: number): number {
  const sorted = Float64Array.from(samples).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function mean(samples: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i]!;
  return sum / samples.length;
}

interface BatchedResult {
  reqPerS: number;
  answered: number;
  ticks: number;
  ticksPerS: number;
  tickUsMean: number;
  tickUsP50: number;
  /** The worker's own run time of one batch (session.run), p50, µs. */
  workerRunUsP50: number;
  hitRate: number;
}

/** Steps `runtime` `ticks` times after `warmTicks`; answered requests per second in the window. */
async function measureBatched(runtime: Runtime, tally: Tally, agents: number, warmTicks: number, ticks: number, what: string): Promise<BatchedResult> {
  await runtime.start();
  await runtime.run(warmTicks);
  const actor = runtime.inferenceActor!;
  const answeredBefore = tally.answered;
  const runsBefore = actor.runMicros.length;
  const samples = new Float64Array(ticks);
  const started = performance.now();
  for (let i = 0; i < ticks; i++) {
    const tickStarted = performance.now();
    await runtime.step();
    samples[i] = (performance.now() - tickStarted) * 1000;
  }
  const elapsed = (performance.now() - started) / 1000;
  const answered = tally.answered - answeredBefore;
  assertClean(tally, what);
  // In steady state each tick answers the requests of the tick before it.
  if (answered !== agents * ticks) throw new Error(`bench ${what}: ${answered} answers in ${ticks} ticks, expected ${agents * ticks}`);
  const hitRate = runtime.snapshot().inference!.cache.hitRate;
  const workerRunUsP50 = percentile(actor.runMicros.slice(runsBefore), 0.5);
  await runtime.close();
  return { reqPerS: answered / elapsed, answered, ticks, ticksPerS: ticks / elapsed, tickUsMean: mean(samples), tickUsP50: percentile(samples, 0.5), workerRunUsP50, hitRate };
}

export async function benchInferBatched(opts: { agents: number; warmTicks: number; ticks: number; log: string }): Promise<BatchedResult> {
  const tally = newTally();
  const system = askingSystem('infer-batched', opts.agents, tally, policyAsk(observations(opts.agents)), checkPolicyResponse);
  const runtime = createRuntime(system, { seed: 1, log: opts.log, inference: modelsConfig({ preload: ['policy'] }) });
  return measureBatched(runtime, tally, opts.agents, opts.warmTicks, opts.ticks, 'policy batched');
}

export async function benchVadBatched(opts: { agents: number; warmTicks: number; ticks: number; log: string }): Promise<BatchedResult> {
  const tally = newTally();
  const system = askingSystem('vad-batched', opts.agents, tally, vadAsk(audioChunks(opts.agents)), checkVadResponse);
  const runtime = createRuntime(system, { seed: 1, log: opts.log, inference: modelsConfig({ preload: ['silero'] }) });
  return measureBatched(runtime, tally, opts.agents, opts.warmTicks, opts.ticks, 'silero batched');
}

interface DirectResult {
  reqPerS: number;
  requests: number;
  /** One session.run (tensor made, run, output read), p50, µs. */
  runUsP50: number;
}

async function policySession(): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(readFileSync(policyModelPath), sessionOptions);
}

/**
 * The peer: the requests of ticks [firstTick, firstTick + ticks) of the batched run, in its
 * order, one batch-1 session.run each on this thread.
 */
export async function benchInferDirect(opts: { agents: number; firstTick: number; ticks: number; warmRuns: number }): Promise<DirectResult> {
  const pool = observations(opts.agents);
  const session = await policySession();
  const runOnce = async (obs: Float32Array) => {
    const results = await session.run({ obs: new ort.Tensor('float32', obs, [1, policyObservationSize]) });
    checkPolicyProbs(results['probs']!.data as Float32Array, 1);
  };
  for (let i = 0; i < opts.warmRuns; i++) await runOnce(inputAt(pool, i % opts.agents, i));
  const samples = new Float64Array(opts.agents * opts.ticks);
  let at = 0;
  const started = performance.now();
  for (let tick = opts.firstTick; tick < opts.firstTick + opts.ticks; tick++) {
    for (let agent = 0; agent < opts.agents; agent++) {
      const runStarted = performance.now();
      await runOnce(inputAt(pool, agent, tick));
      samples[at++] = (performance.now() - runStarted) * 1000;
    }
  }
  const elapsed = (performance.now() - started) / 1000;
  await session.release();
  return { reqPerS: at / elapsed, requests: at, runUsP50: percentile(samples, 0.5) };
}

/** The peer for Silero: one run per request, each agent's state carried on this thread. */
export async function benchVadDirect(opts: { agents: number; firstTick: number; ticks: number; warmRuns: number }): Promise<DirectResult> {
  const pool = audioChunks(opts.agents);
  const session = await ort.InferenceSession.create(readFileSync(sileroModelPath), sessionOptions);
  const states = Array.from({ length: opts.agents }, () => new Float32Array(vadStateDims[0] * vadStateDims[2]));
  const sr = new ort.Tensor('int64', BigInt64Array.of(vadSampleRateHz), []);
  const runOnce = async (agent: number, tick: number) => {
    const results = await session.run({
      input: new ort.Tensor('float32', inputAt(pool, agent, tick), [1, vadChunkSamples]),
      state: new ort.Tensor('float32', states[agent]!, [...vadStateDims]),
      sr,
    });
    assertFinite('output', results['output']!.data as Float32Array);
    states[agent] = (results['stateN']!.data as Float32Array).slice();
  };
  for (let i = 0; i < opts.warmRuns; i++) await runOnce(i % opts.agents, i);
  states.forEach((state) => state.fill(0));
  const samples = new Float64Array(opts.agents * opts.ticks);
  let at = 0;
  const started = performance.now();
  for (let tick = opts.firstTick; tick < opts.firstTick + opts.ticks; tick++) {
    for (let agent = 0; agent < opts.agents; agent++) {
      const runStarted = performance.now();
      await runOnce(agent, tick);
      samples[at++] = (performance.now() - runStarted) * 1000;
    }
  }
  const elapsed = (performance.now() - started) / 1000;
  await session.release();
  return { reqPerS: at / elapsed, requests: at, runUsP50: percentile(samples, 0.5) };
}

export interface OverheadResult {
  overheadUsP50: number;
  /** p50 tick, one agent asking the policy every tick. */
  actorTickUsP50: number;
  /** p50 tick, the same agent stepping without asking. */
  baselineTickUsP50: number;
  /** p50 of one direct batch-1 session.run on this thread. */
  directRunUsP50: number;
  /** The worker's own session.run time of the actor path's batch-1 runs, p50. */
  workerRunUsP50: number;
}

export async function benchActorOverhead(opts: { ticks: number; warmTicks: number; log: string }): Promise<OverheadResult> {
  const pool = observations(1);
  const asking = newTally();
  const quiet = newTally();
  const ask = policyAsk(pool);
  const withAsk = createRuntime(askingSystem('infer-one', 1, asking, ask, checkPolicyResponse), {
    seed: 1,
    log: `${opts.log}.ask`,
    inference: modelsConfig({ preload: ['policy'] }),
  });
  const without = createRuntime(askingSystem('infer-one', 1, quiet, () => null, checkPolicyResponse), {
    seed: 1,
    log: `${opts.log}.quiet`,
    inference: modelsConfig({ preload: ['policy'] }),
  });
  await withAsk.start();
  await without.start();
  for (let i = 0; i < opts.warmTicks; i++) {
    await withAsk.step();
    await without.step();
  }
  const runsBefore = withAsk.inferenceActor!.runMicros.length;
  const answeredBefore = asking.answered;
  const actorSamples = new Float64Array(opts.ticks);
  const baselineSamples = new Float64Array(opts.ticks);
  // Alternate, so that what else the machine does lands on both systems alike.
  for (let i = 0; i < opts.ticks; i++) {
    let started = performance.now();
    await withAsk.step();
    actorSamples[i] = (performance.now() - started) * 1000;
    started = performance.now();
    await without.step();
    baselineSamples[i] = (performance.now() - started) * 1000;
  }
  assertClean(asking, 'actor overhead');
  assertClean(quiet, 'actor overhead baseline');
  if (asking.answered - answeredBefore !== opts.ticks) throw new Error(`bench actor overhead: ${asking.answered - answeredBefore} answers in ${opts.ticks} ticks`);
  if (quiet.answered !== 0) throw new Error('bench actor overhead: the baseline agent got answers it never asked for');
  const workerRunUsP50 = percentile(withAsk.inferenceActor!.runMicros.slice(runsBefore), 0.5);
  await withAsk.close();
  await without.close();
  const direct = await benchInferDirect({ agents: 1, firstTick: 0, ticks: opts.ticks, warmRuns: 200 });
  const actorTickUsP50 = percentile(actorSamples, 0.5);
  const baselineTickUsP50 = percentile(baselineSamples, 0.5);
  return {
    overheadUsP50: actorTickUsP50 - baselineTickUsP50 - direct.runUsP50,
    actorTickUsP50,
    baselineTickUsP50,
    directRunUsP50: direct.runUsP50,
    workerRunUsP50,
  };
}

export interface LoadResult {
  /** Worker-measured load (read, sha256, create, warm-up), median of rounds after the first, ms. */
  policyMs: number;
  sileroMs: number;
  /** The worker's first load of all (ONNX Runtime starts up in it), policy, ms. */
  policyFirstMs: number;
  /** InferenceSession.create plus one warm-up run on this thread, median, ms. */
  policyDirectMs: number;
  sileroDirectMs: number;
}

export async function benchModelLoads(opts: { rounds: number; log: string }): Promise<LoadResult> {
  const runtime = createRuntime(askingSystem('infer-loads', 0, newTally(), () => null, () => undefined), { seed: 1, log: opts.log, inference: modelsConfig() });
  await runtime.start();
  // A runtime with models that closes before its first tick throws (InferenceActor.stop
  // sends STOPPED after created → stopped): one tick first.
  await runtime.step();
  const loadOrThrow = async (name: string) => {
    const error = await runtime.models.load(name);
    if (error !== null) throw new Error(`bench: loading '${name}': ${error}`);
  };
  const policy: number[] = [];
  const silero: number[] = [];
  const micros = runtime.models.stats.loadMicros;
  for (let round = 0; round <= opts.rounds; round++) {
    await loadOrThrow('policy');
    policy.push(micros.at(-1)!);
    await loadOrThrow('silero');
    silero.push(micros.at(-1)!);
    await runtime.models.unload('policy');
    await runtime.models.unload('silero');
  }
  await runtime.close();
  const directLoad = async (path: string, feeds: () => Record<string, ort.Tensor>) => {
    const times: number[] = [];
    for (let round = 0; round < opts.rounds; round++) {
      const started = performance.now();
      const session = await ort.InferenceSession.create(readFileSync(path), sessionOptions);
      await session.run(feeds());
      times.push((performance.now() - started) * 1000);
      await session.release();
    }
    return percentile(times, 0.5);
  };
  const policyDirect = await directLoad(policyModelPath, () => ({ obs: new ort.Tensor('float32', new Float32Array(policyObservationSize), [1, policyObservationSize]) }));
  const sileroDirect = await directLoad(sileroModelPath, () => ({
    input: new ort.Tensor('float32', new Float32Array(vadChunkSamples), [1, vadChunkSamples]),
    state: new ort.Tensor('float32', new Float32Array(vadStateDims[0] * vadStateDims[2]), [...vadStateDims]),
    sr: new ort.Tensor('int64', BigInt64Array.of(vadSampleRateHz), []),
  }));
  return {
    policyMs: percentile(policy.slice(1), 0.5) / 1000,
    sileroMs: percentile(silero.slice(1), 0.5) / 1000,
    policyFirstMs: policy[0]! / 1000,
    policyDirectMs: policyDirect / 1000,
    sileroDirectMs: sileroDirect / 1000,
  };
}

export interface ThrashResult {
  hitRate: number;
  hits: number;
  misses: number;
  evictions: number;
  loads: number;
  answered: number;
  ticksPerS: number;
}

/**
 * `agents` agents all ask the policy for `switchEveryTicks` ticks, then Silero for as many,
 * and so on; cacheBytes holds Silero and not both, so each switch evicts the other model.
 * The expected hit rate is 1 - 1/switchEveryTicks (one miss per switch, the cache counts
 * one lookup per model per tick).
 */
export async function benchCacheThrash(opts: { agents: number; ticks: number; switchEveryTicks: number; log: string }): Promise<ThrashResult> {
  const cacheBytes = statSync(sileroModelPath).size + 1000;
  if (statSync(policyModelPath).size + statSync(sileroModelPath).size <= cacheBytes) throw new Error('bench: cacheBytes holds both models; no thrash');
  const tally = newTally();
  const policy = policyAsk(observations(opts.agents));
  const vad = vadAsk(audioChunks(opts.agents));
  const ask: Ask = (agent, tick) => (Math.floor(tick / opts.switchEveryTicks) % 2 === 0 ? policy(agent, tick) : vad(agent, tick));
  const check = (response: InferResponseValue) => (response.model === 'policy' ? checkPolicyResponse(response) : checkVadResponse(response));
  const runtime = createRuntime(askingSystem('infer-thrash', opts.agents, tally, ask, check), { seed: 1, log: opts.log, inference: modelsConfig({ cacheBytes }) });
  await runtime.start();
  const started = performance.now();
  await runtime.run(opts.ticks);
  const elapsed = (performance.now() - started) / 1000;
  assertClean(tally, 'cache thrash');
  // Requests of the last tick are answered after it; the first tick's actors only start.
  if (tally.answered < opts.agents * (opts.ticks - 3)) throw new Error(`bench cache thrash: only ${tally.answered} answers in ${opts.ticks} ticks`);
  const { hits, misses, evictions, loads, hitRate } = runtime.snapshot().inference!.cache;
  await runtime.close();
  if (evictions === 0) throw new Error('bench cache thrash: no evictions');
  return { hitRate, hits, misses, evictions, loads, answered: tally.answered, ticksPerS: opts.ticks / elapsed };
}

export interface InferenceBenchResult {
  batched: BatchedResult;
  direct: DirectResult;
  vadBatched: BatchedResult;
  vadDirect: DirectResult;
  overhead: OverheadResult;
  loads: LoadResult;
  thrash: ThrashResult;
}

/** Every inference benchmark, peers side by side; `quick` keeps it to a few seconds. */
export async function benchInference(opts: { quick: boolean; progress?: (text: string) => void }): Promise<InferenceBenchResult> {
  const scratch = mkdtempSync(join(tmpdir(), 'lockstep-bench-infer-'));
  const progress = opts.progress ?? (() => undefined);
  try {
    const agents = 64;
    const warmTicks = quick(opts, 50, 200);
    const ticks = quick(opts, 300, 2_000);
    progress('inference: 64 agents ask the policy every tick, batched by the inference actor…');
    const batched = await benchInferBatched({ agents, warmTicks, ticks, log: join(scratch, 'batched.log') });
    // The same observations: each agent cycles through its 16, so any window of whole
    // cycles asks the same ones; the direct run takes them in the batched run's order.
    progress('inference: the same requests, one direct session.run each…');
    const direct = await benchInferDirect({ agents, firstTick: warmTicks, ticks, warmRuns: 500 });
    const vadTicks = quick(opts, 30, 300);
    progress('inference: Silero VAD, batched and direct…');
    const vadBatched = await benchVadBatched({ agents, warmTicks: 20, ticks: vadTicks, log: join(scratch, 'vad.log') });
    const vadDirect = await benchVadDirect({ agents, firstTick: 20, ticks: vadTicks, warmRuns: 64 });
    progress('inference: one agent, actor path against a direct run…');
    const overhead = await benchActorOverhead({ ticks: quick(opts, 1_000, 5_000), warmTicks: 300, log: join(scratch, 'one.log') });
    progress('inference: model loads…');
    const loads = await benchModelLoads({ rounds: quick(opts, 3, 7), log: join(scratch, 'loads.log') });
    progress('inference: cache thrash, two models, room for one…');
    const thrash = await benchCacheThrash({ agents: 4, ticks: quick(opts, 24, 200), switchEveryTicks: 4, log: join(scratch, 'thrash.log') });
    return { batched, direct, vadBatched, vadDirect, overhead, loads, thrash };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function quick(opts: { quick: boolean }, short: number, long: number): number {
  return opts.quick ? short : long;
}

/** The bench's keys (see bench/run.ts for what each is). */
export function inferenceKeys(result: InferenceBenchResult) {
  const { batched, direct, vadBatched, vadDirect, overhead, loads, thrash } = result;
  const us = (value: number) => Number(value.toFixed(1));
  const ms = (value: number) => Number(value.toFixed(2));
  return {
    infer_batched_req_per_s: Math.round(batched.reqPerS),
    infer_direct_req_per_s: Math.round(direct.reqPerS),
    infer_batched_vs_direct: Number((batched.reqPerS / direct.reqPerS).toFixed(2)),
    infer_batched_ticks_per_s: Math.round(batched.ticksPerS),
    infer_batched_tick_us_mean: us(batched.tickUsMean),
    infer_batched_tick_us_p50: us(batched.tickUsP50),
    infer_batched_worker_run_us_p50: us(batched.workerRunUsP50),
    infer_vad_batched_req_per_s: Math.round(vadBatched.reqPerS),
    infer_vad_direct_req_per_s: Math.round(vadDirect.reqPerS),
    infer_vad_batched_vs_direct: Number((vadBatched.reqPerS / vadDirect.reqPerS).toFixed(2)),
    infer_vad_batched_tick_us_p50: us(vadBatched.tickUsP50),
    infer_vad_worker_run_us_p50: us(vadBatched.workerRunUsP50),
    infer_actor_overhead_us_p50: us(overhead.overheadUsP50),
    infer_actor_tick_us_p50: us(overhead.actorTickUsP50),
    infer_baseline_tick_us_p50: us(overhead.baselineTickUsP50),
    infer_direct_run_us_p50: us(overhead.directRunUsP50),
    infer_actor_worker_run_us_p50: us(overhead.workerRunUsP50),
    infer_load_ms_policy: ms(loads.policyMs),
    infer_load_ms_silero: ms(loads.sileroMs),
    infer_load_ms_policy_first: ms(loads.policyFirstMs),
    infer_direct_load_ms_policy: ms(loads.policyDirectMs),
    infer_direct_load_ms_silero: ms(loads.sileroDirectMs),
    infer_cache_hit_rate_steady: Number(batched.hitRate.toFixed(3)),
    infer_cache_hit_rate_thrash: Number(thrash.hitRate.toFixed(3)),
    infer_cache_thrash_evictions: thrash.evictions,
    infer_cache_thrash_ticks_per_s: Math.round(thrash.ticksPerS),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await benchInference({ quick: process.argv.includes('--quick'), progress: (text) => process.stderr.write(`  ${(performance.now() / 1000).toFixed(1)} s ${text}\n`) });
  console.log(JSON.stringify(inferenceKeys(result), null, 1));
}
