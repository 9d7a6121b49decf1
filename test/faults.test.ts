/**
 * Fault plans (src/faults.ts): checked with errors that name the fault and the field, drawn
 * from a seed as a pure function, and taken in as inputs of the tick they are due in, so the
 * log holds them and replay repeats them without the plan. Also `lockstep run --faults`.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, checkFaultPlan, createRuntime, defineActor, defineSystem, loadFaultPlan, loadWasmAgent, randomFaultPlan, replay, supervisor, type FaultPlan, type RandomFaultOptions, type Runtime, type SystemDefinition, type TickRecord } from 'lockstep';
import { readLog } from 'lockstep/log';
import { malformedBytes } from '../src/faults.ts';
import { controlTopicName, refusalChannel } from '../src/kernel.ts';
import { FaultChannel } from '../src/faults.ts';
import { lockstep } from './fixtures/cli.ts';
import faultFixture, { ticker, tally } from './fixtures/fault-system.ts';

const devKeyPath = fileURLToPath(new URL('../examples/keys/dev.pub.pem', import.meta.url));
const devKey = readFileSync(devKeyPath, 'utf8');
const fixturePath = fileURLToPath(new URL('./fixtures/fault-system.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'lockstep-faults-'));

afterEach(() => {
  vi.restoreAllMocks();
});

describe('checkFaultPlan', () => {
  const fault = (overrides: Record<string, unknown>) => ({ seed: 1, faults: [{ tick: 3, kind: 'crash', actor: 'root/a' }, overrides] });
  const cases: [string, unknown, RegExp][] = [
    ['a plan that is not an object', 'crash everything', /^fault plan: the plan must be an object\./],
    ['faults that are not an array', { seed: 1, faults: { tick: 1 } }, /^fault plan: 'faults' must be an array\./],
    ['a seed out of range', { seed: -1, faults: [] }, /^fault plan: 'seed' must be an unsigned 32-bit integer, got -1\./],
    ['an unknown kind', fault({ tick: 4, kind: 'explode', actor: 'root/a' }), /^fault plan: faults\[1\]\.kind is "explode", not a known kind\./],
    ['a missing kind', fault({ tick: 4, actor: 'root/a' }), /^fault plan: faults\[1\]\.kind is undefined, not a known kind\./],
    ['tick 0', fault({ tick: 0, kind: 'crash', actor: 'root/a' }), /^fault plan: faults\[1\]\.tick must be an integer >= 1, got 0\./],
    ['a fractional tick', fault({ tick: 2.5, kind: 'crash', actor: 'root/a' }), /^fault plan: faults\[1\]\.tick must be an integer >= 1, got 2\.5\./],
    ['a tick given as text', fault({ tick: '5', kind: 'crash', actor: 'root/a' }), /^fault plan: faults\[1\]\.tick must be an integer >= 1, got "5"\./],
    ['a crash naming no actor', fault({ tick: 4, kind: 'crash' }), /^fault plan: faults\[1\]\.actor must name an actor\./],
    ['an exhaustFuel with an empty actor', fault({ tick: 4, kind: 'exhaustFuel', actor: '' }), /^fault plan: faults\[1\]\.actor must name an actor\./],
    ['a killWorker with no worker', fault({ tick: 4, kind: 'killWorker' }), /^fault plan: faults\[1\]\.worker must be a worker index >= 0\./],
    ['a malformed naming both an actor and a topic', fault({ tick: 4, kind: 'malformed', actor: 'root/a', topic: 'ticks' }), /^fault plan: faults\[1\] must name either an 'actor' \(its inbox\) or a 'topic'\./],
    ['a malformed naming neither', fault({ tick: 4, kind: 'malformed' }), /^fault plan: faults\[1\] must name either an 'actor' \(its inbox\) or a 'topic'\./],
    ['a malformed of too many bytes', fault({ tick: 4, kind: 'malformed', topic: 'ticks', bytes: 70_000 }), /^fault plan: faults\[1\]\.bytes must be an integer in 0\.\.65536\./],
  ];

  it.each(cases)('refuses %s, naming the fault and the field, and shows the shape of a plan', (_, plan, message) => {
    let thrown: unknown;
    try {
      checkFaultPlan(plan);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).code).toBe('invalid_config');
    expect((thrown as Error).message).toMatch(message);
    expect((thrown as Error).message).toMatch(/A plan is \{ "seed": 1, "faults": \[\{ "tick": 10, "kind": "crash", "actor": "root\/worker" \}, \.\.\.\] \} with kinds crash, exhaustFuel, killWorker, malformed$/);
  });

  it('accepts a good plan, fills in defaults and orders the faults by tick (stable within a tick)', () => {
    const checked = checkFaultPlan({
      faults: [
        { tick: 9, kind: 'killWorker', worker: 1 },
        { tick: 2, kind: 'malformed', topic: 'ticks' },
        { tick: 9, kind: 'crash', actor: 'b' },
        { tick: 2, kind: 'exhaustFuel', actor: 'a' },
      ],
    });
    expect(checked).toEqual({
      seed: 0,
      faults: [
        { tick: 2, kind: 'malformed', topic: 'ticks', bytes: 16 },
        { tick: 2, kind: 'exhaustFuel', actor: 'a' },
        { tick: 9, kind: 'killWorker', worker: 1 },
        { tick: 9, kind: 'crash', actor: 'b' },
      ],
    });
  });

  it('loadFaultPlan says which file is missing or not JSON', () => {
    expect(() => loadFaultPlan(join(dir, 'absent.json'))).toThrow(/^fault plan: cannot read .*absent\.json: ENOENT/);
    const notJson = join(dir, 'not.json');
    writeFileSync(notJson, '{ seed: 1 ');
    expect(() => loadFaultPlan(notJson)).toThrow(/^fault plan: .*not\.json is not JSON: /);
  });
});

describe('randomFaultPlan', () => {
  const options: RandomFaultOptions = { seed: 77, ticks: 200, rate: 0.2, actors: ['root/a', 'root/b', 'root/c'], agents: ['root/w'], workers: 2 };

  it('is a pure function of its options: the same plan every call, no Math.random', () => {
    const random = vi.spyOn(Math, 'random');
    const first = randomFaultPlan(options);
    randomFaultPlan({ ...options, seed: 78 }); // an unrelated draw in between changes nothing
    const second = randomFaultPlan({ ...options, actors: [...options.actors] });
    expect(second).toEqual(first);
    expect(random).not.toHaveBeenCalled();
    expect(randomFaultPlan({ ...options, seed: 78 })).not.toEqual(first);
  });

  it('draws valid faults within the ticks, from the names and kinds it was given', () => {
    const plan = randomFaultPlan(options);
    expect(checkFaultPlan(plan)).toEqual(plan); // already checked and ordered
    expect(plan.faults.length).toBeGreaterThan(10);
    for (const fault of plan.faults) {
      expect(fault.tick).toBeGreaterThanOrEqual(1);
      expect(fault.tick).toBeLessThanOrEqual(200);
      if (fault.kind === 'crash' || fault.kind === 'malformed') expect(options.actors).toContain(fault.actor);
      if (fault.kind === 'exhaustFuel') expect(fault.actor).toBe('root/w');
      if (fault.kind === 'killWorker') expect([0, 1]).toContain(fault.worker);
    }
    expect(new Set(plan.faults.map((f) => f.kind))).toEqual(new Set(['crash', 'exhaustFuel', 'killWorker', 'malformed']));
    // No agents, no workers: no fuel or worker faults.
    const jsOnly = randomFaultPlan({ seed: 77, ticks: 200, rate: 0.2, actors: ['root/a'] });
    expect(new Set(jsOnly.faults.map((f) => f.kind))).toEqual(new Set(['crash', 'malformed']));
    expect(randomFaultPlan({ ...options, rate: 0 }).faults).toEqual([]);
    expect(randomFaultPlan({ ...options, rate: 1, ticks: 30 }).faults.map((f) => f.tick)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });
});

/** Runs `system` with `plan` for `ticks` ticks (2 workers), closes it and reads the log back. */
async function runWith(system: SystemDefinition, plan: FaultPlan | undefined, ticks: number): Promise<{ runtime: Runtime; records: TickRecord[] }> {
  const runtime = createRuntime(system, { seed: 3, level: 'full', trustedKeys: [devKey], workers: 2, faults: plan });
  try {
    await runtime.run(ticks);
    await runtime.close();
  } catch (error) {
    await runtime.abandon();
    throw error;
  }
  return { runtime, records: readLog(runtime.logBytes()).ticks };
}

