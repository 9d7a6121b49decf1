/**
 * The sample WASM agents (actors/agents) and their AssemblyScript SDK, tested as built and
 * committed (actors/agents/build). Each module is real WebAssembly run by V8; only the
 * `lockstep` imports are stood in for by a hand-driven host in this file, so a test can
 * deliver one message (an ABI v2 Envelope, written by src/wasm/envelope-layout.ts as the
 * host writes it) and look at exactly what the agent published. The runtime's own host is
 * tested elsewhere; here the question is whether the agents keep ABI v2 (docs/abi.md).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main as ascMain } from 'assemblyscript/asc';
import wabtFactory from 'wabt';
import { beforeAll, describe, expect, it } from 'vitest';
import { admissionPolicyDefaults, admitPlugin } from '../src/wasm/admission.ts';
import { parseManifest, type PluginManifest } from '../src/wasm/manifest.ts';
import { meterModule } from '../src/wasm/metering.ts';
import { loadPluginFiles } from '../src/wasm/signing.ts';
import * as flatbuffers from 'flatbuffers';
import { DType } from '../schemas/generated/lockstep/tensor/dtype.ts';
import { InferRequest } from '../schemas/generated/lockstep/tensor/infer-request.ts';
import { InferResponse } from '../schemas/generated/lockstep/tensor/infer-response.ts';
import { Tensor } from '../schemas/generated/lockstep/tensor/tensor.ts';
import { depthGlobalExport, fuelGlobalExport } from '../src/wasm/abi.ts';
import { EnvelopeAt, envelopeHeaderBytes, writeEnvelopeHeader } from '../src/envelope-layout.ts';

const repositoryRoot = fileURLToPath(new URL('..', import.meta.url));
const agentsDirectory = join(repositoryRoot, 'actors', 'agents');
const buildDirectory = join(agentsDirectory, 'build');
const devPublicKeyPem = readFileSync(join(repositoryRoot, 'examples', 'keys', 'dev.pub.pem'), 'utf8');

const agentNames = ['bad_code', 'bad_init', 'counter', 'grower', 'hasher', 'pacer', 'pilot', 'ping', 'pong', 'recursor', 'rogue', 'sieve', 'spinner'] as const;
type AgentName = (typeof agentNames)[number];

/** ABI v2: the Envelope's 60 bytes before its payload. */
const headerBytes = envelopeHeaderBytes;
const payloadBytesMax = 64 * 1024;
const pageBytes = 64 * 1024;
const priorityMax = 255;

// ---------------------------------------------------------------------------------------------
// A host driven by hand

/** Topic ids the hand-driven host hands out; the agents must not care which numbers they get. */
const topicIds = new Map<string, number>([
  ['numbers', 11], ['counts', 12], ['ping', 13], ['pong', 14], ['jobs', 15], ['results', 16], ['config', 17],
  ['decisions', 18], ['infer/policy', 19], ['actor/9', 20], ['load', 22],
]);

interface AgentExports {
  memory: WebAssembly.Memory;
  lockstep_abi_version(): number;
  agent_alloc(len: number): number;
  agent_init(): number;
  agent_receive(ptr: number, len: number): number;
  agent_step(tick: number): number;
  agent_shutdown(): number;
}

interface Published {
  topic: number;
  payload: Uint8Array;
  priority: number;
}

interface Header {
  sender?: number;
  seq?: number;
  tick?: number;
  priority?: number;
}

/**
 * One agent instance with the `lockstep` imports implemented as docs/abi.md says: topic ids
 * only for the manifest's topics, publish refused with -1..-4 for the listed reasons,
 * random from a scripted list, backpressure whatever the test set. `deliver` writes an ABI v2
 * message (Envelope header, then payload) at agent_alloc's address and calls agent_receive,
 * as the host does.
 */
class HandDrivenAgent {
  readonly published: Published[] = [];
  readonly logs: Array<{ level: number; text: string }> = [];
  /** Draws `random` returns, in order; it throws when they run out. */
  readonly randomDraws: number[] = [];
  /** What `backpressure` returns: the publishes "refused at the previous tick's barrier". */
  refusedLastTick = 0;
  /** How many times the agent called `backpressure`. */
  backpressureCalls = 0;
  exports!: AgentExports;

  private constructor(
    readonly manifest: PluginManifest,
    private readonly topics: ReadonlyMap<string, number>,
  ) {}

  static async load(bytes: Uint8Array, manifest: PluginManifest, topics: ReadonlyMap<string, number> = topicIds): Promise<HandDrivenAgent> {
    const agent = new HandDrivenAgent(manifest, topics);
    const { instance } = await WebAssembly.instantiate(bytes, { lockstep: agent.imports() });
    agent.exports = instance.exports as unknown as AgentExports;
    return agent;
  }

  static async built(name: AgentName): Promise<HandDrivenAgent> {
    const files = builtFiles(name);
    return HandDrivenAgent.load(files.bytes, files.manifest);
  }

  topicId(name: string): number {
    const id = this.topics.get(name);
    if (id === undefined) throw new Error(`test bug: no id for topic '${name}'`);
    return id;
  }

  deliver(topicName: string, payload: Uint8Array, header: Header = {}): number {
    const len = headerBytes + payload.length;
    const ptr = this.exports.agent_alloc(len);
    const memory = this.exports.memory.buffer;
    writeEnvelopeHeader(new DataView(memory), ptr, this.topicId(topicName), header.sender ?? 0, header.seq ?? 0, header.tick ?? 0, header.priority ?? 0, payload.length);
    new Uint8Array(memory, ptr + headerBytes, payload.length).set(payload);
    return this.exports.agent_receive(ptr, len);
  }

