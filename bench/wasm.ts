/**
 * WASM agent benchmarks, through the real runtime (admission skipped with allowUnsigned,
 * metering on):
 * - benchWasmStep: one trivial agent (its step returns 0 at once) on one worker; the wall
 *   time of a tick with it, minus the wall time of a tick of the same runtime shape with
 *   no WASM agent, is the dispatch-and-return overhead of one agent step.
 * - benchWasmRouted: a ring of agents alternating between two workers, every agent
 *   forwarding each token it receives to the next agent's topic; deliveries per second.
 *   `abi` picks the agents' ABI version (docs/abi.md), which decides the layout the host
 *   writes each message in: 2 (the default) an Envelope FlatBuffer, payload at +60; 1 the
 *   16-byte header, payload at +16. The agents are otherwise the same, so the two compare
 *   the cost of the layouts.
 */
import { performance } from 'node:perf_hooks';
import wabtInit from 'wabt';
import { wasmAgentFromParts, type WasmAgentDefinition } from '../actors/wasm-agent.ts';
import { createRuntime, defineActor, defineSystem } from '../src/index.ts';
import type { PluginAbiVersion } from '../src/wasm/abi.ts';
import { envelopeHeaderBytes } from '../src/envelope-layout.ts';
import type { PluginManifest } from '../src/wasm/manifest.ts';

const wabt = await wabtInit();

