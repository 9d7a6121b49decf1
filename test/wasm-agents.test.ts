// WASM agents end to end: real signed modules from actors/agents/build, admitted, metered,
// run on real worker threads, driven through the runtime.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { loadWasmAgent, wasmAgentFromParts, type WasmAgentDefinition } from '../actors/wasm-agent.ts';
import { createRuntime, defineActor, defineSystem, generateKeyPair, replay, supervisor, type Runtime, type SystemBuilder } from '../src/index.ts';
import { readLog } from '../src/log/index.ts';
import { loadPluginFiles } from '../src/wasm/signing.ts';
import { wat } from './fixtures/wat.ts';

const devKey = readFileSync(fileURLToPath(new URL('../examples/keys/dev.pub.pem', import.meta.url)), 'utf8');
const agentPath = (name: string) => fileURLToPath(new URL(`../actors/agents/build/${name}.wasm`, import.meta.url));
const load = (name: string) => loadWasmAgent(agentPath(name));
const u32 = (value: number) => new Uint8Array(new Uint32Array([value]).buffer);
const readU32 = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);

const collector = defineActor({
  name: 'collector',
  subscribe: (args: { topics: string[] }) => args.topics,
  init: () => [] as string[],
  receive: (seen, message, ctx) => {
    seen.push(`${ctx.tick}:${message.topicName}:${ctx.name === '' ? '' : readU32(message.payload)}`);
    return seen;
  },
});

const runtimes: Runtime[] = [];
function start(setup: (builder: SystemBuilder) => void, options: { workers?: number; allowUnsigned?: boolean; topics?: string[] } = {}): Runtime {
  const runtime = createRuntime(defineSystem({ name: 'wasm-test', topics: options.topics, setup }), {
    seed: 5,
    level: 'full',
    trustedKeys: [devKey],
    workers: options.workers ?? 2,
    allowUnsigned: options.allowUnsigned,
  });
  runtimes.push(runtime);
  return runtime;
}

afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((runtime) => runtime.abandon()));
});

function crashOf(runtime: Runtime, name: string): string | undefined {
  return runtime.snapshot().actors.find((actor) => actor.name === name)?.lastCrash?.message;
}

