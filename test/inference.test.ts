/**
 * The inference actor against real ONNX Runtime: answers equal direct `InferenceSession.run`
 * results bit for bit, a tick's requests run as one batch, answers arrive at the next tick,
 * bad input gets a clear error response and the runtime goes on, stateful models keep one
 * state per requester (Silero VAD on a real speech clip), and replay checks CPU answers and
 * substitutes answers logged whole.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, ReplayDivergenceError, createRuntime, defineSystem, replay, supervisor, type InferenceConfig, type Runtime, type SystemDefinition } from '../src/index.ts';
import { readLog } from '../src/log/index.ts';
import { encodeInferRequest, tensor, tensorValues, type TensorValue } from '../src/tensor.ts';
import { digestHex } from '../src/hash.ts';
import { lowNoise, readWav16k, silence } from './fixtures/audio/wav.ts';
import { askerWith, bitsOf, directSession, observation, policyPath, sileroPath, sileroSpec, speechClipPath, type AskerArgs, type AskerState } from './fixtures/inference.ts';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-inference-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function system(name: string, inference: InferenceConfig, askers: Record<string, AskerArgs>): SystemDefinition {
  return defineSystem({
    name,
    inference,
    setup(builder) {
      for (const [askerName, args] of Object.entries(askers)) builder.spawn(askerWith(args), { name: askerName });
    },
  });
}

function answersOf(runtime: Runtime, name: string): AskerState['answers'] {
  return runtime.actor(name).state<AskerState>()!.answers;
}

const policyOnly: InferenceConfig = { models: { policy: policyPath } };

describe('the inference actor on the policy network', () => {
  it('answers each requester at the next tick, bit-identical to direct session.run, one run per tick', async () => {
    const names = Array.from({ length: 8 }, (_, i) => `agent-${i}`);
    const runtime = createRuntime(system('policy-8', policyOnly, Object.fromEntries(names.map((name) => [name, {}]))));
    await runtime.run(12);
    const inference = runtime.snapshot().inference!;
    // Requests published in tick t arrive at t+1 and are answered at t+2: ticks 1..10 are answered.
    expect(inference.requests).toBe(8 * 11);
    expect(inference.runs).toBe(11);
    expect(inference.errors).toBe(0);
    const direct = await directSession(policyPath);
    for (const name of names) {
      const answers = answersOf(runtime, name);
      expect(answers.map((answer) => answer.response.id)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
      for (const answer of answers) {
        expect(answer.tick).toBe(answer.response.id + 2);
        expect(answer.response.errorCode).toBe('none');
        expect(answer.response.version).toBe(inference.models[0]!.sha256);
        const probs = answer.response.outputs.find((output) => output.name === 'probs')!;
        expect(probs.dims).toEqual([1, 4]);
        const self = runtime.actorId(name);
        const expected = await direct.run({ obs: new ort.Tensor('float32', observation(answer.response.id, self), [1, 16]) });
        expect(bitsOf(probs.data)).toEqual(bitsOf(expected.probs!.data as Float32Array));
      }
    }
    await direct.release();
    await runtime.close();
  });

  it('writes the model versions to the header and every answer to the tick records', async () => {
    const runtime = createRuntime(system('policy-log', policyOnly, { a: {}, b: {} }));
    await runtime.run(4);
    await runtime.close();
    const log = readLog(runtime.logBytes());
    const sha = (await import('node:crypto')).createHash('sha256').update(readFileSync(policyPath)).digest('hex');
    expect(log.header.models).toEqual([{ name: 'policy', sha256: sha, bytes: statSync(policyPath).size }]);
    expect(log.header.gpu).toBe(false);
    expect(JSON.parse(log.header.inferenceJson)).toMatchObject({ provider: 'cpu', logOutputs: 'digest' });
    const records = log.ticks.flatMap((record) => record.inferences.map((inference) => ({ tick: record.tick, ...inference })));
    // Asked in tick t, taken in and answered (the record) in t+1, received in t+2.
    expect(records.map((record) => [record.tick, runtime.actorName(record.requester), record.requestId])).toEqual([
      [2, 'a', 1],
      [2, 'b', 1],
      [3, 'a', 2],
      [3, 'b', 2],
      [4, 'a', 3],
      [4, 'b', 3],
    ]);
    for (const record of records) {
      expect(record.provider).toBe('cpu');
      expect(record.response).toBeNull();
    }
  });

  it('keeps answers a full mailbox refused and delivers them, in order, once there is room', async () => {
    const runtime = createRuntime(
      defineSystem({
        name: 'backpressure',
        inference: policyOnly,
        setup(builder) {
          const requests = (tick: number, self: number) =>
            [0, 1, 2].map((k) => encodeInferRequest({ id: tick * 10 + k, inputs: [tensor('obs', observation(tick, self), [1, 16])] }));
          builder.spawn(askerWith({ requests, until: 3 }), { name: 'greedy', mailboxCapacity: 2 });
        },
      }),
    );
    await runtime.run(12);
    const ids = answersOf(runtime, 'greedy').map((answer) => answer.response.id);
    expect(ids).toEqual([10, 11, 12, 20, 21, 22, 30, 31, 32]);
    expect(runtime.snapshot().counters.dropped).toBe(0);
    await runtime.close();
  });
});

describe('bad input gets an error response naming the model, the input and the problem', () => {
  const good = (tick: number, self: number) => encodeInferRequest({ id: 1, inputs: [tensor('obs', observation(tick, self), [1, 16])] });
  const cases: [string, string, () => Uint8Array, string, RegExp][] = [
    ['not a FlatBuffer', 'infer/policy', () => new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 200, 201]), 'bad_request', /not a valid|outside|FlatBuffer/],
    ['data shorter than its dims', 'infer/policy', () => encodeInferRequest({ id: 2, inputs: [{ name: 'obs', dtype: 'float32', dims: [1, 16], data: new Uint8Array(60) }] }), 'bad_request', /tensor 'obs': its data holds 60 bytes, but dims \[1, 16\] of float32 need 64/],
    ['wrong dtype', 'infer/policy', () => encodeInferRequest({ id: 3, inputs: [tensor('obs', new Int32Array(16), [1, 16])] }), 'bad_input', /model 'policy'.*input 'obs' is int32, but the model takes float32 \[\?, 16\]/],
    ['wrong shape', 'infer/policy', () => encodeInferRequest({ id: 4, inputs: [tensor('obs', new Float32Array(15), [1, 15])] }), 'bad_input', /input 'obs' has dims \[1, 15\], but the model takes \[\?, 16\]/],
    ['NaN', 'infer/policy', () => encodeInferRequest({ id: 5, inputs: [tensor('obs', new Float32Array(16).fill(Number.NaN), [1, 16])] }), 'bad_input', /model 'policy'.*input 'obs' holds NaN at element 0; send finite numbers/],
    ['a missing input', 'infer/policy', () => encodeInferRequest({ id: 6, inputs: [] }), 'bad_input', /input 'obs' \(float32 \[\?, 16\]\) is missing/],
    ['an unknown input', 'infer/policy', () => encodeInferRequest({ id: 7, inputs: [tensor('obs', new Float32Array(16), [1, 16]), tensor('extra', new Float32Array(1))] }), 'bad_input', /input 'extra' is not an input of the model; it takes 'obs'/],
    ['an unknown model', 'infer', () => encodeInferRequest({ id: 8, model: 'nosuch', inputs: [] }), 'unknown_model', /no model named 'nosuch' is registered; registered: policy/],
    ['no model on the shared topic', 'infer', () => encodeInferRequest({ id: 9, inputs: [] }), 'bad_request', /must name its model/],
    ['a model other than its topic', 'infer/policy', () => encodeInferRequest({ id: 10, model: 'vad', inputs: [] }), 'bad_request', /names model 'vad' but was published to 'infer\/policy'/],
  ];
  for (const [what, topic, payload, code, message] of cases) {
    it(`${what}: ${code}`, async () => {
      const runtime = createRuntime(
        system(`bad-${code}`, policyOnly, {
          bad: { topic, requests: () => [payload()], until: 1 },
          good: { requests: (tick, self) => [good(tick, self)], until: 1 },
        }),
      );
      await runtime.run(4);
      const [answer] = answersOf(runtime, 'bad');
      expect(answer!.response.errorCode).toBe(code);
      expect(answer!.response.error).toMatch(message);
      expect(answer!.response.outputs).toEqual([]);
      // The good request of the same tick was answered; the runtime went on.
      expect(answersOf(runtime, 'good')[0]!.response.errorCode).toBe('none');
      expect(runtime.snapshot().actors.find((actor) => actor.name === 'inference')!.lifecycle).toBe('running');
      await runtime.close();
    });
  }

  it('a missing model file and a corrupt one: model_unavailable, other models still answer', async () => {
    const corrupt = join(dir, 'corrupt.onnx');
    writeFileSync(corrupt, Buffer.from('this is not an onnx model'.repeat(40)));
    const models = { policy: policyPath, missing: join(dir, 'nowhere.onnx'), corrupt };
    const ask = (model: string) => ({ topic: `infer/${model}`, until: 2 });
    const runtime = createRuntime(system('unavailable', { models }, { p: ask('policy'), m: ask('missing'), c: ask('corrupt') }));
    await runtime.run(5);
    expect(answersOf(runtime, 'p').map((answer) => answer.response.errorCode)).toEqual(['none', 'none']);
    for (const [name, message] of [
      ['m', /model 'missing': its file .*nowhere\.onnx does not exist; put the \.onnx file there/],
      ['c', /model 'corrupt' \(.*corrupt\.onnx\): ONNX Runtime could not load it/],
    ] as const) {
      const answers = answersOf(runtime, name);
      expect(answers).toHaveLength(2);
      for (const answer of answers) {
        expect(answer.response.errorCode).toBe('model_unavailable');
        expect(answer.response.error).toMatch(message);
      }
    }
    const view = runtime.snapshot().inference!;
    expect(view.models.find((model) => model.name === 'missing')!.sha256).toBe('');
    expect(view.cache.loads).toBe(1);
    await runtime.close();
  });

  it('a request injected from outside is dropped with a reason (no inbox to answer)', async () => {
    const runtime = createRuntime(system('injected', policyOnly, {}));
    runtime.inject('infer/policy', encodeInferRequest({ id: 1, inputs: [tensor('obs', new Float32Array(16), [1, 16])] }));
    const record = await runtime.step();
    expect(record.drops.map((drop) => drop.reason)).toEqual([expect.stringMatching(/injected from outside: no actor to answer/)]);
    await runtime.close();
  });

  it('a bad registry is a ConfigError naming the field', () => {
    expect(() => createRuntime(system('bad-registry', { models: {} }, {}))).toThrow(/'models' is empty/);
    expect(() => createRuntime(system('bad-name', { models: { 'a/b': policyPath } }, {}))).toThrow(ConfigError);
    expect(() => createRuntime(system('bad-cache', { models: { policy: policyPath }, cacheBytes: 100 }, {}))).toThrow(/is 22769 bytes, more than cacheBytes \(100\); raise cacheBytes/);
    expect(() => createRuntime(system('bad-state', { models: { vad: { file: sileroPath, state: [{ input: 'state', output: 'stateN', dims: [2, 2, 128], batchAxis: 1 }] } } }, {}))).toThrow(
      /batchAxis' must name an axis of 'dims' whose size is 1/,
    );
    expect(() => createRuntime(system('bad-key', { models: { policy: policyPath }, provider: 'cuda' as 'cpu' }, {}))).toThrow(/provider must be 'cpu' or 'webgpu'/);
  });
});

describe('Silero VAD v5 through the actor: a stateful model, one state per requester', () => {
  const chunk = 512;
  /** Streams `samples` in 512-sample chunks, one request per tick (id = chunk index). */
  function streamer(samples: Float32Array): AskerArgs {
    const chunks = Math.floor(samples.length / chunk);
    return {
      topic: 'infer/vad',
      until: chunks,
      requests: (tick) => [
        encodeInferRequest({
          id: tick - 1,
          inputs: [tensor('input', samples.slice((tick - 1) * chunk, tick * chunk), [1, chunk]), tensor('sr', new BigInt64Array([16000n]), [])],
        }),
      ],
    };
  }
  const scoresOf = (runtime: Runtime, name: string) =>
    answersOf(runtime, name).map((answer) => {
      expect(answer.response.errorCode).toBe('none');
      return (tensorValues(answer.response.outputs.find((output) => output.name === 'output')!) as Float32Array)[0]!;
    });

  it('detects speech in most chunks of a real clip, while silence and low noise stay below the threshold', async () => {
    const speech = readWav16k(speechClipPath);
    const quiet = silence(speech.length);
    const noise = lowNoise(speech.length, 1);
    const runtime = createRuntime(system('vad', { models: { vad: sileroSpec } }, { speech: streamer(speech), quiet: streamer(quiet), noise: streamer(noise) }));
    const chunks = Math.floor(speech.length / chunk);
    await runtime.run(chunks + 2);
    const speechScores = scoresOf(runtime, 'speech');
    expect(speechScores).toHaveLength(chunks);
    const voiced = speechScores.filter((score) => score > 0.5).length / chunks;
    expect(voiced).toBeGreaterThan(0.8);
    for (const score of scoresOf(runtime, 'quiet')) expect(score).toBeLessThan(0.1);
    const noiseScores = scoresOf(runtime, 'noise');
    for (const score of noiseScores) expect(score).toBeLessThan(0.5);
    // A fresh state needs a few chunks to settle on faint noise (measured: 0.23, 0.25, 0.12, 0.07, then lower).
    for (const score of noiseScores.slice(4)) expect(score).toBeLessThan(0.1);
    // The three streams ran as one batch per tick.
    expect(runtime.snapshot().inference!.runs).toBe(chunks);

    // Bit for bit what a direct session gives with the state carried by hand.
    const direct = await directSession(sileroPath);
    let state: ort.Tensor = new ort.Tensor('float32', new Float32Array(2 * 128), [2, 1, 128]);
    const sr = new ort.Tensor('int64', new BigInt64Array([16000n]), []);
    const answers = answersOf(runtime, 'speech');
    for (let i = 0; i < chunks; i++) {
      const result = await direct.run({ input: new ort.Tensor('float32', speech.slice(i * chunk, (i + 1) * chunk), [1, chunk]), state, sr });
      state = result.stateN as ort.Tensor;
      const outputs = answers[i]!.response.outputs;
      expect(bitsOf(outputs.find((o) => o.name === 'output')!.data)).toEqual(bitsOf(result.output!.data as Float32Array));
      expect(bitsOf(outputs.find((o) => o.name === 'stateN')!.data)).toEqual(bitsOf(state.data as Float32Array));
    }
    await direct.release();
    await runtime.close();
  });

  it('forgets the state kept for a requester that crashes: its restarted incarnation starts from zeros', async () => {
    const chunkOfSpeech = readWav16k(speechClipPath).slice(20 * chunk, 21 * chunk);
    const same = () => [encodeInferRequest({ id: 0, inputs: [tensor('input', chunkOfSpeech, [1, chunk]), tensor('sr', new BigInt64Array([16000n]), [])] })];
    const tree = supervisor({ strategy: 'one_for_one', intensity: 3, period: 20 }, [{ id: 'vad', start: askerWith({ topic: 'infer/vad', requests: same }) }]);
    const runtime = createRuntime(defineSystem({ name: 'vad-restart', inference: { models: { vad: sileroSpec } }, setup: (b) => b.spawn(tree, { name: 'root' }) }));
    await runtime.run(4);
    runtime.actor('root/vad').crash();
    await runtime.run(4);
    await runtime.close();
    const records = readLog(runtime.logBytes()).ticks.flatMap((record) => record.inferences.map((inference) => ({ tick: record.tick, digest: digestHex(inference.digest.hi, inference.digest.lo) })));
    // The same chunk every tick: from a fresh state the answer is the first one; as the state
    // moves on, it is not. The crash at tick 5 forgets the state (tick 4's request, answered
    // at 5 to nobody, starts from zeros), and so does the restart at 6: the new incarnation's
    // first answer (tick 7) is the fresh one again, its second the second.
    const [fresh, second, third] = records.map((record) => record.digest);
    expect(new Set([fresh, second, third]).size).toBe(3);
    expect(records).toEqual([
      { tick: 2, digest: fresh },
      { tick: 3, digest: second },
      { tick: 4, digest: third },
      { tick: 5, digest: fresh },
      { tick: 7, digest: fresh },
      { tick: 8, digest: second },
    ]);
  });

  it('refuses a request that sends the state itself, and starts over on reset_state', async () => {
    const speech = readWav16k(speechClipPath).slice(0, 4 * chunk);
    const request = (id: number, reset: boolean, withState = false) =>
      encodeInferRequest({
        id,
        resetState: reset,
        inputs: [
          tensor('input', speech.slice(0, chunk), [1, chunk]),
          tensor('sr', new BigInt64Array([16000n]), []),
          ...(withState ? [tensor('state', new Float32Array(256), [2, 1, 128])] : []),
        ],
      });
    const runtime = createRuntime(
      system('vad-reset', { models: { vad: sileroSpec } }, {
        a: { topic: 'infer/vad', until: 4, requests: (tick) => [request(tick, tick === 3, tick === 4)] },
      }),
    );
    await runtime.run(7);
    const answers = answersOf(runtime, 'a');
    const first = answers[0]!.bytes;
    // Tick 2 continues tick 1's state; tick 3 resets: the same chunk from zeros gives tick 1's answer.
    expect(answers[1]!.response.outputs[0]!.data).not.toEqual(answers[0]!.response.outputs[0]!.data);
    expect(answers[2]!.response.outputs.map((o: TensorValue) => o.data)).toEqual(answers[0]!.response.outputs.map((o: TensorValue) => o.data));
    expect(first.length).toBeGreaterThan(0);
    expect(answers[3]!.response.errorCode).toBe('bad_input');
    expect(answers[3]!.response.error).toMatch(/input 'state' is the model's state, which the inference actor keeps for each requester/);
    await runtime.close();
  });
});