  /** What was published since the last call. */
  take(): Published[] {
    return this.published.splice(0, this.published.length);
  }

  /** Topics the agent may publish to: capabilities.publish, and `infer/<m>` for each m in capabilities.models. */
  private granted(name: string): boolean {
    const { publish, models } = this.manifest.capabilities;
    return publish.includes(name) || models.some((model) => `infer/${model}` === name);
  }

  private bytesAt(ptr: number, len: number): Uint8Array | null {
    const memory = this.exports.memory.buffer;
    if (ptr < 0 || len < 0 || ptr + len > memory.byteLength) return null;
    return new Uint8Array(memory, ptr, len).slice();
  }

  private imports(): Record<string, (...args: number[]) => number | void> {
    const nameOf = (id: number): string | undefined => [...this.topics].find(([, topicId]) => topicId === id)?.[0];
    return {
      publish: (topic, ptr, len, priority) => {
        const name = nameOf(topic ?? -1);
        if (name === undefined || !this.granted(name)) return -1;
        if ((len ?? 0) > payloadBytesMax) return -2;
        const payload = this.bytesAt(ptr ?? 0, len ?? 0);
        if (payload === null) return -3;
        if (!((priority ?? -1) >= 0 && (priority ?? -1) <= priorityMax)) return -4;
        this.published.push({ topic: topic ?? -1, payload, priority: priority ?? 0 });
        return 0;
      },
      topic: (ptr, len) => {
        const bytes = this.bytesAt(ptr ?? 0, len ?? 0);
        if (bytes === null) return -1;
        const name = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
        return this.granted(name) || this.manifest.capabilities.subscribe.includes(name) ? (this.topics.get(name) ?? -1) : -1;
      },
      log: (level, ptr, len) => {
        const bytes = this.bytesAt(ptr ?? 0, len ?? 0) ?? new Uint8Array();
        this.logs.push({ level: level ?? -1, text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) });
      },
      random: () => {
        const draw = this.randomDraws.shift();
        if (draw === undefined) throw new Error('test bug: the agent drew more random numbers than scripted');
        return draw | 0;
      },
      backpressure: () => {
        this.backpressureCalls++;
        return this.refusedLastTick;
      },
    };
  }
}

function builtFiles(name: AgentName): { bytes: Uint8Array; manifest: PluginManifest; manifestText: string } {
  const loaded = loadPluginFiles(join(buildDirectory, `${name}.wasm`));
  return { bytes: loaded.bytes, manifest: loaded.manifest, manifestText: readFileSync(join(buildDirectory, `${name}.manifest.json`), 'utf8') };
}

function u32s(...values: number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((value, index) => view.setUint32(index * 4, value, true));
  return bytes;
}

function readU32(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(at, true);
}

// ---------------------------------------------------------------------------------------------
// The built modules, statically

const wabt = await wabtFactory();

/** The module as wabt's text format, with its type, import, export and function lines. */
function moduleText(bytes: Uint8Array): string {
  const module = wabt.readWasm(new Uint8Array(bytes), { readDebugNames: false });
  try {
    return module.toText({ foldExprs: false, inlineExport: false });
  } finally {
    module.destroy();
  }
}

/** Function type index -> '(param ...) (result ...)' as wabt prints it. */
function typesOf(text: string): Map<number, string> {
  const types = new Map<number, string>();
  for (const match of text.matchAll(/\(type \(;(\d+);\) \(func ?(.*)\)\)\n/g)) types.set(Number(match[1]), (match[2] ?? '').trim());
  return types;
}

const importTypes: Record<string, string> = {
  publish: '(param i32 i32 i32 i32) (result i32)',
  topic: '(param i32 i32) (result i32)',
  log: '(param i32 i32 i32)',
  random: '(result i32)',
  backpressure: '(result i32)',
};

