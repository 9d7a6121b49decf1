// WASM agents calling models: real signed agents (pilot, rogue) on real worker threads,
// each request a FlatBuffer hand-encoded by the AssemblyScript SDK, answered by the real
// inference actor running the policy network. A JS actor subscribed to `infer/policy`
// beside it (RequestObserver) checks the bytes the SDK wrote; the pilot's decisions are
// checked against a direct ONNX Runtime run. Also the host's rule that an agent may call
// only the models its manifest declares. (Error responses through the SDK are covered by
// the hand-driven tests in agents.test.ts.)
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as flatbuffers from 'flatbuffers';
import { afterEach, describe, expect, it } from 'vitest';
import { DType } from '../schemas/generated/lockstep/tensor/dtype.ts';
import { InferRequest } from '../schemas/generated/lockstep/tensor/infer-request.ts';
import { loadWasmAgent, wasmAgentFromParts } from '../actors/wasm-agent.ts';
import { AdmissionError, createRuntime, defineActor, defineSystem, type Runtime, type SystemBuilder } from '../src/index.ts';
import { readLog } from '../src/log/index.ts';
import { parseManifest } from '../src/wasm/manifest.ts';
import { wat } from './fixtures/wat.ts';
import ort from 'onnxruntime-node';
import { sessionOptionsDefault } from '../src/inference/models.ts';
import { policyPath } from './fixtures/inference.ts';

const devKey = readFileSync(fileURLToPath(new URL('../examples/keys/dev.pub.pem', import.meta.url)), 'utf8');
const agentPath = (name: string) => fileURLToPath(new URL(`../actors/agents/build/${name}.wasm`, import.meta.url));
const load = (name: string) => loadWasmAgent(agentPath(name));

const vadRefusal = "refused: agent 'rogue' may not call model 'vad' (not in its manifest's capabilities.models)";
/** pilot.ts: observation value i of the request built at `step` in `tick`. */
const observation = (step: number, tick: number) => Float32Array.from({ length: 16 }, (_, i) => (step * (i + 1) + tick) / 64);

interface SeenRequest {
  tick: number;
  sender: number;
  id: number;
  model: string | null;
  obs: number[];
  /** Offset of the data bytes from the payload's start, mod 4 (the SDK aligns them). */
  dataAlignment: number;
}

/** Watches `infer/policy` beside the inference actor: checks each request's bytes as the SDK encoded them. */
const RequestObserver = defineActor({
  name: 'request-observer',
  subscribe: ['infer/policy'],
  init: () => ({ seen: [] as SeenRequest[], problems: [] as string[] }),
  receive: (state, message, ctx) => {
    const request = InferRequest.getRootAsInferRequest(new flatbuffers.ByteBuffer(message.payload));
    const input = request.inputs(0);
    const dims = input === null ? [] : Array.from(input.dimsArray() ?? []);
    const data = input?.dataArray() ?? null;
    const problem =
      request.inputsLength() !== 1 ? `inputs ${request.inputsLength()}`
      : input?.name() !== 'obs' ? `input name ${input?.name()}`
      : input.dtype() !== DType.float32 ? `dtype ${input.dtype()}`
      : dims.join(',') !== '1,16' ? `dims ${dims.join(',')}`
      : data?.byteLength !== 64 ? `data bytes ${data?.byteLength}`
      : null;
    if (problem !== null || data === null) {
      state.problems.push(`${ctx.tick}: ${problem}`);
      return state;
    }
    const values = new Float32Array(data.slice().buffer);
    state.seen.push({
      tick: ctx.tick,
      sender: message.sender,
      id: request.id(),
      model: request.model(),
      obs: Array.from(values),
      dataAlignment: (data.byteOffset - message.payload.byteOffset) % 4,
    });
    return state;
  },
});

/** The action the real policy network picks for an observation: argmax of a direct run. */
async function directAction(session: ort.InferenceSession, obs: Float32Array): Promise<number> {
  const result = await session.run({ obs: new ort.Tensor('float32', obs, [1, 16]) });
  const probs = result.probs!.data as Float32Array;
  let best = 0;
  for (let i = 1; i < probs.length; i++) if (probs[i]! > probs[best]!) best = i;
  return best;
}