describe('WASM agents on the worker pool', () => {
  it('runs a signed AssemblyScript counter: init, messages, step, publish', async () => {
    const counter = await load('counter');
    const runtime = start((s) => {
      s.spawn(counter, { name: 'counter' });
      s.spawn(collector, { name: 'sink', args: { topics: ['counts'] } });
    });
    await runtime.step(); // tick 1: init on the worker; running at the barrier
    expect(runtime.snapshot().actors.map((a) => a.lifecycle)).toEqual(['running', 'running']);
    for (const value of [3, 4, 5]) runtime.inject('numbers', u32(value));
    await runtime.step(); // tick 2: delivered, counted, count published
    runtime.inject('numbers', u32(9));
    await runtime.run(3);
    expect(runtime.actor('sink').state<string[]>()).toEqual(['3:counts:3', '4:counts:4']);
  });

  it('rallies ping and pong between agents on different workers', async () => {
    const [ping, pong] = await Promise.all([load('ping'), load('pong')]);
    const runtime = start((s) => {
      s.spawn(ping, { name: 'ping' }); // id 1 → worker 1
      s.spawn(pong, { name: 'pong' }); // id 2 → worker 0
      s.spawn(collector, { name: 'watch', args: { topics: ['ping', 'pong'] } });
    });
    await runtime.run(8);
    const seen = runtime.actor('watch').state<string[]>()!;
    // Ping serves 0 in init (tick 1); each hop adds one, a tick per hop.
    expect(seen.slice(0, 4)).toEqual(['2:ping:0', '3:pong:1', '4:ping:2', '5:pong:3']);
  });

  it('stops a runaway agent by fuel at the same point every run, and the others go on', async () => {
    const [spinner, counter] = await Promise.all([load('spinner'), load('counter')]);
    const once = async () => {
      const runtime = start((s) => {
        s.spawn(spinner, { name: 'spinner' });
        s.spawn(counter, { name: 'counter' });
        s.spawn(collector, { name: 'sink', args: { topics: ['counts'] } });
      });
      runtime.inject('numbers', u32(1));
      await runtime.run(4);
      runtime.inject('numbers', u32(2));
      await runtime.run(2);
      const chain = await runtime.close();
      return { runtime, chain };
    };
    const first = await once();
    const second = await once();
    expect(crashOf(first.runtime, 'spinner')).toMatch(/^fuel exhausted: fuel exhausted: the agent used more than its 200000 fuel this tick/);
    expect(first.runtime.actor('sink').state<string[]>()).toEqual(['3:counts:1', '6:counts:2']);
    expect(second.chain).toBe(first.chain);
    const crashTick = readLog(first.runtime.logBytes()).ticks.find((t) => t.lifecycle.some((e) => e.to === 'crashed'))?.tick;
    expect(crashTick).toBe(2);
  });

  it('crashes only the agent that traps, loops, recurses, grows memory or returns an unknown code', async () => {
    const names = ['bad_init', 'bad_code', 'grower', 'recursor'] as const;
    const definitions = await Promise.all(names.map(load));
    const counter = await load('counter');
    const runtime = start((s) => {
      definitions.forEach((definition, i) => s.spawn(definition, { name: names[i] }));
      s.spawn(counter, { name: 'counter' });
      s.spawn(collector, { name: 'sink', args: { topics: ['counts'] } });
    });
    await runtime.run(3);
    runtime.inject('numbers', u32(1));
    await runtime.run(2);
    expect(crashOf(runtime, 'bad_init')).toMatch(/^trap: trap: .*unreachable/);
    expect(crashOf(runtime, 'bad_code')).toMatch(/unknown return code 7; ABI v2 knows 0 \(ok\), 1 \(stop\) and negative errors/);
    expect(crashOf(runtime, 'grower')).toMatch(/^memory limit: trapped with its memory grown to the declared maximum of 16 pages \(1024 KiB\): unreachable/);
    expect(crashOf(runtime, 'recursor')).toMatch(/^call depth exceeded: call depth exceeded 1000 frames/);
    expect(runtime.snapshot().actors.find((a) => a.name === 'counter')?.lifecycle).toBe('running');
    expect(runtime.actor('sink').state<string[]>()).toEqual(['5:counts:1']);
  });

  it('refuses at run time, and logs, a publish to a topic the manifest does not declare', async () => {
    // Publishes to topic id 1 (the first inbox; 0 is the reserved control topic), which its manifest does not grant.
    const bytes = wat(`(module
      (import "lockstep" "publish" (func $publish (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1 1)
      (global $result (mut i32) (i32.const 0))
      (func (export "lockstep_abi_version") (result i32) i32.const 1)
      (func (export "agent_alloc") (param i32) (result i32) i32.const 1024)
      (func (export "agent_init") (result i32) i32.const 0)
      (func (export "agent_receive") (param i32 i32) (result i32) i32.const 0)
      (func (export "agent_step") (param i32) (result i32)
        (call $publish (i32.const 1) (i32.const 0) (i32.const 4) (i32.const 0)))
      (func (export "agent_shutdown") (result i32) i32.const 0))`);
    const manifest = { name: 'sneaky', version: '1.0.0', abi: 1 as const, capabilities: { publish: ['allowed'], subscribe: [], models: [] }, limits: { fuelPerStep: 10_000, memoryPages: 1 } };
    const sneaky = await wasmAgentFromParts({ name: 'sneaky.wasm', bytes, manifest, signature: null });
    const runtime = start((s) => s.spawn(sneaky, { name: 'sneaky' }), { allowUnsigned: true });
    await runtime.run(3);
    const log = readLog((await runtime.close(), runtime.logBytes()));
    const refusals = log.ticks.flatMap((t) => t.drops).filter((d) => d.reason.includes('capabilities.publish'));
    // Step returned -1 (the refusal), an agent error: refused once, then crashed.
    expect(refusals.map((d) => d.reason)).toEqual(["refused: agent 'sneaky' may not publish to 'actor/1' (not in its manifest's capabilities.publish)"]);
    expect(crashOf(runtime, 'sneaky')).toMatch(/agent error -1/);
  });

  it('takes down only the agents of a worker that dies, replaces the worker, and runs on', async () => {
    const [pingA, counter] = await Promise.all([load('ping'), load('counter')]);
    const runtime = start(
      (s) => {
        s.spawn(pingA, { name: 'ping' }); // id 1 → worker 1
        s.spawn(counter, { name: 'counter' }); // id 2 → worker 0
        s.spawn(collector, { name: 'sink', args: { topics: ['counts'] } });
      },
      { topics: ['pong'] },
    );
    await runtime.run(2);
    await runtime.killWorker(1);
    runtime.inject('numbers', u32(1));
    await runtime.run(2);
    expect(crashOf(runtime, 'ping')).toMatch(/worker 1 exited/);
    expect(runtime.snapshot().actors.find((a) => a.name === 'counter')?.lifecycle).toBe('running');
    expect(runtime.actor('sink').state<string[]>()).toEqual(['4:counts:1']);
    // The replacement worker takes new agents.
    const late = await load('counter');
    runtime.spawn(late, { name: 'late-counter' }); // id 4 → worker 0; id 3 is the sink
    const pong = await load('pong');
    runtime.spawn(pong, { name: 'late-pong' }); // id 5 → worker 1, the replacement
    await runtime.run(2);
    expect(runtime.snapshot().actors.find((a) => a.name === 'late-pong')?.lifecycle).toBe('running');
  });

  it('refuses to spawn a module signed by a key the runtime does not trust', async () => {
    const counter = await load('counter');
    const system = defineSystem({ name: 'untrusted', setup: (s) => s.spawn(counter, { name: 'c' }) });
    expect(() => createRuntime(system)).toThrow(/module 'counter.wasm' is signed by key [0-9a-f]{16}, which is not trusted here \(trusted: none\); if you trust its owner, add that key's public PEM to the runtime's trustedKeys/);
  });

  it('runs with the same verbs as any system: each step resolves when the workers are done', async () => {
    const counter: WasmAgentDefinition = await load('counter');
    const runtime = start((s) => s.spawn(counter, { name: 'c' }));
    await runtime.start();
    const first = await runtime.step();
    expect(first.tick).toBe(1);
    expect(first.lifecycle.map((e) => e.to)).toEqual(['created', 'initializing', 'running']);
    expect((await runtime.run(2)).ticks).toBe(3);
    expect(await runtime.close()).toBe(await runtime.close());
  });
});