describe('the model manager', () => {
  it('evicts the least recently used model when the cache is full, and counts hits and misses', async () => {
    const policyBytes = statSync(policyPath).size;
    const sileroBytes = statSync(sileroPath).size;
    const cacheBytes = sileroBytes + policyBytes - 1;
    const vadRequest = () =>
      encodeInferRequest({ inputs: [tensor('input', new Float32Array(512), [1, 512]), tensor('sr', new BigInt64Array([16000n]), [])] });
    // Ticks 1-2 ask policy, 3-4 ask vad, 5-6 policy again: each switch is a miss and an eviction.
    const runtime = createRuntime(
      system('lru', { models: { policy: policyPath, vad: sileroSpec }, cacheBytes }, {
        p: { requests: (tick, self) => (tick <= 2 || (tick >= 5 && tick <= 6) ? [encodeInferRequest({ id: tick, inputs: [tensor('obs', observation(tick, self), [1, 16])] })] : []) },
        v: { topic: 'infer/vad', requests: (tick) => (tick >= 3 && tick <= 4 ? [vadRequest()] : []) },
      }),
    );
    await runtime.run(9);
    const cache = runtime.snapshot().inference!.cache;
    expect({ hits: cache.hits, misses: cache.misses, loads: cache.loads, evictions: cache.evictions }).toEqual({ hits: 3, misses: 3, loads: 3, evictions: 2 });
    expect(cache.loadedBytes).toBe(policyBytes);
    expect(runtime.models.loaded()).toEqual(['policy']);
    await runtime.models.unload('policy');
    expect(runtime.models.loaded()).toEqual([]);
    expect(await runtime.models.load('vad')).toBeNull();
    expect(runtime.models.loaded()).toEqual(['vad']);
    expect(await runtime.models.load('nosuch')).toMatch(/no model named 'nosuch'/);
    await runtime.close();
  });

  it('preloads at start (Silero warm-up included) and closes cleanly before any tick', async () => {
    const runtime = createRuntime(system('preload', { models: { vad: sileroSpec, policy: policyPath }, preload: 'all' }, {}));
    await runtime.start();
    expect(runtime.models.loaded()).toEqual(['policy', 'vad']);
    expect(runtime.snapshot().inference!.cache.loads).toBe(2);
    await runtime.close();
    const log = readLog(runtime.logBytes());
    expect(log.header.models.map((model) => model.name)).toEqual(['policy', 'vad']);
    const events = log.ticks.at(-1)!.lifecycle.filter((event) => event.actor === runtime.actorId('inference'));
    expect(events.map((event) => `${event.from} → ${event.to}`)).toEqual(['none → created', 'created → stopped']);
  });

  it('replaces an inference worker that died between ticks: its models load again, answers go on', async () => {
    const runtime = createRuntime(system('worker-death', policyOnly, { a: {} }));
    await runtime.run(4);
    await runtime.killInferenceWorker();
    await runtime.run(4);
    const answers = answersOf(runtime, 'a');
    expect(answers.map((answer) => answer.response.id)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(answers.map((answer) => answer.response.error)).toEqual(['', '', '', '', '', '']);
    expect(runtime.snapshot().inference!.cache).toMatchObject({ loads: 2, misses: 2 });
    await runtime.close();
  });

  it('refuses a model file that changed since the run began', async () => {
    const copy = join(dir, 'changing.onnx');
    copyFileSync(policyPath, copy);
    const runtime = createRuntime(system('changing', { models: { policy: copy } }, { a: { until: 1 } }));
    const bytes = readFileSync(copy);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
    writeFileSync(copy, bytes);
    await runtime.run(3);
    const [answer] = answersOf(runtime, 'a');
    expect(answer!.response.errorCode).toBe('model_unavailable');
    expect(answer!.response.error).toMatch(/changed since the run began .* restart the runtime to use the new version/);
    await runtime.close();
  });

  it('loads a registry file whose paths are relative to it', async () => {
    const registry = join(dir, 'registry.json');
    copyFileSync(policyPath, join(dir, 'policy-copy.onnx'));
    writeFileSync(registry, JSON.stringify({ models: { policy: 'policy-copy.onnx' }, preload: ['policy'] }));
    const runtime = createRuntime(system('registry', registry as unknown as InferenceConfig, { a: { until: 1 } }));
    await runtime.start();
    expect(runtime.models.loaded()).toEqual(['policy']);
    await runtime.run(3);
    expect(answersOf(runtime, 'a')[0]!.response.errorCode).toBe('none');
    await runtime.close();
  });
});

describe('providers', () => {
  it('WebGPU asked for on a machine without a GPU falls back to CPU, says so in the log, and answers the same', async () => {
    const cpu = createRuntime(system('provider', policyOnly, { a: { until: 3 } }));
    await cpu.run(5);
    const gpu = createRuntime(system('provider', { ...policyOnly, provider: 'webgpu' }, { a: { until: 3 } }));
    await gpu.run(5);
    expect(answersOf(gpu, 'a').map((answer) => answer.bytes)).toEqual(answersOf(cpu, 'a').map((answer) => answer.bytes));
    await cpu.close();
    await gpu.close();
    const log = readLog(gpu.logBytes());
    expect(log.header.gpu).toBe(false);
    expect(JSON.parse(log.header.inferenceJson).provider).toBe('webgpu');
    const records = log.ticks.flatMap((record) => record.inferences);
    expect(records[0]!.note).toMatch(/model 'policy': webgpu load failed \(.*\); using cpu/);
    expect(records.every((record) => record.provider === 'cpu')).toBe(true);
  });
});

describe('replay', () => {
  it('re-runs CPU inference and checks every answer: bit-exact', async () => {
    const definition = system('replay-cpu', { models: { policy: policyPath, vad: sileroSpec } }, {
      a: {},
      b: {},
      v: { topic: 'infer/vad', requests: (tick) => [encodeInferRequest({ id: tick, inputs: [tensor('input', new Float32Array(512).fill(tick / 100), [1, 512]), tensor('sr', new BigInt64Array([16000n]), [])] })] },
    });
    const runtime = createRuntime(definition);
    await runtime.run(10);
    const chain = await runtime.close();
    const report = await replay(runtime.logBytes(), definition);
    expect(report.bitExact).toBe(true);
    expect(report.chainHex).toBe(chain);
  });

  it('names the inference answer that differs when the model changed', async () => {
    const copy = join(dir, 'tampered.onnx');
    copyFileSync(policyPath, copy);
    const definition = system('replay-tampered', { models: { policy: copy } }, { a: {} });
    const runtime = createRuntime(definition);
    await runtime.run(5);
    await runtime.close();
    // Flip the lowest bit of a float in the middle of the weights: a different model.
    const bytes = readFileSync(copy);
    const at = Math.floor(bytes.length / 2) & ~3;
    bytes[at] = bytes[at]! ^ 1;
    writeFileSync(copy, bytes);
    const failure = await replay(runtime.logBytes(), definition).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ReplayDivergenceError);
    expect((failure as ReplayDivergenceError).divergence.tick).toBe(2);
    expect((failure as ReplayDivergenceError).message).toMatch(/actor 'a': the inference answer differs: recorded model 'policy' answered request 1/);
  });

  it('substitutes answers logged whole (as GPU answers are): replay needs no model file', async () => {
    const copy = join(dir, 'gone.onnx');
    copyFileSync(policyPath, copy);
    const definition = system('replay-whole', { models: { policy: copy }, logOutputs: 'full' }, { a: {}, b: {} });
    const runtime = createRuntime(definition);
    await runtime.run(6);
    await runtime.close();
    const log = readLog(runtime.logBytes());
    expect(log.ticks.flatMap((record) => record.inferences).every((record) => record.response !== null)).toBe(true);
    rmSync(copy);
    const report = await replay(runtime.logBytes(), definition);
    expect(report.notes.join('\n')).toMatch(/model 'policy' was sha256 .* answers logged whole are substituted/);
  });
});