/** Keeps each `decisions` record: tick, request id, action, error code. */
const DecisionLog = defineActor({
  name: 'decision-log',
  subscribe: ['decisions'],
  init: () => [] as Array<{ tick: number; id: number; action: number; error: number }>,
  receive: (seen, message, ctx) => {
    const view = new DataView(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength);
    seen.push({ tick: ctx.tick, id: view.getUint32(0, true), action: view.getUint8(4), error: view.getUint8(5) });
    return seen;
  },
});

const runtimes: Runtime[] = [];
function start(setup: (builder: SystemBuilder) => void, options: { topics?: string[]; allowUnsigned?: boolean; models?: boolean } = {}): Runtime {
  const inference = options.models === false ? undefined : { models: { policy: policyPath } };
  const runtime = createRuntime(defineSystem({ name: 'wasm-infer-test', topics: options.topics, inference, setup }), {
    seed: 11,
    level: 'full',
    trustedKeys: [devKey],
    workers: 2,
    allowUnsigned: options.allowUnsigned,
  });
  runtimes.push(runtime);
  return runtime;
}

afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((runtime) => runtime.abandon()));
});

function lifecycleOf(runtime: Runtime, name: string): string | undefined {
  return runtime.snapshot().actors.find((actor) => actor.name === name)?.lifecycle;
}