describe('backpressure, told to the agent', () => {
  it('a publish the barrier refuses is a drop saying so, and backpressure() tells the agent at its next activation', async () => {
    const pacer = await load('pacer');
    // Its mailbox holds 8: a burst of more than 8 in one tick meets a full mailbox.
    const slow = defineActor({
      name: 'slow',
      subscribe: ['load'],
      init: () => [] as number[],
      receive: (bursts, message) => {
        bursts.push(new DataView(message.payload.buffer, message.payload.byteOffset, 8).getUint32(4, true));
        return bursts;
      },
    });
    const runtime = start((s) => {
      s.spawn(pacer, { name: 'pacer' });
      s.spawn(slow, { name: 'slow', mailboxCapacity: 8 });
    });
    await runtime.run(40);
    await runtime.close();
    const log = readLog(runtime.logBytes());
    const refusals = log.ticks.flatMap((t) => t.drops).filter((d) => d.reason.startsWith('refused: mailbox full'));
    expect(refusals.length).toBeGreaterThan(0);
    expect(new Set(refusals.map((d) => d.reason))).toEqual(new Set(['refused: mailbox full, the agent reads the count with backpressure() at its next activation']));
    // The bursts grow by one from 1 while nothing is refused, then halve after a refusal.
    const bursts = runtime.actor('slow').state<number[]>()!;
    const sizes = bursts.filter((size, i) => i === 0 || size !== bursts[i - 1]);
    expect(sizes.slice(0, 9)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // The burst of 9 met the full mailbox; the agent heard of it and halved to 4.
    expect(sizes[9]).toBe(4);
    expect(Math.max(...bursts)).toBeLessThanOrEqual(9);
    // The same run replays.
    const { replay } = await import('../src/index.ts');
    expect((await replay(runtime.logBytes(), defineSystem({ name: 'wasm-test', setup: (s) => (s.spawn(pacer, { name: 'pacer' }), s.spawn(slow, { name: 'slow', mailboxCapacity: 8 })) }), { trustedKeys: [devKey] })).bitExact).toBe(true);
  });
});

describe('the wall-clock watchdog', () => {
  it('terminates a worker that overruns, crashes its agents with a nondeterministic-fault note, and goes on', async () => {
    // A step that counts to 2^40: metered like any code, but with a budget that lets it run
    // for hours, so only the watchdog can stop it.
    const bytes = wat(`(module
      (memory (export "memory") 1 1)
      (func (export "lockstep_abi_version") (result i32) i32.const 1)
      (func (export "agent_alloc") (param i32) (result i32) i32.const 1024)
      (func (export "agent_init") (result i32) i32.const 0)
      (func (export "agent_receive") (param i32 i32) (result i32) i32.const 0)
      (func (export "agent_step") (param $tick i32) (result i32) (local $i i64)
        (if (i32.lt_u (local.get $tick) (i32.const 3)) (then (return (i32.const 0))))
        (loop $spin
          (local.set $i (i64.add (local.get $i) (i64.const 1)))
          (br_if $spin (i64.lt_u (local.get $i) (i64.const 1099511627776))))
        i32.const 0)
      (func (export "agent_shutdown") (result i32) i32.const 0))`);
    const manifest = { name: 'marathon', version: '1.0.0', abi: 1 as const, capabilities: { publish: [], subscribe: [], models: [] }, limits: { fuelPerStep: 2 ** 52, memoryPages: 1 } };
    const marathon = await wasmAgentFromParts({ name: 'marathon.wasm', bytes, manifest, signature: null });
    const counter = await load('counter');
    const runtime = createRuntime(
      defineSystem({
        name: 'watchdog',
        setup: (s) => {
          s.spawn(marathon, { name: 'marathon' }); // id 1 → worker 1
          s.spawn(counter, { name: 'counter' }); // id 2 → worker 0
          s.spawn(collector, { name: 'sink', args: { topics: ['counts'] } });
        },
      }),
      { trustedKeys: [devKey], allowUnsigned: true, workers: 2, watchdogMs: 200 },
    );
    runtimes.push(runtime);
    await runtime.run(2); // start-up is exempt from the watchdog
    runtime.inject('numbers', u32(1));
    await runtime.run(3);
    expect(crashOf(runtime, 'marathon')).toMatch(
      /watchdog: worker 1 did not finish tick 3 within 200 ms and was terminated \(a nondeterministic fault: replay cannot reproduce it\)/,
    );
    expect(runtime.actor('sink').state<string[]>()).toEqual(['4:counts:1']);
  });
});

describe('runtime calls around a WASM tick (review findings)', () => {
  it('refuses calls while a tick is in flight, and the run still replays', async () => {
    const counter = await load('counter');
    const system = defineSystem({ name: 'in-flight', setup: (s) => s.spawn(counter, { name: 'counter' }) });
    const runtime = createRuntime(system, { trustedKeys: [devKey], level: 'full' });
    runtimes.push(runtime);
    const ticking = runtime.step();
    expect(() => runtime.inject('numbers', u32(1))).toThrow(/a tick is still running; await step\(\)\/run\(\)/);
    await expect(runtime.step()).rejects.toThrow(/step: a tick is still running/);
    await expect(runtime.close()).rejects.toThrow(/close: a tick is still running/);
    await ticking;
    runtime.inject('numbers', u32(1));
    await runtime.run(2);
    await runtime.close();
    const { replay } = await import('../src/index.ts');
    expect((await replay(runtime.logBytes(), system, { trustedKeys: [devKey] })).bitExact).toBe(true);
  });

  it('starts on the first run() and closes with the shutdown record after the last tick', async () => {
    const counter = await load('counter');
    const runtime = start((s) => s.spawn(counter, { name: 'counter' }));
    expect(runtime.tick).toBe(0);
    await runtime.run(2);
    await runtime.close();
    expect(readLog(runtime.logBytes()).ticks.map((t) => t.tick)).toEqual([1, 2, 3]);
  });

  it('never starts an actor stopped before its first tick', async () => {
    const counter = await load('counter');
    const runtime = start((s) => {
      s.spawn(counter, { name: 'counter' });
      s.spawn(collector, { name: 'sink', args: { topics: ['counts'] } });
    });
    runtime.actor('counter').stop();
    runtime.actor('sink').stop();
    await runtime.run(2);
    expect(runtime.snapshot().actors.map((a) => a.lifecycle)).toEqual(['stopped', 'stopped']);
  });
});

describe('hostile agents (security review)', () => {
  const agentWat = (step: string, memory = '(memory (export "memory") 1 1)') => `(module
      (import "lockstep" "publish" (func $publish (param i32 i32 i32 i32) (result i32)))
      ${memory}
      (func (export "lockstep_abi_version") (result i32) i32.const 1)
      (func (export "agent_alloc") (param i32) (result i32) i32.const 1024)
      (func (export "agent_init") (result i32) i32.const 0)
      (func (export "agent_receive") (param i32 i32) (result i32) i32.const 0)
      (func (export "agent_step") (param i32) (result i32) ${step})
      (func (export "agent_shutdown") (result i32) i32.const 0))`;
  const manifest = (memoryPages = 1) => ({ name: 'hostile', version: '1.0.0', abi: 1 as const, capabilities: { publish: [], subscribe: [], models: [] }, limits: { fuelPerStep: 100_000, memoryPages } });

  it('a publish to a topic id that does not exist is refused and logged; the runtime goes on', async () => {
    const bytes = wat(agentWat('(drop (call $publish (i32.const 12345) (i32.const 0) (i32.const 0) (i32.const 0))) i32.const 0'));
    const hostile = await wasmAgentFromParts({ name: 'hostile.wasm', bytes, manifest: manifest(), signature: null });
    const runtime = start((s) => s.spawn(hostile, { name: 'hostile' }), { allowUnsigned: true });
    await runtime.run(3);
    await runtime.close();
    const reasons = readLog(runtime.logBytes()).ticks.flatMap((t) => t.drops).map((d) => d.reason);
    expect(reasons).toContain("refused: agent 'hostile' may not publish to topic #12345 (no such topic) (not in its manifest's capabilities.publish)");
    expect(runtime.snapshot().actors[0]?.lifecycle).toBe('stopped');
  });

  it('applies the default memory limit when the caller gives no limits', async () => {
    const bytes = wat(agentWat('i32.const 0', '(memory (export "memory") 1 65536)'));
    await expect(wasmAgentFromParts({ name: 'greedy.wasm', bytes, manifest: manifest(1), signature: null })).rejects.toThrow(
      /memory maximum|memory/,
    );
  });

  it('never runs an unmetered module planted in the metered-module cache', async () => {
    const { MeteredModuleCache, sha256Hex } = await import('../src/wasm/metering.ts');
    const { callDepthMaxDefault } = await import('../src/limits.ts');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const directory = mkdtempSync(join(tmpdir(), 'lockstep-plant-'));
    const benign = wat(agentWat('i32.const 0'));
    const evil = wat(agentWat('(loop $forever (br $forever)) i32.const 0'));
    writeFileSync(join(directory, `${MeteredModuleCache.keyOf(sha256Hex(benign), callDepthMaxDefault)}.wasm`), evil);
    const cache = new MeteredModuleCache({ directory });
    const definition = await wasmAgentFromParts({ name: 'benign.wasm', bytes: benign, manifest: manifest(), signature: null }, { cache });
    expect(cache.stats.diskHits).toBe(0);
    expect(WebAssembly.Module.exports(definition.module).map((e) => e.name)).toContain('lockstep_fuel');
  });
});

describe('trust', () => {
  it('refuses a hand-made definition that claims a trusted keyId', async () => {
    const counter = await load('counter');
    const forged = { ...counter, module: (await load('spinner')).module };
    const system = defineSystem({ name: 'forged', setup: (s) => s.spawn(forged, { name: 'forged' }) });
    expect(() => createRuntime(system, { trustedKeys: [devKey] })).toThrow(/was not made by loadWasmAgent\/wasmAgentFromParts/);
  });

  it("is the runtime's: one loaded agent runs where its key is trusted and is refused where it is not", async () => {
    const counter = await load('counter');
    const system = defineSystem({ name: 'trust-once', setup: (s) => s.spawn(counter, { name: 'c' }) });
    const refused = (options: Parameters<typeof createRuntime>[1]) => {
      try {
        createRuntime(system, options);
      } catch (error) {
        return (error as { code?: string }).code;
      }
      return 'created';
    };
    expect(refused({})).toBe('admission_untrusted');
    expect(refused({ trustedKeys: [generateKeyPair().publicKeyPem] })).toBe('admission_untrusted');
    const runtime = createRuntime(system, { trustedKeys: [devKey], level: 'full' });
    runtimes.push(runtime);
    await runtime.run(2);
    await runtime.close();
    // Replay checks with its own trust too.
    await expect(replay(runtime.logBytes(), system)).rejects.toThrow(/signed by key b38cca2f29653abe, which is not trusted here/);
    expect((await replay(runtime.logBytes(), system, { trustedKeys: [devKey] })).bitExact).toBe(true);
  });

  it('allowUnsigned runs an unsigned agent; without it the runtime refuses it, naming the file', async () => {
    const counter = await load('counter');
    const files = loadPluginFiles(agentPath('counter'));
    const unsigned = await wasmAgentFromParts({ ...files, signature: null });
    expect(unsigned.keyId).toBeNull();
    const system = defineSystem({ name: 'unsigned', setup: (s) => s.spawn(unsigned, { name: 'c' }) });
    expect(() => createRuntime(system, { trustedKeys: [devKey] })).toThrow(/module 'counter.wasm' is not signed; sign it with 'lockstep sign/);
    const runtime = createRuntime(system, { allowUnsigned: true });
    runtimes.push(runtime);
    await runtime.run(2);
    expect(runtime.snapshot().actors[0]?.lifecycle).toBe('running');
    expect(counter.keyId).toBe('b38cca2f29653abe');
  });

  it("refuses a module whose bytes are not the ones its signature covers, at spawn", async () => {
    const pong = loadPluginFiles(agentPath('pong'));
    const ping = loadPluginFiles(agentPath('ping'));
    // ping's bytes with pong's manifest and signature: structurally a fine agent.
    const swapped = await wasmAgentFromParts({ ...pong, bytes: ping.bytes, name: 'swapped.wasm' });
    const system = defineSystem({ name: 'swapped', setup: (s) => s.spawn(swapped, { name: 'swapped' }) });
    expect(() => createRuntime(system, { trustedKeys: [devKey] })).toThrow(
      /module 'swapped.wasm': the signature by key b38cca2f29653abe does not match; the module bytes or its manifest changed after signing/,
    );
  });

  it('checks every agent of a tree and every registered definition when the system is built, before any tick', async () => {
    const counter = await load('counter');
    const pong = await load('pong');
    const tree = supervisor({ strategy: 'one_for_one' }, [{ id: 'inner', start: supervisor({ strategy: 'one_for_one' }, [{ id: 'c', start: counter }]) }]);
    expect(() => createRuntime(defineSystem({ name: 'tree', setup: (s) => s.spawn(tree, { name: 'root' }) }))).toThrow(/counter.wasm' is signed by key/);
    expect(() => createRuntime(defineSystem({ name: 'registered', setup: (s) => s.register(pong) }))).toThrow(/pong.wasm' is signed by key/);
    const runtime = createRuntime(defineSystem({ name: 'tree', setup: (s) => s.spawn(tree, { name: 'root' }) }), { trustedKeys: [devKey] });
    runtimes.push(runtime);
    await runtime.run(2);
    expect(runtime.snapshot().actors.find((a) => a.name === 'root/inner/c')?.lifecycle).toBe('running');
  });

  it('loadWasmAgent takes no keys: a trust option there is refused with where trust goes', async () => {
    for (const option of ['trustedKeysPem', 'trustedKeys', 'allowUnsigned']) {
      await expect(loadWasmAgent(agentPath('counter'), { [option]: [devKey] } as never)).rejects.toThrow(
        new RegExp(`loading WASM agent 'counter.wasm': '${option}' is not an option here; trust is set once, on the runtime that runs the agent: createRuntime\\(system, \\{ trustedKeys: \\[publicKeyPem\\] \\}\\)`),
      );
    }
    await expect(loadWasmAgent(agentPath('counter'), { callDepth: 10 } as never)).rejects.toThrow(
      "loading WASM agent 'counter.wasm': unknown option 'callDepth'; did you mean 'callDepthMax'? known options: moduleBytesMax, memoryPagesMax, cache, callDepthMax",
    );
  });
});