describe('built agents', () => {
  it('are exactly what the sources build to (npm run build:agents -- --check)', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', join(agentsDirectory, 'build.ts'), '--check'], {
      cwd: repositoryRoot,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  }, 150_000);

  it.each(agentNames)('%s: ships its source manifest byte for byte, and admission accepts it signed by the dev key', (name) => {
    const files = builtFiles(name);
    expect(files.manifestText).toBe(readFileSync(join(agentsDirectory, `${name}.manifest.json`), 'utf8'));
    expect(files.manifest.name).toBe(name);
    const signature = loadPluginFiles(join(buildDirectory, `${name}.wasm`)).signature;
    const admitted = admitPlugin(
      { name: `${name}.wasm`, bytes: files.bytes, manifest: files.manifest, signature },
      { ...admissionPolicyDefaults, trustedKeysPem: [devPublicKeyPem] },
    );
    expect(admitted.keyId).toBe('b38cca2f29653abe');
  });

  it.each(agentNames)('%s: imports only lockstep functions of the ABI, with their types, and has no start section', (name) => {
    const text = moduleText(builtFiles(name).bytes);
    const types = typesOf(text);
    const imports = [...text.matchAll(/\(import "([^"]*)" "([^"]*)" \((\w+) \(;\d+;\)(?: \(type (\d+)\))?/g)];
    for (const [, module, field, kind, typeIndex] of imports) {
      expect(module).toBe('lockstep');
      expect(kind).toBe('func');
      expect(Object.keys(importTypes)).toContain(field);
      expect(types.get(Number(typeIndex))).toBe(importTypes[field ?? '']);
    }
    expect(text).not.toMatch(/\(start /);
  });

  it.each(agentNames)('%s: says "abi": 2, exports memory with a maximum within memoryPages, lockstep_abi_version as i32.const 2, and the agent functions', (name) => {
    const { bytes, manifest } = builtFiles(name);
    expect(manifest.abi).toBe(2);
    const text = moduleText(bytes);
    const memory = /\(memory \(;0;\) (\d+) (\d+)\)/.exec(text);
    expect(memory).not.toBeNull();
    expect(Number(memory?.[2])).toBeLessThanOrEqual(manifest.limits.memoryPages);
    expect(text).toContain('(export "memory" (memory 0))');
    const versionIndex = /\(export "lockstep_abi_version" \(func (\d+)\)\)/.exec(text)?.[1];
    expect(text).toMatch(new RegExp(`\\(func \\(;${versionIndex};\\) \\(type \\d+\\) \\(result i32\\)\\n\\s+i32\\.const 2\\)`));
    const exportNames = [...WebAssembly.Module.exports(new WebAssembly.Module(bytes))].map((entry) => entry.name).sort();
    expect(exportNames).toEqual(['agent_alloc', 'agent_init', 'agent_receive', 'agent_shutdown', 'agent_step', 'lockstep_abi_version', 'memory']);
  });

  it.each(agentNames)('%s: reports ABI 2, and agent_alloc gives a 16-byte aligned inbox for a whole message and traps beyond it', async (name) => {
    const agent = await HandDrivenAgent.built(name);
    expect(agent.exports.lockstep_abi_version()).toBe(2);
    const small = agent.exports.agent_alloc(headerBytes);
    expect(small % 16).toBe(0);
    expect(agent.exports.agent_alloc(headerBytes + payloadBytesMax)).toBe(small);
    expect(() => agent.exports.agent_alloc(headerBytes + payloadBytesMax + 1)).toThrow(WebAssembly.RuntimeError);
    expect(() => agent.exports.agent_alloc(-1)).toThrow(WebAssembly.RuntimeError);
  });
});

// ---------------------------------------------------------------------------------------------
// The well-behaved agents, driven by hand

describe('counter', () => {
  it('publishes the running count of `numbers` messages on `counts` at each step that saw new ones', async () => {
    const counter = await HandDrivenAgent.built('counter');
    expect(counter.exports.agent_init()).toBe(0);
    for (let seq = 0; seq < 3; seq++) expect(counter.deliver('numbers', u32s(seq), { sender: 4, seq })).toBe(0);
    expect(counter.exports.agent_step(1)).toBe(0);
    expect(counter.take()).toEqual([{ topic: counter.topicId('counts'), payload: u32s(3), priority: 0 }]);

    expect(counter.exports.agent_step(2)).toBe(0);
    expect(counter.take()).toEqual([]);

    expect(counter.deliver('numbers', new Uint8Array())).toBe(0);
    expect(counter.deliver('counts', u32s(99))).toBe(0); // not a number: not counted
    expect(counter.exports.agent_step(3)).toBe(0);
    expect(counter.take().map((sent) => readU32(sent.payload, 0))).toEqual([4]);
    expect(counter.exports.agent_shutdown()).toBe(0);
  });

  it('fails agent_init with an agent error when its manifest does not grant its topics', async () => {
    const files = builtFiles('counter');
    const narrowed = { ...files.manifest, capabilities: { publish: [], subscribe: ['numbers'], models: [] } };
    const counter = await HandDrivenAgent.load(files.bytes, narrowed);
    expect(counter.exports.agent_init()).toBe(-1);
  });
});

describe('ping and pong', () => {
  it('rally a ball over `ping` and `pong`, each adding one to the counter in the payload', async () => {
    const ping = await HandDrivenAgent.built('ping');
    const pong = await HandDrivenAgent.built('pong');
    expect(pong.exports.agent_init()).toBe(0);
    expect(ping.exports.agent_init()).toBe(0);
    const served = ping.take();
    expect(served).toEqual([{ topic: ping.topicId('ping'), payload: u32s(0), priority: 0 }]);

    let ball = served[0]?.payload ?? new Uint8Array();
    const counters: number[] = [];
    for (let tick = 1; tick <= 3; tick++) {
      expect(pong.deliver('ping', ball)).toBe(0);
      const returned = pong.take();
      expect(returned.map((sent) => sent.topic)).toEqual([pong.topicId('pong')]);
      expect(ping.deliver('pong', returned[0]?.payload ?? new Uint8Array())).toBe(0);
      const next = ping.take();
      expect(next.map((sent) => sent.topic)).toEqual([ping.topicId('ping')]);
      ball = next[0]?.payload ?? new Uint8Array();
      counters.push(readU32(returned[0]?.payload ?? u32s(0), 0), readU32(ball, 0));
      expect(ping.exports.agent_step(tick)).toBe(0);
      expect(pong.exports.agent_step(tick)).toBe(0);
    }
    expect(counters).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('ignore a ball on the other topic or one too short to hold a counter', async () => {
    const pong = await HandDrivenAgent.built('pong');
    expect(pong.exports.agent_init()).toBe(0);
    expect(pong.deliver('pong', u32s(1))).toBe(0);
    expect(pong.deliver('ping', new Uint8Array([1, 2, 3]))).toBe(0);
    expect(pong.take()).toEqual([]);
  });
});

describe('pacer', () => {
  /** Runs one step with `refused` as backpressure(); returns the (serial, burst) of each message sent. */
  function step(pacer: HandDrivenAgent, tick: number, refused: number): Array<[number, number]> {
    pacer.refusedLastTick = refused;
    expect(pacer.exports.agent_step(tick)).toBe(0);
    return pacer.take().map((sent) => {
      expect([sent.topic, sent.payload.length, sent.priority]).toEqual([pacer.topicId('load'), 8, 0]);
      return [readU32(sent.payload, 0), readU32(sent.payload, 4)];
    });
  }

  it('asks backpressure() every step: grows its burst by one while nothing is refused (to 64), halves it (to at least 1) when some were', async () => {
    const pacer = await HandDrivenAgent.built('pacer');
    expect(pacer.exports.agent_init()).toBe(0);
    expect(pacer.backpressureCalls).toBe(0);
    const bursts: number[] = [];
    let serial = 0;
    const run = (tick: number, refused: number): void => {
      const sent = step(pacer, tick, refused);
      const burst = sent.length;
      bursts.push(burst);
      // Serials count every publish, refused ones too; each message carries its step's burst.
      expect(sent).toEqual(Array.from({ length: burst }, (_, index) => [serial + index, burst]));
      serial += burst;
    };
    for (let tick = 1; tick <= 5; tick++) run(tick, 0);
    expect(bursts).toEqual([1, 2, 3, 4, 5]);
    run(6, 2); // two of the 5 refused at the last barrier: halve
    run(7, 0);
    run(8, 1);
    run(9, 1);
    run(10, 1);
    run(11, 7);
    expect(bursts.slice(5)).toEqual([2, 3, 1, 1, 1, 1]);
    expect(pacer.backpressureCalls).toBe(11);
    for (let tick = 12; tick < 12 + 70; tick++) run(tick, 0);
    expect(bursts.slice(-8)).toEqual([64, 64, 64, 64, 64, 64, 64, 64]);
    run(100, 64);
    expect(bursts.at(-1)).toBe(32);
  });

  it('ignores what it is sent directly, and starts over at a burst of 1 after agent_init (a restart)', async () => {
    const pacer = await HandDrivenAgent.built('pacer');
    expect(pacer.exports.agent_init()).toBe(0);
    expect(pacer.deliver('actor/9', u32s(1, 2, 3))).toBe(0);
    expect(pacer.take()).toEqual([]);
    expect(step(pacer, 1, 0)).toEqual([[0, 1]]);
    expect(step(pacer, 2, 0)).toEqual([[1, 2], [2, 2]]);
    expect(pacer.exports.agent_init()).toBe(0);
    expect(step(pacer, 3, 0)).toEqual([[0, 1]]);
  });

  it('fails agent_init with an agent error when its manifest does not grant `load`', async () => {
    const files = builtFiles('pacer');
    const pacer = await HandDrivenAgent.load(files.bytes, { ...files.manifest, capabilities: { publish: [], subscribe: [], models: [] } });
    expect(pacer.exports.agent_init()).toBe(-1);
  });
});

/** hasher.ts's digest, written again from its description. */
/** A `policy` answer built with the generated FlatBuffers code: outputs `value` then `probs`. */
function policyResponse(id: number, probs: number[], errorCode = 0): Uint8Array {
  const builder = new flatbuffers.Builder(256);
  const tensor = (name: string, values: number[]) => {
    const nameOffset = builder.createString(name);
    const dims = Tensor.createDimsVector(builder, [1, values.length]);
    const data = Tensor.createDataVector(builder, new Uint8Array(Float32Array.from(values).buffer));
    return Tensor.createTensor(builder, nameOffset, DType.float32, dims, data);
  };
  const outputs = InferResponse.createOutputsVector(builder, [tensor('value', [9]), tensor('probs', probs)]);
  const model = builder.createString('policy');
  builder.finish(InferResponse.createInferResponse(builder, id, model, 0, outputs, errorCode, 0));
  return builder.asUint8Array().slice();
}

describe('pilot', () => {
  it('asks infer/policy with an InferRequest the generated code reads: id, input obs [1, 16], 64 data bytes aligned', async () => {
    const pilot = await HandDrivenAgent.built('pilot');
    expect(pilot.exports.agent_init()).toBe(0);
    expect(pilot.exports.agent_step(7)).toBe(0);
    const [sent] = pilot.take();
    expect(sent?.topic).toBe(pilot.topicId('infer/policy'));
    const request = InferRequest.getRootAsInferRequest(new flatbuffers.ByteBuffer(sent!.payload));
    expect([request.id(), request.model(), request.inputsLength(), request.resetState()]).toEqual([1, '', 1, false]);
    const input = request.inputs(0)!;
    expect([input.name(), input.dtype(), Array.from(input.dimsArray()!)]).toEqual(['obs', DType.float32, [1, 16]]);
    const data = input.dataArray()!;
    expect((data.byteOffset - sent!.payload.byteOffset) % 8).toBe(0);
    expect(Array.from(new Float32Array(data.slice().buffer))).toEqual(Array.from({ length: 16 }, (_, i) => Math.fround((i + 1 + 7) / 64)));
  });

  it('decides the argmax of `probs`, 255 with the error code on an error, and never traps on a malformed answer', async () => {
    const pilot = await HandDrivenAgent.built('pilot');
    expect(pilot.exports.agent_init()).toBe(0);
    const decided = () => pilot.take().map((sent) => [readU32(sent.payload, 0), sent.payload[4], sent.payload[5], sent.payload.length]);
    expect(pilot.deliver('actor/9', policyResponse(5, [0.1, 0.2, 0.6, 0.1]))).toBe(0);
    expect(decided()).toEqual([[5, 2, 0, 8]]);
    expect(pilot.deliver('actor/9', policyResponse(6, [0.5, 0.5, 0.5, 0.5]))).toBe(0);
    expect(decided()).toEqual([[6, 0, 0, 8]]);
    expect(pilot.deliver('actor/9', policyResponse(7, [], 4))).toBe(0);
    expect(decided()).toEqual([[7, 255, 4, 8]]);
    expect(pilot.deliver('actor/9', policyResponse(8, [1, 2, 3]))).toBe(0); // 3 probs, not 4
    expect(decided()).toEqual([[8, 255, 2, 8]]);
    // Every cut of a good answer, and the answer with each word made a wild offset: each
    // gives one decision (what was readable, else 255 and bad_request) and never a trap.
    const whole = policyResponse(9, [0, 0, 0, 1]);
    expect(pilot.deliver('actor/9', whole.subarray(0, 3))).toBe(0);
    expect(decided()).toEqual([[0, 255, 2, 8]]);
    for (let length = 0; length < whole.length; length++) {
      expect(pilot.deliver('actor/9', whole.subarray(0, length))).toBe(0);
      expect(pilot.take()).toHaveLength(1);
    }
    for (let at = 0; at + 4 <= whole.length; at += 4) {
      const broken = whole.slice();
      new DataView(broken.buffer).setUint32(at, 0xfffffff0, true);
      expect(pilot.deliver('actor/9', broken)).toBe(0);
      expect(pilot.take()).toHaveLength(1);
    }
  });
});

describe('rogue', () => {
  it('publishes to infer/policy every step, and takes a refused infer/vad (NotAllowed) in its stride', async () => {
    const rogue = await HandDrivenAgent.built('rogue');
    expect(rogue.exports.agent_init()).toBe(0);
    expect(rogue.exports.agent_step(2)).toBe(0);
    expect(rogue.exports.agent_step(3)).toBe(0);
    expect(rogue.take().map((sent) => [sent.topic, InferRequest.getRootAsInferRequest(new flatbuffers.ByteBuffer(sent.payload)).id()])).toEqual([
      [rogue.topicId('infer/policy'), 1],
      [rogue.topicId('infer/policy'), 2],
    ]);
  });
});

function hasherDigest(data: Uint8Array, rounds: number): bigint {
  const mask = (1n << 64n) - 1n;
  let hash = 0xcbf29ce484222325n;
  for (const byte of data) hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & mask;
  for (let round = 0; round < rounds; round++) {
    hash ^= BigInt(round);
    hash ^= hash >> 33n;
    hash = (hash * 0xff51afd7ed558ccdn) & mask;
    hash ^= hash >> 33n;
    hash = (hash * 0xc4ceb9fe1a85ec53n) & mask;
    hash ^= hash >> 33n;
  }
  return hash;
}

function hasherResult(payload: Uint8Array): { seq: number; rounds: number; digest: bigint } {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  expect(payload.length).toBe(16);
  return { seq: view.getUint32(0, true), rounds: view.getUint32(4, true), digest: view.getBigUint64(8, true) };
}

describe('hasher', () => {
  it('answers each job on `jobs` with the job seq, the rounds and the digest on `results`', async () => {
    const hasher = await HandDrivenAgent.built('hasher');
    expect(hasher.exports.agent_init()).toBe(0);
    const data = new TextEncoder().encode('lockstep hashes deterministically');
    expect(hasher.deliver('jobs', new Uint8Array([...u32s(250), ...data]), { sender: 3, seq: 41 })).toBe(0);
    // The u64 seq past 2^32: the result carries its low 32 bits.
    expect(hasher.deliver('jobs', new Uint8Array([7, 8]), { sender: 3, seq: 2 ** 32 + 42 })).toBe(0);
    const results = hasher.take();
    expect(results.map((sent) => sent.topic)).toEqual([hasher.topicId('results'), hasher.topicId('results')]);
    expect(hasherResult(results[0]?.payload ?? new Uint8Array())).toEqual({ seq: 41, rounds: 250, digest: hasherDigest(data, 250) });
    // Shorter than a rounds field: hashed whole, default rounds.
    expect(hasherResult(results[1]?.payload ?? new Uint8Array())).toEqual({ seq: 42, rounds: 1000, digest: hasherDigest(new Uint8Array([7, 8]), 1000) });
  });

  it('caps the rounds at 100,000', async () => {
    const hasher = await HandDrivenAgent.built('hasher');
    expect(hasher.exports.agent_init()).toBe(0);
    expect(hasher.deliver('jobs', u32s(0xffff_ffff))).toBe(0);
    const result = hasherResult(hasher.take()[0]?.payload ?? new Uint8Array());
    expect(result.rounds).toBe(100_000);
    expect(result.digest).toBe(hasherDigest(new Uint8Array(), 100_000));
  });
});

describe('sieve', () => {
  it('publishes the bound and the count of primes below it on `results` every step, the bound set by `config` and clamped', async () => {
    const sieve = await HandDrivenAgent.built('sieve');
    expect(sieve.exports.agent_init()).toBe(0);
    const counts: Array<[number, number]> = [];
    const step = (tick: number): void => {
      expect(sieve.exports.agent_step(tick)).toBe(0);
      for (const sent of sieve.take()) {
        expect(sent.topic).toBe(sieve.topicId('results'));
        counts.push([readU32(sent.payload, 0), readU32(sent.payload, 4)]);
      }
    };
    step(1); // default bound
    step(2);
    for (const [tick, bound] of [[3, 100], [4, 0], [5, 3], [6, 1_000_000_000]] as const) {
      expect(sieve.deliver('config', u32s(bound))).toBe(0);
      step(tick);
    }
    expect(counts).toEqual([[20_000, 2262], [20_000, 2262], [100, 25], [2, 0], [3, 1], [100_000, 9592]]);
    // The sieve grew memory for the largest bound and stayed inside the declared maximum.
    expect(sieve.exports.memory.buffer.byteLength).toBeLessThanOrEqual(16 * pageBytes);
  });

  it('logs a warning for a config payload too short to hold a bound, and keeps its bound', async () => {
    const sieve = await HandDrivenAgent.built('sieve');
    expect(sieve.exports.agent_init()).toBe(0);
    expect(sieve.deliver('config', new Uint8Array([1]))).toBe(0);
    expect(sieve.logs).toEqual([{ level: 2, text: 'sieve: config payload shorter than 4 bytes, ignored' }]);
    expect(sieve.exports.agent_step(1)).toBe(0);
    expect(readU32(sieve.take()[0]?.payload ?? new Uint8Array(8), 0)).toBe(20_000);
  });
});

describe('demo agents under the metering pass', () => {
  /** Runs `call` on a metered instance with `fuel`; returns what it returned and the fuel spent. */
  function metered(agent: HandDrivenAgent, fuel: number, call: () => number): { result: number; spent: number } {
    const globals = agent.exports as unknown as Record<string, WebAssembly.Global<'i64'> | WebAssembly.Global<'i32'>>;
    const fuelGlobal = globals[fuelGlobalExport] as WebAssembly.Global<'i64'>;
    (globals[depthGlobalExport] as WebAssembly.Global<'i32'>).value = 0;
    fuelGlobal.value = BigInt(fuel);
    const result = call();
    return { result, spent: fuel - Number(fuelGlobal.value) };
  }

  it("run their worst case (hasher: max rounds over a 64 KiB job; sieve: max bound) within half their manifest's fuelPerStep", async () => {
    for (const name of ['hasher', 'sieve'] as const) {
      const files = builtFiles(name);
      const agent = await HandDrivenAgent.load(await meterModule(files.bytes), files.manifest);
      const fuel = files.manifest.limits.fuelPerStep;
      expect(metered(agent, fuel, () => agent.exports.agent_init()).result).toBe(0);
      let worst: { result: number; spent: number };
      if (name === 'hasher') {
        const job = new Uint8Array(payloadBytesMax).fill(0xa5);
        job.set(u32s(0xffff_ffff));
        worst = metered(agent, fuel, () => agent.deliver('jobs', job));
      } else {
        expect(metered(agent, fuel, () => agent.deliver('config', u32s(0xffff_ffff))).result).toBe(0);
        worst = metered(agent, fuel, () => agent.exports.agent_step(1));
      }
      expect(worst.result).toBe(0);
      expect(worst.spent).toBeLessThan(fuel / 2);
      expect(agent.take()).toHaveLength(1);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The adversarial agents: each fails the way its name says (the host's tests run them metered)

describe('adversarial agents', () => {
  it('grower traps with unreachable once memory.grow fails at the declared maximum', async () => {
    const grower = await HandDrivenAgent.built('grower');
    expect(grower.exports.agent_init()).toBe(0);
    expect(() => grower.exports.agent_step(1)).toThrow(/unreachable/);
    expect(grower.exports.memory.buffer.byteLength).toBe(builtFiles('grower').manifest.limits.memoryPages * pageBytes);
  });

  it('bad_init traps in agent_init', async () => {
    const badInit = await HandDrivenAgent.built('bad_init');
    expect(() => badInit.exports.agent_init()).toThrow(/unreachable/);
  });

  it('bad_code returns 7 from agent_step, after a normal init', async () => {
    const badCode = await HandDrivenAgent.built('bad_code');
    expect(badCode.exports.agent_init()).toBe(0);
    expect(badCode.exports.agent_step(1)).toBe(7);
  });

  it("recursor recurses until something stops it (unmetered here: V8's stack overflow)", async () => {
    const recursor = await HandDrivenAgent.built('recursor');
    expect(recursor.exports.agent_init()).toBe(0);
    expect(() => recursor.exports.agent_step(1)).toThrow(RangeError);
  });

  it('recursor traps at the metering call-depth limit', async () => {
    const files = builtFiles('recursor');
    const recursor = await HandDrivenAgent.load(await meterModule(files.bytes), files.manifest);
    const globals = recursor.exports as unknown as Record<string, WebAssembly.Global<'i64'> | WebAssembly.Global<'i32'>>;
    (globals[fuelGlobalExport] as WebAssembly.Global<'i64'>).value = BigInt(files.manifest.limits.fuelPerStep);
    (globals[depthGlobalExport] as WebAssembly.Global<'i32'>).value = 0;
    expect(() => recursor.exports.agent_step(1)).toThrow(WebAssembly.RuntimeError);
  });

  it('spinner is a loop with no way out (never called here unmetered) and runs out of fuel metered', async () => {
    const files = builtFiles('spinner');
    expect(moduleText(files.bytes)).toMatch(/loop {2};; label = @1\n\s+global\.get 0\n\s+i32\.const 1\n\s+i32\.add\n\s+global\.set 0\n\s+br 0 \(;@1;\)/);
    const spinner = await HandDrivenAgent.load(await meterModule(files.bytes), files.manifest);
    const globals = spinner.exports as unknown as Record<string, WebAssembly.Global<'i64'> | WebAssembly.Global<'i32'>>;
    (globals[fuelGlobalExport] as WebAssembly.Global<'i64'>).value = BigInt(files.manifest.limits.fuelPerStep);
    (globals[depthGlobalExport] as WebAssembly.Global<'i32'>).value = 0;
    expect(spinner.exports.agent_init()).toBe(0);
    (globals[fuelGlobalExport] as WebAssembly.Global<'i64'>).value = BigInt(files.manifest.limits.fuelPerStep);
    expect(() => spinner.exports.agent_step(1)).toThrow(/unreachable/);
  });
});

// ---------------------------------------------------------------------------------------------
// The SDK's whole surface, through a probe agent compiled here

const longLogText = `${'a'.repeat(1023)}\u{1F600}`;
const tooLongTopicName = 't'.repeat(257);

/** An agent that exercises every SDK function; agent_step(tick) picks the case. */
const probeSource = `
import { LogLevel, Status, agent_alloc, backpressure, log, message, outbox, publish, publishBytes, publishString, publishU32, random, randomBelow, topic } from './sdk/lockstep';
export { lockstep_abi_version, agent_alloc } from './sdk/lockstep';

let out: i32 = -1;

export function agent_init(): i32 {
  out = topic('\u00fcn\u00efcode/\u{1F600}');
  return out < 0 ? -1 : Status.Ok;
}

// Echoes the header fields and the payload view's facts, then the payload itself.
export function agent_receive(ptr: i32, len: i32): i32 {
  const received = message(ptr, len);
  const payload = received.payload;
  const echo = outbox(40 + payload.length);
  store<u32>(echo.dataStart, <u32>received.topic);
  store<u32>(echo.dataStart, received.sender, 4);
  store<u64>(echo.dataStart, received.seq, 8);
  store<u64>(echo.dataStart, received.tick, 16);
  store<u32>(echo.dataStart, received.priority, 24);
  store<u32>(echo.dataStart, <u32>payload.byteOffset, 28);
  store<u32>(echo.dataStart, <u32>payload.buffer.byteLength, 32);
  store<u32>(echo.dataStart, <u32>received.payloadLength, 36);
  for (let index = 0; index < payload.length; index++) echo[40 + index] = payload[index];
  if (received.payloadPtr != payload.dataStart) return -9;
  return publish(out, echo, <i32>received.priority);
}

export function agent_step(tick: i32): i32 {
  if (tick == 0) return publishString(out, 'h\u00e9llo \u{1F600} \\uD800!');
  if (tick == 1) { log(LogLevel.Warn, '${longLogText}'); return Status.Ok; }
  if (tick == 2) return publishU32(out, randomBelow(10), 7);
  if (tick == 3) return publishU32(out, random());
  if (tick == 4) return publishBytes(out, 0, 1, 256);
  if (tick == 5) return publishBytes(out, 65536 * 16, 1);
  if (tick == 6) return topic('undeclared');
  if (tick == 7) return topic('${tooLongTopicName}');
  if (tick == 8) return outbox(65537).length;
  if (tick == 9) { const ignored = message(0, 60); return Status.Ok; }
  if (tick == 10) return <i32>randomBelow(0);
  if (tick == 11) { const at = agent_alloc(60); store<u32>(at, 0, 56); const past = message(at, 60).payload; return past[0]; }
  if (tick == 12) return Status.Stop;
  if (tick == 13) { const at = agent_alloc(64); store<u32>(at, 3, 56); const ignored = message(at, 64); return Status.Ok; }
  if (tick == 14) { const at = agent_alloc(59); const ignored = message(at, 59); return Status.Ok; }
  if (tick == 15) return backpressure() + backpressure();
  return Status.Stop;
}

export function agent_shutdown(): i32 {
  return Status.Ok;
}
`;

const probeTopicName = '\u00fcn\u00efcode/\u{1F600}';
const probeManifest = parseManifest(
  {
    name: 'probe',
    version: '1.0.0',
    abi: 2,
    capabilities: { publish: [probeTopicName], subscribe: ['numbers'], models: [] },
    limits: { fuelPerStep: 1_000_000, memoryPages: 16 },
  },
  'the SDK probe',
);
const probeTopics = new Map([...topicIds, [probeTopicName, 21]]);

/** Compiles the probe with the flags build.ts uses, reading the SDK from disk. */
async function compileProbe(): Promise<Uint8Array> {
  let wasm: Uint8Array | null = null;
  const output: string[] = [];
  const stream = { write: (chunk: Uint8Array | string) => void output.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')) };
  const result = await ascMain(
    ['probe.ts', '--baseDir', agentsDirectory, '--outFile', 'probe.wasm', '--maximumMemory', '16', '-O3', '--runtime', 'stub', '--use', 'abort=', '--noColors'],
    {
      readFile: (file, baseDir) => {
        if (file === 'probe.ts') return probeSource;
        const path = resolve(baseDir, file);
        return existsSync(path) ? readFileSync(path, 'utf8') : null;
      },
      writeFile: (file, contents) => {
        if (file === 'probe.wasm' && typeof contents !== 'string') wasm = new Uint8Array(contents);
      },
      stdout: stream,
      stderr: stream,
    },
  );
  if (result.error !== null || wasm === null) throw new Error(`the SDK probe did not compile: ${result.error?.message}\n${output.join('')}`);
  return wasm;
}

describe('SDK (actors/agents/sdk/lockstep.ts)', () => {
  let probeBytes: Uint8Array;
  let probe: HandDrivenAgent;

  beforeAll(async () => {
    probeBytes = await compileProbe();
  }, 60_000);

  beforeAll(async () => {
    probe = await HandDrivenAgent.load(probeBytes, probeManifest, probeTopics);
    expect(probe.exports.agent_init()).toBe(0);
  });

  it('compiles to a module admission accepts, with no start section and no heap', () => {
    expect(() => admitPlugin({ name: 'probe.wasm', bytes: probeBytes, manifest: probeManifest, signature: null }, { ...admissionPolicyDefaults, allowUnsigned: true })).not.toThrow();
    expect(moduleText(probeBytes)).not.toMatch(/\(start /);
  });

  it('topic() encodes the name as UTF-8 (non-ASCII and astral too); -1 for a topic the manifest lacks', () => {
    expect(probe.take()).toEqual([]);
    probe.exports.agent_step(0);
    expect(probe.take()[0]?.topic).toBe(21);
    expect(probe.exports.agent_step(6)).toBe(-1);
  });

  it('message() reads the Envelope (topic, sender, the whole u64 seq and tick, priority) and gives the payload as a view over the inbox', () => {
    const payload = new Uint8Array([5, 6, 7, 250]);
    const seq = 0x1f_1234_5678; // past 2^32: v2 carries all 64 bits, v1 only the low 32
    const tick = 2 ** 40 + 5;
    expect(probe.deliver('numbers', payload, { sender: 0xfffffffe, seq, tick, priority: 200 })).toBe(0);
    const [echo] = probe.take();
    expect(echo?.priority).toBe(200);
    const bytes = echo?.payload ?? new Uint8Array();
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    expect([readU32(bytes, 0), readU32(bytes, 4), view.getBigUint64(8, true), view.getBigUint64(16, true)]).toEqual([
      topicIds.get('numbers'), 0xfffffffe, BigInt(seq), BigInt(tick),
    ]);
    expect([24, 28, 32, 36].map((at) => readU32(bytes, at))).toEqual([200, headerBytes, headerBytes + payloadBytesMax, payload.length]);
    expect([...bytes.subarray(40)]).toEqual([...payload]);
  });

  it('message() reads the fields at the offsets of src/wasm/envelope-layout.ts', () => {
    expect([EnvelopeAt.topic, EnvelopeAt.sender, EnvelopeAt.seq, EnvelopeAt.tick, EnvelopeAt.priority, EnvelopeAt.payloadLength, EnvelopeAt.payload]).toEqual([24, 28, 32, 40, 52, 56, 60]);
    expect(probe.deliver('numbers', new Uint8Array([1]), { seq: 3, tick: 4, priority: 255 })).toBe(0);
    const bytes = probe.take()[0]?.payload ?? new Uint8Array();
    expect([readU32(bytes, 8), readU32(bytes, 16), readU32(bytes, 24), bytes.length]).toEqual([3, 4, 255, 41]);
  });

  it('message() with an empty payload gives an empty view', () => {
    expect(probe.deliver('numbers', new Uint8Array())).toBe(0);
    expect(readU32(probe.take()[0]?.payload ?? new Uint8Array(40), 36)).toBe(0);
  });

  it('backpressure() passes the host\'s count through, unchanged within a tick', () => {
    probe.refusedLastTick = 3;
    probe.backpressureCalls = 0;
    expect(probe.exports.agent_step(15)).toBe(6);
    expect(probe.backpressureCalls).toBe(2);
    probe.refusedLastTick = 0;
    expect(probe.exports.agent_step(15)).toBe(0);
  });

  it('publishString() sends UTF-8, lone surrogates as U+FFFD', () => {
    expect(probe.exports.agent_step(0)).toBe(0);
    const [sent] = probe.take();
    expect(sent?.payload).toEqual(new TextEncoder().encode('h\u00e9llo \u{1F600} \uFFFD!'));
  });

  it('log() sends the level and the line, cut at 1024 bytes on a code point boundary', () => {
    probe.logs.length = 0;
    expect(probe.exports.agent_step(1)).toBe(0);
    expect(probe.logs).toEqual([{ level: 2, text: 'a'.repeat(1023) }]);
  });

  it('randomBelow() rejects the draws that would bias it; random() gives all 32 bits unsigned', () => {
    // 2^32 mod 10 = 6: draws 0..5 are rejected.
    probe.randomDraws.push(3, 5, 17);
    expect(probe.exports.agent_step(2)).toBe(0);
    probe.randomDraws.push(0xffff_fff0);
    expect(probe.exports.agent_step(3)).toBe(0);
    const sent = probe.take();
    expect(sent.map((message) => [readU32(message.payload, 0), message.priority])).toEqual([[7, 7], [0xffff_fff0, 0]]);
    expect(probe.randomDraws).toEqual([]);
  });

  it("passes the host's publish refusals through: -4 for priority 256, -3 for bytes outside memory", () => {
    expect(probe.exports.agent_step(4)).toBe(-4);
    expect(probe.exports.agent_step(5)).toBe(-3);
    expect(probe.take()).toEqual([]);
  });

  it.each([
    [7, 'topic() with a name over 256 UTF-8 bytes'],
    [8, 'outbox() larger than 64 KiB'],
    [9, 'message() anywhere but the inbox'],
    [10, 'randomBelow(0)'],
    [13, 'message() whose payload length field (3) is not len - 60 (4)'],
    [14, 'message() shorter than the 60-byte Envelope header'],
  ])('traps (tick %i): %s', (tick) => {
    expect(() => probe.exports.agent_step(tick)).toThrow(/unreachable/);
  });

  it('bounds-checks the payload view (an empty payload has no byte 0)', () => {
    expect(() => probe.exports.agent_step(11)).toThrow(/unreachable/);
  });

  it('Status.Stop is 1', () => {
    expect(probe.exports.agent_step(12)).toBe(1);
  });
});