describe('WASM agents calling models', () => {
  it('pilot asks the real policy network every step and publishes the argmax of each answer', async () => {
    const [pilot, rogue] = await Promise.all([load('pilot'), load('rogue')]);
    const once = async () => {
      const runtime = start((s) => {
        s.spawn(pilot, { name: 'pilot' }); // id 2 (the inference actor is 1)
        s.spawn(rogue, { name: 'rogue' }); // id 3
        s.spawn(RequestObserver, { name: 'policy' });
        s.spawn(DecisionLog, { name: 'decisions' });
      });
      await runtime.run(8);
      const model = runtime.actor('policy').state<{ seen: SeenRequest[]; problems: string[] }>()!;
      const decisions = runtime.actor('decisions').state<Array<{ tick: number; id: number; action: number; error: number }>>()!;
      const lifecycles = ['pilot', 'rogue'].map((name) => lifecycleOf(runtime, name));
      return { runtime, model, decisions, lifecycles, chain: await runtime.close() };
    };
    const first = await once();
    expect(first.model.problems).toEqual([]);
    // Tick 1 is init; each agent steps from tick 2, request id = its step count (from 1).
    const fromPilot = first.model.seen.filter((request) => request.sender === 2);
    expect(fromPilot.map((request) => [request.tick, request.id])).toEqual([[3, 1], [4, 2], [5, 3], [6, 4], [7, 5], [8, 6]]);
    for (const request of fromPilot) {
      expect(request.obs).toEqual(Array.from(observation(request.id, request.id + 1)));
      expect(request.model).toBe('');
      expect(request.dataAlignment).toBe(0);
    }
    // Asked at tick t, answered at t+1 (the inference actor), decided at t+2, logged at t+3.
    const session = await ort.InferenceSession.create(policyPath, { executionProviders: ['cpu'], ...sessionOptionsDefault });
    const expected = [];
    for (const id of [1, 2, 3, 4]) expected.push({ tick: id + 4, id, action: await directAction(session, observation(id, id + 1)), error: 0 });
    await session.release();
    expect(first.decisions).toEqual(expected);
    expect(first.lifecycles).toEqual(['running', 'running']);
    const second = await once();
    expect(second.decisions).toEqual(first.decisions);
    expect(second.chain).toBe(first.chain);
  });

  it("refuses and logs the rogue's calls to a model its manifest does not declare; its declared calls still arrive", async () => {
    const rogue = await load('rogue');
    const runtime = start((s) => {
      s.spawn(rogue, { name: 'rogue' }); // id 2 (the inference actor is 1)
      s.spawn(RequestObserver, { name: 'policy' });
    });
    await runtime.run(5);
    const model = runtime.actor('policy').state<{ seen: SeenRequest[]; problems: string[] }>()!;
    expect(model.seen.map((request) => [request.tick, request.sender, request.id])).toEqual([[3, 2, 1], [4, 2, 2], [5, 2, 3]]);
    // The rogue checks that `infer/vad` is refused (NotAllowed) and would crash otherwise.
    expect(lifecycleOf(runtime, 'rogue')).toBe('running');
    const log = readLog((await runtime.close(), runtime.logBytes()));
    const refusals = log.ticks.flatMap((tick) => tick.drops.map((drop) => ({ tick: tick.tick, ...drop }))).filter((drop) => drop.reason.startsWith('refused'));
    // One refusal per tick the rogue stepped (ticks 2..5), before the request was a message.
    expect(refusals.map(({ tick, sender, actor, reason }) => ({ tick, sender, actor, reason }))).toEqual(
      [2, 3, 4, 5].map((tick) => ({ tick, sender: 2, actor: 0, reason: vadRefusal })),
    );
    // No topic `infer/vad` exists here: the drop carries the rogue's refusal id (-2 as u32).
    expect(new Set(refusals.map((drop) => drop.topic))).toEqual(new Set([0xffff_fffe]));
    expect(log.ticks.flatMap((tick) => tick.newTopics).map((topic) => topic.name)).not.toContain('infer/vad');
  });

  it('refuses the same way when the system declares infer/vad and no actor subscribes to it', async () => {
    const rogue = await load('rogue');
    const runtime = start((s) => s.spawn(rogue, { name: 'rogue' }), { topics: ['infer/vad'] });
    await runtime.run(4);
    expect(lifecycleOf(runtime, 'rogue')).toBe('running');
    const log = readLog((await runtime.close(), runtime.logBytes()));
    const vadTopic = log.ticks.flatMap((tick) => tick.newTopics).find((topic) => topic.name === 'infer/vad')?.id;
    const policyTopic = log.ticks.flatMap((tick) => tick.newTopics).find((topic) => topic.name === 'infer/policy')?.id;
    expect(vadTopic).toBeTypeOf('number');
    const drops = log.ticks.flatMap((tick) => tick.drops).filter((drop) => drop.reason !== 'undelivered at shutdown');
    // Refused before it became a message (logged under the declared topic), so never "no subscriber".
    expect(drops.filter((drop) => drop.reason === vadRefusal).map((drop) => drop.topic)).toEqual([vadTopic, vadTopic, vadTopic]);
    expect(drops.filter((drop) => drop.topic === vadTopic && drop.reason !== vadRefusal)).toEqual([]);
    // The declared model's requests are messages, which the inference actor answers.
    expect(drops.filter((drop) => drop.topic === policyTopic)).toEqual([]);
    expect(log.ticks.flatMap((tick) => tick.inferences).map((inference) => inference.model)).toEqual(['policy', 'policy']);
  });

  it('refuses to spawn an agent whose manifest names a model the system does not register', async () => {
    const pilot = await load('pilot');
    expect(() => start((s) => s.spawn(pilot, { name: 'pilot' }), { models: false })).toThrow(
      "WASM agent 'pilot' may call model 'policy' (its manifest's capabilities.models), but system 'wasm-infer-test' has no models; give it an `inference` config",
    );
    expect(() =>
      createRuntime(defineSystem({ name: 'other-models', inference: { models: { vad: policyPath } }, setup: (s) => s.spawn(pilot, { name: 'pilot' }) }), {
        trustedKeys: [devKey],
      }),
    ).toThrow(/may call model 'policy' .* but the system registers only vad/);
  });

  it("refuses a publish to `infer` (the model named inside), which no manifest can grant", async () => {
    // Looks up "infer" in init, keeps what it got, and publishes 4 bytes to it every step.
    const bytes = wat(`(module
      (import "lockstep" "publish" (func $publish (param i32 i32 i32 i32) (result i32)))
      (import "lockstep" "topic" (func $topic (param i32 i32) (result i32)))
      (memory (export "memory") 1 1)
      (data (i32.const 0) "infer")
      (global $infer (mut i32) (i32.const 0))
      (func (export "lockstep_abi_version") (result i32) i32.const 1)
      (func (export "agent_alloc") (param i32) (result i32) i32.const 1024)
      (func (export "agent_init") (result i32)
        (global.set $infer (call $topic (i32.const 0) (i32.const 5)))
        ;; not granted: a negative id, below -1 for an inference topic
        (if (result i32) (i32.lt_s (global.get $infer) (i32.const -1)) (then (i32.const 0)) (else (i32.const -7))))
      (func (export "agent_receive") (param i32 i32) (result i32) i32.const 0)
      (func (export "agent_step") (param i32) (result i32)
        (drop (call $publish (global.get $infer) (i32.const 0) (i32.const 4) (i32.const 0)))
        i32.const 0)
      (func (export "agent_shutdown") (result i32) i32.const 0))`);
    const manifest = parseManifest(
      { name: 'bare', version: '1.0.0', abi: 1, capabilities: { publish: [], subscribe: [], models: [] }, limits: { fuelPerStep: 10_000, memoryPages: 1 } },
      'test',
    );
    const bare = await wasmAgentFromParts({ name: 'bare.wasm', bytes, manifest, signature: null });
    const runtime = start((s) => s.spawn(bare, { name: 'bare' }), { allowUnsigned: true, topics: ['infer'], models: false });
    await runtime.run(3);
    expect(lifecycleOf(runtime, 'bare')).toBe('running');
    const log = readLog((await runtime.close(), runtime.logBytes()));
    expect(log.ticks.flatMap((tick) => tick.drops).map((drop) => drop.reason)).toEqual([
      "refused: agent 'bare' may not publish to 'infer' (an agent calls a model through 'infer/<model>', for each model in its manifest's capabilities.models)",
      "refused: agent 'bare' may not publish to 'infer' (an agent calls a model through 'infer/<model>', for each model in its manifest's capabilities.models)",
    ]);
  });
});

