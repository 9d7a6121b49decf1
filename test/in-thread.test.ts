/**
 * `workers: 0`, the simulation mode: every WASM agent and the inference sessions run on
 * the orchestrator's thread (src/wasm/in-thread-transport.ts, src/inference/channel.ts),
 * through the same AgentHost and SessionHost code the workers run, and the log is the
 * same as with any worker count. killWorker has no worker to kill and is refused.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadWasmAgent } from '../actors/wasm-agent.ts';
import { ConfigError, createRuntime, defineSystem, replay, supervisor, type FaultPlan, type Runtime, type SystemDefinition } from '../src/index.ts';
import { readLog } from '../src/log/index.ts';
import { SessionHost } from '../src/inference/session-host.ts';
import { AgentHost } from '../src/wasm/agent-host.ts';
import { startWorker } from '../src/workers.ts';
import { lockstep } from './fixtures/cli.ts';
import { recipeNamed, recordGolden, goldenLogPath, type GoldenName } from './fixtures/golden/recipes.ts';
import { askerWith, policyPath, type AskerState } from './fixtures/inference.ts';

// Every thread lockstep starts goes through startWorker: count the starts. (A worker's own
// module graph is not this one, so the mock never reaches into a worker.)
vi.mock('../src/workers.ts', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../src/workers.ts')>();
  return { ...actual, startWorker: vi.fn(actual.startWorker) };
});

const devKeyPath = fileURLToPath(new URL('../examples/keys/dev.pub.pem', import.meta.url));
const devKey = readFileSync(devKeyPath, 'utf8');
const demo = fileURLToPath(new URL('../examples/demo/system.ts', import.meta.url));
const agentPath = (name: string) => fileURLToPath(new URL(`../actors/agents/build/${name}.wasm`, import.meta.url));
const load = (name: string) => loadWasmAgent(agentPath(name));
const u32 = (value: number) => new Uint8Array(new Uint32Array([value]).buffer);
const dir = mkdtempSync(join(tmpdir(), 'lockstep-in-thread-'));

const runtimes: Runtime[] = [];
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((runtime) => runtime.abandon()));
  vi.mocked(startWorker).mockClear();
  vi.restoreAllMocks();
});

function start(system: SystemDefinition, workers: number, faults?: FaultPlan): Runtime {
  const runtime = createRuntime(system, { seed: 5, level: 'full', trustedKeys: [devKey], workers, faults });
  runtimes.push(runtime);
  return runtime;
}

/** Runs `ticks` ticks, feeding the counter a number each tick; closes and returns the log. */
async function runLog(system: SystemDefinition, workers: number, ticks: number, faults?: FaultPlan): Promise<{ runtime: Runtime; bytes: Uint8Array }> {
  const runtime = start(system, workers, faults);
  for (let tick = 1; tick <= ticks; tick++) {
    runtime.inject('numbers', u32(tick));
    await runtime.step();
  }
  await runtime.close();
  return { runtime, bytes: runtime.logBytes() };
}

/** A counter, a pilot that asks the policy network every step, and a JS asker of the policy. */
async function mixedSystem(): Promise<SystemDefinition> {
  const [counter, pilot] = await Promise.all([load('counter'), load('pilot')]);
  return defineSystem({
    name: 'in-thread-mixed',
    topics: ['decisions'],
    inference: { models: { policy: policyPath } },
    setup: (b) => {
      b.spawn(counter, { name: 'counter' });
      b.spawn(pilot, { name: 'pilot' });
      b.spawn(askerWith({}), { name: 'asker' });
    },
  });
}