/** `tick: from → to (detail)` of one actor, start-up and shutdown left out. */
function lifecycle(runtime: Runtime, records: TickRecord[], actor: string, ticks: number): string[] {
  const id = runtime.actorId(actor);
  return records
    .filter((record) => record.tick > 1 && record.tick <= ticks)
    .flatMap((record) => record.lifecycle.filter((event) => event.actor === id).map((event) => `${record.tick}: ${event.from} → ${event.to}${event.detail === '' ? '' : ` (${event.detail})`}`));
}

/** The refusals logged at `tick` (other drops, such as mail to a crashed actor, left out). */
const refusalsAt = (records: TickRecord[], tick: number) =>
  records.find((record) => record.tick === tick)!.drops.map((drop) => drop.reason).filter((reason) => reason.includes('refused'));

describe('faults at run time', () => {
  it('a fault that cannot apply (no such actor, topic or pool, a JS actor, an actor already down) is logged as refused, and the run goes on', async () => {
    const plan: FaultPlan = {
      seed: 1,
      faults: [
        { tick: 3, kind: 'crash', actor: 'ghost' },
        { tick: 4, kind: 'exhaustFuel', actor: 'root/tally' },
        { tick: 5, kind: 'killWorker', worker: 0 },
        { tick: 6, kind: 'malformed', topic: 'nope' },
        { tick: 7, kind: 'crash', actor: 'root/tally' },
        { tick: 7, kind: 'crash', actor: 'root/tally' },
        { tick: 10, kind: 'crash', actor: 'root/tally' },
      ],
    };
    const { runtime, records } = await runWith(faultFixture, plan, 12);
    expect(refusalsAt(records, 3)).toEqual(["refused: fault plan, crash at tick 3: no actor named 'ghost'; actors: root, root/ticker, root/tally"]);
    expect(refusalsAt(records, 4)).toEqual(["control request refused: exhaustFuel: 'root/tally' is a JS actor; only WASM agents burn fuel"]);
    expect(refusalsAt(records, 5)).toEqual(['control request refused: killWorker: this system has no WASM worker pool']);
    expect(refusalsAt(records, 6)).toEqual([expect.stringMatching(/^refused: fault plan, malformed at tick 6: unknown topic 'nope'/)]);
    // The first crash applies; the second finds it crashed already and says so.
    expect(refusalsAt(records, 7)).toEqual(["control request refused: crash: 'root/tally' is crashed, not running"]);
    expect(lifecycle(runtime, records, 'root/tally', 12)).toEqual([
      '7: running → crashed (fault injected: InjectedFault: crash)',
      '8: crashed → restarting (restarted by root)',
      '8: restarting → initializing',
      '8: initializing → running',
      '10: running → crashed (fault injected: InjectedFault: crash)',
      '11: crashed → restarting (restarted by root)',
      '11: restarting → initializing',
      '11: initializing → running',
    ]);
    expect(records.filter((record) => record.tick <= 12)).toHaveLength(12);
    // Restarted at 11, it has counted the ticker's messages of ticks 10 and 11.
    expect(runtime.actor('root/tally').state()).toEqual({ seen: 2, last: 11 });
    const report = await replay(runtime.logBytes(), faultFixture);
    expect(report.bitExact).toBe(true);
  });

  it('malformed faults deliver seeded garbage: a JSON actor crashes on it (a decode error) and is restarted', async () => {
    const plan = checkFaultPlan({
      seed: 9,
      faults: [
        { tick: 4, kind: 'malformed', actor: 'root/tally', bytes: 12 },
        { tick: 8, kind: 'malformed', topic: 'ticks', bytes: 5 },
      ],
    });
    const { runtime, records } = await runWith(faultFixture, plan, 11);
    const tallyId = runtime.actorId('root/tally');
    const atFour = records.find((record) => record.tick === 4)!.injected;
    expect(atFour).toHaveLength(1);
    expect(runtime.topicName(atFour[0]!.topic)).toBe(`actor/${tallyId}`);
    expect(atFour[0]!.payload).toEqual(malformedBytes(plan, 0, 12));
    expect(atFour[0]!.payload[0]).toBe(0xff); // never valid UTF-8, let alone JSON
    const atEight = records.find((record) => record.tick === 8)!.injected;
    expect(atEight.map((input) => runtime.topicName(input.topic))).toEqual(['ticks']);
    expect(atEight[0]!.payload).toEqual(malformedBytes(plan, 1, 5));
    // Another plan seed, other garbage.
    expect(malformedBytes({ ...plan, seed: 10 }, 0, 12)).not.toEqual(malformedBytes(plan, 0, 12));
    expect(lifecycle(runtime, records, 'root/tally', 11)).toEqual([
      expect.stringMatching(new RegExp(`^4: running → crashed \\(receiving actor/${tallyId} #\\d+ from \\(external\\): PayloadEncodingError: payload of 12 bytes is not valid UTF-8`)),
      '5: crashed → restarting (restarted by root)',
      '5: restarting → initializing',
      '5: initializing → running',
      expect.stringMatching(/^8: running → crashed \(receiving ticks #\d+ from \(external\): PayloadEncodingError: payload of 5 bytes is not valid UTF-8/),
      '9: crashed → restarting (restarted by root)',
      '9: restarting → initializing',
      '9: initializing → running',
    ]);
    // Restarted at 9, it has counted the ticker's messages of ticks 9, 10 and 11.
    expect(runtime.actor('root/tally').state()).toEqual({ seen: 3, last: 10 });
    expect((await replay(runtime.logBytes(), faultFixture)).bitExact).toBe(true);
  });

  it('every fault is an input of its tick in the log, and replay without the plan reproduces the run', async () => {
    const counter = await loadWasmAgent(fileURLToPath(new URL('../actors/agents/build/counter.wasm', import.meta.url)));
    const tree = supervisor({ strategy: 'one_for_one', intensity: 10, period: 10 }, [
      { id: 'ticker', start: ticker },
      { id: 'tally', start: tally },
      { id: 'count-a', start: counter }, // id 4: worker 0
      { id: 'count-b', start: counter }, // id 5: worker 1
    ]);
    const numbers = new Uint8Array([1, 0, 0, 0]);
    const system = defineSystem({
      name: 'every-fault',
      setup: (builder) => builder.spawn(tree, { name: 'root' }),
      inputs: () => [{ topic: 'numbers', payload: numbers }],
    });
    const plan = checkFaultPlan({
      seed: 5,
      faults: [
        { tick: 3, kind: 'crash', actor: 'root/tally' },
        { tick: 4, kind: 'exhaustFuel', actor: 'root/count-a' },
        { tick: 5, kind: 'killWorker', worker: 1 },
        { tick: 6, kind: 'malformed', actor: 'root/tally', bytes: 3 },
        { tick: 7, kind: 'malformed', topic: 'numbers', bytes: 20 },
        { tick: 8, kind: 'crash', actor: 'root' },
        { tick: 9, kind: 'crash', actor: 'nobody' },
      ],
    });
    const { runtime, records } = await runWith(system, plan, 10);
    const control = runtime.topic(controlTopicName);
    const controlInput = (op: number, target: number) => {
      const payload = new Uint8Array(5);
      payload[0] = op;
      new DataView(payload.buffer).setUint32(1, target, true);
      return payload;
    };
    const expected: [number, string, Uint8Array][] = [
      [3, controlTopicName, controlInput(FaultChannel.crash, runtime.actorId('root/tally'))],
      [4, controlTopicName, controlInput(FaultChannel.exhaustFuel, runtime.actorId('root/count-a'))],
      [5, controlTopicName, controlInput(FaultChannel.killWorker, 1)],
      [6, `actor/${runtime.actorId('root/tally')}`, malformedBytes(plan, 3, 3)],
      [7, 'numbers', malformedBytes(plan, 4, 20)],
      [8, controlTopicName, controlInput(FaultChannel.crash, runtime.actorId('root'))],
    ];
    for (const [tick, topic, payload] of expected) {
      const inputs = records.find((record) => record.tick === tick)!.injected.filter((input) => !(input.topic === runtime.topic('numbers') && input.payload.length === 4 && input.payload[0] === 1));
      expect(inputs.map((input) => [runtime.topicName(input.topic), [...input.payload]]), `tick ${tick}`).toEqual([[topic, [...payload]]]);
    }
    // The refused one is an input too (so replay repeats the refusal), and a drop.
    const atNine = records.find((record) => record.tick === 9)!;
    expect(atNine.injected.filter((input) => input.topic === control).map((input) => input.payload[0])).toEqual([refusalChannel]);
    expect(refusalsAt(records, 9)).toEqual(["refused: fault plan, crash at tick 9: no actor named 'nobody'; actors: root, root/ticker, root/tally, root/count-a, root/count-b"]);
    // Each did what it says, at its tick.
    const crashes = records.flatMap((record) => record.lifecycle.filter((event) => event.to === 'crashed').map((event) => `${record.tick} ${runtime.actorName(event.actor)}: ${event.detail}`));
    expect(crashes).toEqual([
      '3 root/tally: fault injected: InjectedFault: crash',
      expect.stringMatching(/^4 root\/count-a: fuel exhausted: /),
      '5 root/count-b: worker 1 killed by fault injection during tick 5',
      expect.stringMatching(/^6 root\/tally: receiving actor\/3 #\d+ from \(external\): PayloadEncodingError: /),
      '8 root: fault injected: crash',
    ]);
    expect(runtime.snapshot().supervisors[0]?.state).toBe('failed');
    // Replay takes no plan: the faults come from the log.
    const report = await replay(runtime.logBytes(), system, { trustedKeys: [devKey], workers: 2 });
    expect(report.bitExact).toBe(true);
    expect(report.ticks).toBe(10);
    // And they made a difference: without them the run is another.
    const clean = await runWith(system, undefined, 10);
    expect(clean.runtime.chainHex).not.toBe(runtime.chainHex);
  });
});

describe('lockstep run --faults', () => {
  const writePlan = (name: string, plan: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, typeof plan === 'string' ? plan : JSON.stringify(plan));
    return path;
  };

  it('runs a system with a plan, the faults show in the log, and replay verifies without the plan', async () => {
    const plan = writePlan('plan.json', {
      seed: 4,
      faults: [
        { tick: 5, kind: 'crash', actor: 'root/tally' },
        { tick: 9, kind: 'malformed', actor: 'root/tally', bytes: 8 },
        { tick: 12, kind: 'crash', actor: 'ghost' },
      ],
    });
    const log = join(dir, 'faults.log');
    const run = await lockstep('run', fixturePath, '--ticks', '20', '--seed', '3', '--log', log, '--level', 'full', '--faults', plan, '--quiet');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^ran fault-fixture: 20 ticks, \d+ messages delivered \(\d+ msgs\/s\), \d+ dropped with reasons$/m);
    expect(run.stdout).toMatch(/^fault plan .*plan\.json: 3 faults, logged as inputs \(refusals as drops\)$/m);

    const inspected = await lockstep('inspect', log, '--events', '50');
    expect(inspected.code).toBe(0);
    expect(inspected.stdout).toContain('tick 5: root/tally running → crashed (fault injected: InjectedFault: crash)');
    expect(inspected.stdout).toContain('tick 6: root/tally crashed → restarting (restarted by root)');
    expect(inspected.stdout).toMatch(/tick 9: root\/tally running → crashed \(receiving actor\/3 #\d+ from \(external\): PayloadEncodingError: payload of 8 bytes is not valid UTF-8/);
    expect(inspected.stdout).toContain('tick 10: root/tally crashed → restarting (restarted by root)');
    expect(inspected.stdout).toContain("dropped 1: refused: fault plan, crash at tick 12: no actor named 'ghost'; actors: root, root/ticker, root/tally");

    const replayed = await lockstep('replay', log, fixturePath, '--quiet');
    expect(replayed.stderr).toBe('');
    expect(replayed.code).toBe(0);
    expect(replayed.stdout).toMatch(/replay verified: 20 ticks, bit for bit, final digest [0-9a-f]{64}/);

    // The same plan gives the same log.
    const again = join(dir, 'again.log');
    expect((await lockstep('run', fixturePath, '--ticks', '20', '--seed', '3', '--log', again, '--level', 'full', '--faults', plan, '--quiet')).code).toBe(0);
    expect(Buffer.compare(readFileSync(log), readFileSync(again))).toBe(0);
  });

  it('refuses a bad plan with exit code 2 and says what is wrong, before running anything', async () => {
    const badKind = writePlan('bad-kind.json', { seed: 1, faults: [{ tick: 5, kind: 'explode', actor: 'root/tally' }] });
    const badTick = writePlan('bad-tick.json', { faults: [{ tick: -2, kind: 'crash', actor: 'root/tally' }] });
    const notJson = writePlan('not-json.json', 'faults: everywhere');
    const runWithPlan = (plan: string, name: string) => lockstep('run', fixturePath, '--ticks', '3', '--log', join(dir, name), '--faults', plan, '--quiet');
    const [kind, tick, text, missing] = await Promise.all([
      runWithPlan(badKind, 'kind.log'),
      runWithPlan(badTick, 'tick.log'),
      runWithPlan(notJson, 'text.log'),
      runWithPlan(join(dir, 'nowhere.json'), 'missing.log'),
    ]);
    expect(kind.code).toBe(2);
    expect(kind.stderr).toMatch(/^lockstep: fault plan: faults\[0\]\.kind is "explode", not a known kind\. A plan is /);
    expect(tick.code).toBe(2);
    expect(tick.stderr).toMatch(/^lockstep: fault plan: faults\[0\]\.tick must be an integer >= 1, got -2\./);
    expect(text.code).toBe(2);
    expect(text.stderr).toMatch(/^lockstep: fault plan: .*not-json\.json is not JSON: /);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^lockstep: fault plan: cannot read .*nowhere\.json: ENOENT/);
    for (const name of ['kind.log', 'tick.log', 'text.log', 'missing.log']) expect(existsSync(join(dir, name))).toBe(false);
  });

  it('documents --faults in the help of run', async () => {
    const help = await lockstep('run', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--faults <plan\.json>\s+inject the faults of a plan/);
    expect(help.stdout).toContain('A fault plan is JSON: { "seed": 1, "faults": [{ "tick": 5, "kind": "crash", "actor": "root/worker" }, ...] }');
    for (const kind of ['crash', 'exhaustFuel', 'killWorker', 'malformed']) expect(help.stdout).toMatch(new RegExp(`^  ${kind} +\\{ tick, kind, `, 'm'));
  });
});