describe('manifest: models', () => {
  const manifestWith = (capabilities: { publish?: string[]; subscribe?: string[]; models?: string[] }) => ({
    name: 'pilot',
    version: '1.0.0',
    abi: 1,
    capabilities: { publish: [], subscribe: [], models: [], ...capabilities },
    limits: { fuelPerStep: 1000, memoryPages: 1 },
  });

  it('refuses an inference topic in capabilities.publish and says to list the model in capabilities.models', () => {
    const parse = () => parseManifest(manifestWith({ publish: ['decisions', 'infer/policy'] }), "'pilot.manifest.json'");
    expect(parse).toThrow(AdmissionError);
    expect(parse).toThrow(
      "manifest 'pilot.manifest.json': field 'capabilities.publish[1]' is \"infer/policy\", an inference topic: an agent calls a model by listing the model's name in capabilities.models, never through publish; " +
        'write "models": ["policy"] in capabilities instead (it grants "infer/policy") and remove "infer/policy" from "publish"',
    );
    expect(() => parseManifest(manifestWith({ publish: ['infer'] }), 'm')).toThrow(/'capabilities.publish\[0\]' is "infer", an inference topic: .*each model's name in capabilities.models instead/);
    expect(() => parseManifest(manifestWith({ publish: ['infer/'] }), 'm')).toThrow(/each model's name in capabilities.models instead/);
  });

  it("refuses a model name with '/', and accepts plain ones", () => {
    expect(() => parseManifest(manifestWith({ models: ['policy/v2'] }), 'm')).toThrow(/field 'capabilities.models\[0\]' must be a model name without '\/', got "policy\/v2"/);
    expect(() => parseManifest(manifestWith({ models: [''] }), 'm')).toThrow(/capabilities.models\[0\]/);
    expect(() => parseManifest(manifestWith({ models: ['x'.repeat(129)] }), 'm')).toThrow(/'capabilities.models\[0\]' must be 1..128 letters, digits, '.', '_' or '-'/);
    expect(() => parseManifest(manifestWith({ models: ['pol icy'] }), 'm')).toThrow(/'capabilities.models\[0\]' must be 1..128 letters/);
    expect(parseManifest(manifestWith({ publish: ['inference', 'infer-log'], models: ['policy', 'vad.v2'] }), 'm').capabilities).toEqual({
      publish: ['inference', 'infer-log'],
      subscribe: [],
      models: ['policy', 'vad.v2'],
    });
  });
});