describe('workers: 0 runs everything on the orchestrator thread', () => {
  it('starts no worker thread: the agent host and the session host run here, and the log equals a run on workers', async () => {
    expect(isMainThread).toBe(true);
    const agentHandles = vi.spyOn(AgentHost.prototype, 'handleAt');
    const sessionHandles = vi.spyOn(SessionHost.prototype, 'handle');
    const system = await mixedSystem();

    const inThread = await runLog(system, 0, 6);
    expect(vi.mocked(startWorker)).not.toHaveBeenCalled();
    expect(agentHandles.mock.calls.length).toBeGreaterThan(20);
    expect(sessionHandles.mock.calls.length).toBeGreaterThan(5);
    const answers = inThread.runtime.actor('asker').state<AskerState>()!.answers;
    expect(answers.length).toBe(4); // asked from tick 2 (its first step), answered a tick later
    expect(answers.every((answer) => answer.response.errorCode === 'none')).toBe(true);

    // The check can fail: with one worker, threads start and no agent host runs here.
    agentHandles.mockClear();
    sessionHandles.mockClear();
    const onWorkers = await runLog(system, 1, 6);
    expect(vi.mocked(startWorker).mock.calls.map(([url]) => url.pathname.split('/').at(-1))).toEqual(expect.arrayContaining(['host-worker.ts', 'worker.ts']));
    expect(agentHandles).not.toHaveBeenCalled();
    expect(sessionHandles).not.toHaveBeenCalled();
    expect(Buffer.compare(inThread.bytes, onWorkers.bytes)).toBe(0);
  });

  it('crashes an agent that traps, returns an unknown code, runs out of memory or recurses too deep exactly as a worker does', async () => {
    const names = ['bad_init', 'bad_code', 'grower', 'recursor', 'spinner'] as const;
    const definitions = await Promise.all(names.map(load));
    const counter = await load('counter');
    const system = defineSystem({
      name: 'in-thread-crashes',
      setup: (b) => {
        definitions.forEach((definition, i) => b.spawn(definition, { name: names[i] }));
        b.spawn(counter, { name: 'counter' });
      },
    });
    const inThread = await runLog(system, 0, 5);
    const crashes = Object.fromEntries(inThread.runtime.snapshot().actors.map((actor) => [actor.name, actor.lastCrash?.message ?? null]));
    expect(crashes).toMatchObject({
      bad_init: expect.stringMatching(/^trap: trap: .*unreachable/),
      bad_code: expect.stringMatching(/^unknown return code: unknown return code 7/),
      grower: expect.stringMatching(/^memory limit: /),
      recursor: expect.stringMatching(/^call depth exceeded: call depth exceeded 1000 frames/),
      spinner: expect.stringMatching(/^fuel exhausted: /),
      counter: null,
    });
    const onWorker = await runLog(system, 1, 5);
    expect(Buffer.compare(inThread.bytes, onWorker.bytes)).toBe(0);
  });

  it('refuses a killWorker fault (logged, the run goes on) and runtime.killWorker, saying there is no worker with workers: 0', async () => {
    const counter = await load('counter');
    const system = defineSystem({
      name: 'in-thread-kill',
      setup: (b) => void b.spawn(supervisor({ strategy: 'one_for_one' }, [{ id: 'counter', start: counter }]), { name: 'root' }),
    });
    const faults: FaultPlan = { seed: 1, faults: [{ tick: 3, kind: 'killWorker', worker: 0 }, { tick: 4, kind: 'crash', actor: 'root/counter' }] };
    const { runtime, bytes } = await runLog(system, 0, 6, faults);
    const records = readLog(bytes).ticks;
    const refusals = records.flatMap((record) => record.drops.filter((drop) => drop.reason.includes('killWorker')).map((drop) => `${record.tick}: ${drop.reason}`));
    expect(refusals).toEqual([
      "3: control request refused: killWorker: no worker 0: with workers: 0 every WASM agent runs on the orchestrator's thread, so there is no worker to kill",
    ]);
    // The crash fault after it applies as usual: crashed at 4, restarted at 5.
    const counterId = runtime.actorId('root/counter');
    const ticksOf = (to: string) => records.filter((record) => record.tick <= 6 && record.lifecycle.some((event) => event.actor === counterId && event.to === to)).map((record) => record.tick);
    expect([ticksOf('crashed'), ticksOf('restarting')]).toEqual([[4], [5]]);
    // A worker count that never existed is refused the same way: the same pool rule.
    const live = start(system, 0);
    await live.run(2);
    const killed = await live.killWorker(0).catch((error: unknown) => error);
    expect(killed).toBeInstanceOf(ConfigError);
    expect((killed as Error).message).toBe("no worker 0: with workers: 0 every WASM agent runs on the orchestrator's thread, so there is no worker to kill");
    await live.run(2);
    expect(live.snapshot().actors.find((actor) => actor.name === 'root/counter')?.lifecycle).toBe('running');
    // Replay verifies: the refusal is a logged input (replay it with workers: 0 too, as any
    // run with killWorker faults is replayed with the worker count it was recorded with).
    const report = await replay(bytes, system, { trustedKeys: [devKey], workers: 0 });
    expect(report.bitExact).toBe(true);
  });

  it('has no inference worker to kill, and still refuses worker counts outside 0..64', async () => {
    const system = defineSystem({ name: 'in-thread-infer', inference: { models: { policy: policyPath } }, setup: (b) => void b.spawn(askerWith({}), { name: 'asker' }) });
    const runtime = start(system, 0);
    await runtime.run(3);
    await expect(runtime.killInferenceWorker()).rejects.toThrow(/^no inference worker to kill: with workers: 0 the inference sessions run on the orchestrator's thread$/);
    expect(runtime.actor('asker').state<AskerState>()!.answers.map((answer) => answer.response.errorCode)).toEqual(['none']);
    const counter = await load('counter');
    const agents = defineSystem({ name: 'bad-workers', setup: (b) => void b.spawn(counter, { name: 'counter' }) });
    for (const workers of [-1, 65, 1.5]) {
      expect(() => createRuntime(agents, { trustedKeys: [devKey], workers })).toThrow(/^workers must be an integer in 0\.\.64 \(0: every agent on the orchestrator's thread\), got /);
    }
  });

  it('replays the golden logs bit for bit with workers: 0, and a fresh in-thread run of the WASM recipe writes the golden bytes', async () => {
    const golden = (name: GoldenName) => new Uint8Array(gunzipSync(readFileSync(goldenLogPath(name))));
    for (const name of ['wasm', 'inference', 'demo'] as const) {
      const recipe = recipeNamed(name);
      const { system } = await recipe.load();
      const report = await replay(golden(name), system, { trustedKeys: [devKey], workers: 0 });
      expect(report.bitExact, name).toBe(true);
      expect(report.ticks, name).toBe(recipe.ticks);
    }
    const wasm = recipeNamed('wasm');
    const fresh = await recordGolden({ ...wasm, workers: 0 });
    expect(Buffer.compare(fresh.bytes, golden('wasm'))).toBe(0);
  }, 120_000);
});

describe('lockstep run --workers 0', () => {
  it('runs the demo in one thread, writes the same log as on workers, and replays it with --workers 0', async () => {
    const zero = join(dir, 'zero.log');
    const two = join(dir, 'two.log');
    const ran = await lockstep('run', demo, '--ticks', '40', '--seed', '3', '--log', zero, '--level', 'full', '--quiet', '--trust', devKeyPath, '--workers', '0');
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    expect(ran.stdout).toMatch(/ran market-demo: 40 ticks, \d+ messages delivered/);
    const onWorkers = await lockstep('run', demo, '--ticks', '40', '--seed', '3', '--log', two, '--level', 'full', '--quiet', '--trust', devKeyPath, '--workers', '2');
    expect(onWorkers.code).toBe(0);
    expect(Buffer.compare(readFileSync(zero), readFileSync(two))).toBe(0);
    const replayed = await lockstep('replay', two, demo, '--quiet', '--trust', devKeyPath, '--workers', '0');
    expect(replayed.code).toBe(0);
    expect(replayed.stdout).toMatch(/replay verified: 40 ticks, bit for bit/);
    const refused = await lockstep('run', demo, '--ticks', '1', '--log', join(dir, 'bad.log'), '--quiet', '--trust', devKeyPath, '--workers', '-1');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/--workers must be an integer in 0\.\.64/);
  }, 120_000);
});