function assemble(source: string): Uint8Array {
  const module = wabt.parseWat('bench.wat', source);
  try {
    return new Uint8Array(module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

/** Bytes before the payload of an inbound message, per ABI version (docs/abi.md). */
const messageHeaderBytes: Readonly<Record<PluginAbiVersion, number>> = { 1: 16, 2: envelopeHeaderBytes };

/** The ABI glue of a WAT agent of version `abi`: it must match the manifest's (admission). */
function abiExports(abi: PluginAbiVersion): string {
  return `
  (func (export "lockstep_abi_version") (result i32) i32.const ${abi})
  (func (export "agent_alloc") (param i32) (result i32) i32.const 1024)
  (func (export "agent_shutdown") (result i32) i32.const 0)`;
}

function manifest(name: string, abi: PluginAbiVersion, publish: string[], subscribe: string[]): PluginManifest {
  return { name, version: '1.0.0', abi, capabilities: { publish, subscribe, models: [] }, limits: { fuelPerStep: 10_000_000, memoryPages: 1 } };
}

/** A WAT agent as admission sees it: name, bytes, manifest, no signature (the runtimes here allow unsigned). */
interface AgentParts {
  name: string;
  bytes: Uint8Array;
  manifest: PluginManifest;
  signature: null;
}

function agentParts(name: string, abi: PluginAbiVersion, source: string, publish: string[], subscribe: string[]): AgentParts {
  return { name: `${name}.wasm`, bytes: assemble(source), manifest: manifest(name, abi, publish, subscribe), signature: null };
}

function percentile(samples: Float64Array, q: number): number {
  const sorted = Float64Array.from(samples).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Median per-tick wall time (µs) of `ticks` ticks of `step`, after a warm-up. */
async function tickMicros(step: () => Promise<unknown>, ticks: number): Promise<Float64Array> {
  for (let i = 0; i < Math.min(200, ticks); i++) await step();
  const samples = new Float64Array(ticks);
  for (let i = 0; i < ticks; i++) {
    const started = performance.now();
    await step();
    samples[i] = (performance.now() - started) * 1000;
  }
  return samples;
}

export async function benchWasmStep(opts: { ticks?: number } = {}): Promise<{ overheadUsP50: number; tickUsP50: number; baselineUsP50: number }> {
  const ticks = opts.ticks ?? 5_000;
  // It reads no message, so its version does not matter; it stays v1, as it was measured.
  const idle = await wasmAgentFromParts(
    agentParts(
      'idle',
      1,
      `(module (memory (export "memory") 1 1) ${abiExports(1)}
        (func (export "agent_init") (result i32) i32.const 0)
        (func (export "agent_receive") (param i32 i32) (result i32) i32.const 0)
        (func (export "agent_step") (param i32) (result i32) i32.const 0))`,
      [],
      [],
    ),
  );
  const ticker = defineActor({ name: 'ticker', init: () => 0, receive: () => undefined, step: (n) => n + 1 });
  const withAgent = createRuntime(defineSystem({ name: 'step-bench', setup: (s) => (s.spawn(idle, { name: 'idle' }), s.spawn(ticker, { name: 't' })) }), {
    allowUnsigned: true,
    workers: 1,
    // A spare worker starting up (about 0.5 s of CPU) would land in the timed window.
    spareWorkers: 0,
  });
  const baseline = createRuntime(defineSystem({ name: 'step-baseline', setup: (s) => s.spawn(ticker, { name: 't' }) }));
  const agentSamples = await tickMicros(() => withAgent.step(), ticks);
  const baselineSamples = await tickMicros(() => baseline.step(), ticks);
  await withAgent.close();
  await baseline.close();
  const tickUsP50 = percentile(agentSamples, 0.5);
  const baselineUsP50 = percentile(baselineSamples, 0.5);
  return { overheadUsP50: tickUsP50 - baselineUsP50, tickUsP50, baselineUsP50 };
}

/** A ring token: the payload every hop forwards, in bytes. */
const ringTokenBytes = 16;

/**
 * Takes the ring's size, tokens per agent and ABI version. Returns the agents of the ring,
 * unloaded: hop i subscribes to `ring/i`, serves `tokens` tokens to `ring/(i+1)` in
 * agent_init and forwards the payload of every message it receives there, reading it at
 * the version's header size (`ptr + 16, len - 16` in v1, `ptr + 60, len - 60` in v2).
 */
export function ringAgents(count: number, tokens: number, abi: PluginAbiVersion): AgentParts[] {
  const header = messageHeaderBytes[abi];
  const parts: AgentParts[] = [];
  for (let i = 0; i < count; i++) {
    const next = `ring/${(i + 1) % count}`;
    parts.push(
      agentParts(
        `hop${i}`,
        abi,
        `(module
          (import "lockstep" "publish" (func $publish (param i32 i32 i32 i32) (result i32)))
          (import "lockstep" "topic" (func $topic (param i32 i32) (result i32)))
          (memory (export "memory") 1 1)
          (data (i32.const 0) "${next}")
          (global $next (mut i32) (i32.const -1))
          ${abiExports(abi)}
          (func (export "agent_init") (result i32) (local $i i32)
            (global.set $next (call $topic (i32.const 0) (i32.const ${next.length})))
            (loop $serve
              (drop (call $publish (global.get $next) (i32.const 64) (i32.const ${ringTokenBytes}) (i32.const 0)))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $serve (i32.lt_u (local.get $i) (i32.const ${tokens}))))
            i32.const 0)
          (func (export "agent_receive") (param $ptr i32) (param $len i32) (result i32)
            (call $publish (global.get $next) (i32.add (local.get $ptr) (i32.const ${header})) (i32.sub (local.get $len) (i32.const ${header})) (i32.const 0)))
          (func (export "agent_step") (param i32) (result i32) i32.const 0))`,
        [next],
        [`ring/${i}`],
      ),
    );
  }
  return parts;
}

export async function benchWasmRouted(
  opts: { agents?: number; tokensPerAgent?: number; deliveries?: number; workers?: number; abi?: PluginAbiVersion } = {},
): Promise<{ msgsPerS: number; deliveries: number }> {
  const count = opts.agents ?? 16;
  const tokens = opts.tokensPerAgent ?? 64;
  const deliveries = opts.deliveries ?? 1_000_000;
  const definitions: WasmAgentDefinition[] = [];
  for (const parts of ringAgents(count, tokens, opts.abi ?? 2)) definitions.push(await wasmAgentFromParts(parts));
  const runtime = createRuntime(
    defineSystem({ name: 'wasm-ring', setup: (s) => definitions.forEach((d, i) => s.spawn(d, { name: `hop${i}` })) }),
    { allowUnsigned: true, workers: opts.workers ?? 2, mailboxCapacity: tokens * 4 },
  );
  await runtime.run(3); // init, first deliveries
  const perTick = count * tokens;
  const ticks = Math.ceil(deliveries / perTick);
  const before = runtime.snapshot().counters.delivered;
  const started = performance.now();
  await runtime.run(ticks);
  const elapsed = performance.now() - started;
  const delivered = runtime.snapshot().counters.delivered - before;
  await runtime.close();
  return { msgsPerS: delivered / (elapsed / 1000), deliveries: delivered };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await benchWasmStep({ ticks: 3000 }));
  console.log(await benchWasmRouted({ deliveries: 300_000 }));
}
