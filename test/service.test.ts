/**
 * examples/service as a real process: node:http in front of a supervision tree. Requests
 * go out while children are crashed (by the fault plan and over HTTP); every answer must be
 * exact or one of the service's documented errors; /health must show the restarts; SIGTERM
 * must stop the tree in order and exit 0; the log must hold the crash → restart lifecycles,
 * end with the shutdown record, and replay bit for bit.
 *
 * Nothing here asserts wall-clock time: waits are bounded polls with generous limits, so a
 * loaded 2-core machine is only slower, never wrong.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { replay, type TickRecord } from 'lockstep';
import { readLog } from 'lockstep/log';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import system, { names } from '../examples/service/system.ts';

const repositoryRoot = fileURLToPath(new URL('..', import.meta.url));
const serverModule = fileURLToPath(new URL('../examples/service/server.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'lockstep-service-'));
const logPath = join(dir, 'service.log');
const planPath = join(dir, 'plan.json');

/** π(n), from tables (not from the service's own sieve). */
const primesUpTo: Readonly<Record<number, number>> = { 0: 0, 1: 0, 2: 1, 10: 4, 100: 25, 1000: 168, 10_000: 1229, 100_000: 9592, 200_000: 17_984 };
const limits = Object.keys(primesUpTo).map(Number);

/** The errors examples/service/README.md documents for any request. */
const documentedErrors = new Map<number, readonly string[]>([
  [503, ['busy', 'crashed', 'dropped', 'shutting_down', 'store_recovering']],
  [504, ['timeout']],
]);

/** Generous bounds: a loaded machine is slow, not broken. */
const listenWaitMs = 45_000;
const pollAttemptsMax = 600;
const pollIntervalMs = 25;

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

interface HealthActor {
  name: string;
  lifecycle: string;
  restarts: number;
  crashes: number;
  lastCrash: { tick: number; message: string } | null;
}

interface Health {
  status: 'ok' | 'degraded' | 'down';
  tick: number;
  tree: { name: string; state: string; children: { id: string; state: string }[] }[];
  actors: HealthActor[];
  requests: Record<string, number>;
}

let server: ChildProcessWithoutNullStreams;
let base = '';
let stdout = '';
let stderr = '';
let exited: Promise<number | null>;

function startServer(): Promise<void> {
  server = spawn(
    process.execPath,
    ['--import', 'tsx', serverModule, '--port', '0', '--log', logPath, '--seed', '11', '--faults', planPath, '--fault-endpoint'],
    { cwd: repositoryRoot, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  exited = new Promise((resolve) => server.once('exit', (code) => resolve(code)));
  server.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  server.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the service did not print 'listening on' within ${listenWaitMs} ms; stderr:\n${stderr}`)), listenWaitMs);
    server.stdout.on('data', () => {
      const port = /listening on (\d+)/.exec(stdout)?.[1];
      if (port === undefined) return;
      clearTimeout(timer);
      base = `http://127.0.0.1:${port}`;
      resolve();
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the service exited with ${code} before listening; stderr:\n${stderr}`));
    });
  });
}

async function call(method: string, path: string, body?: string): Promise<Answer> {
  const response = await fetch(`${base}${path}`, { method, body });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function health(): Promise<Health> {
  return (await call('GET', '/health')).body as unknown as Health;
}

function actorIn(state: Health, name: string): HealthActor {
  const actor = state.actors.find((a) => a.name === name);
  if (actor === undefined) throw new Error(`no actor '${name}' in /health`);
  return actor;
}

/** Polls /health until `ready` holds; fails with the last health seen. */
async function waitForHealth(what: string, ready: (state: Health) => boolean): Promise<Health> {
  let last: Health | null = null;
  for (let attempt = 0; attempt < pollAttemptsMax; attempt++) {
    last = await health();
    if (ready(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
  }
  throw new Error(`/health never showed ${what}; last: ${JSON.stringify(last, null, 1)}`);
}

const everyActorRunning = (state: Health) => state.status === 'ok' && state.actors.every((a) => a.lifecycle === 'running');

/** True for an answer that is one of the documented errors (no other 5xx is acceptable). */
function isDocumentedError(answer: Answer): boolean {
  return documentedErrors.get(answer.status)?.includes(String(answer.body.error)) ?? false;
}

function expectPrimes(answer: Answer, limit: number): void {
  if (isDocumentedError(answer)) return;
  expect(answer).toMatchObject({ status: 200, body: { limit, primes: primesUpTo[limit] } });
}

beforeAll(async () => {
  // A planned fault, by tick: it lands whatever the HTTP timing, and the log records it.
  writeFileSync(planPath, JSON.stringify({ seed: 1, faults: [{ tick: 5, kind: 'crash', actor: names.worker(3) }] }));
  await startServer();
});

afterAll(() => {
  if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
});

describe('examples/service: an HTTP service hosting a supervision tree', () => {
  const phaseOneKeys = Array.from({ length: 12 }, (_, i) => `key-${i}`);
  /** Keys whose PUT was acknowledged, with the value acknowledged. */
  const acknowledged = new Map<string, string>();

  it('answers kv and compute requests exactly', async () => {
    for (const key of phaseOneKeys) {
      const put = await call('PUT', `/kv/${key}`, `value of ${key}`);
      expect(put.status).toBe(201);
      acknowledged.set(key, `value of ${key}`);
    }
    const reads = await Promise.all(phaseOneKeys.map((key) => call('GET', `/kv/${key}`)));
    reads.forEach((read, i) => expect(read).toMatchObject({ status: 200, body: { key: phaseOneKeys[i], value: `value of ${phaseOneKeys[i]}` } }));
    expect(await call('GET', '/kv/missing')).toMatchObject({ status: 404, body: { error: 'not_found' } });
    const computed = await Promise.all(limits.map((limit) => call('GET', `/primes/${limit}`)));
    computed.forEach((answer, i) => expect(answer).toMatchObject({ status: 200, body: { limit: limits[i], primes: primesUpTo[limits[i]!] } }));
    // Checked before anything reaches an actor.
    expect(await call('GET', '/primes/200001')).toMatchObject({ status: 400, body: { error: 'bad_limit' } });
    expect(await call('PUT', '/kv/big', 'x'.repeat(129))).toMatchObject({ status: 413 });
    expect(await call('POST', '/faults/crash/nobody')).toMatchObject({ status: 404, body: { error: 'no_such_actor' } });
  });

  it('answers every request in a burst exactly, or with a documented error, while children crash', async () => {
    const primes: Promise<[number, Answer]>[] = [];
    const puts: Promise<[string, Answer]>[] = [];
    const gets: Promise<[string, Answer]>[] = [];
    const burst = (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const limit = limits[i % limits.length]!;
        primes.push(call('GET', `/primes/${limit}`).then((answer) => [limit, answer]));
        if (i % 3 === 0) {
          const key = `burst-${i}`;
          puts.push(call('PUT', `/kv/${key}`, `burst value ${i}`).then((answer) => [key, answer]));
        }
        if (i % 5 === 0) {
          const key = phaseOneKeys[i % phaseOneKeys.length]!;
          gets.push(call('GET', `/kv/${key}`).then((answer) => [key, answer]));
        }
      }
    };
    burst(0, 60);
    // Faults over HTTP while the first half is in flight; each is a logged input.
    const crashes = Promise.all([
      call('POST', `/faults/crash/${names.worker(1)}`),
      call('POST', `/faults/crash/${names.store}`),
    ]);
    burst(60, 120);
    for (const crash of await crashes) expect(crash.status).toBe(202);

    for (const [limit, answer] of await Promise.all(primes)) expectPrimes(answer, limit);
    for (const [key, answer] of await Promise.all(gets)) {
      if (isDocumentedError(answer)) continue;
      expect(answer).toMatchObject({ status: 200, body: { key, value: `value of ${key}` } });
    }
    for (const [key, answer] of await Promise.all(puts)) {
      if (isDocumentedError(answer)) continue;
      expect(answer).toMatchObject({ status: 201, body: { key } });
      acknowledged.set(key, answer.body.value as string);
    }
  });

  it('shows the restarts in /health, and the store recovers every acknowledged write from its journal', async () => {
    const state = await waitForHealth('w1, the store and w3 restarted and every actor running', (s) =>
      everyActorRunning(s) && [names.worker(1), names.store, names.worker(3)].every((name) => actorIn(s, name).restarts >= 1),
    );
    expect(state.tree[0]).toMatchObject({ name: 'root', state: 'running' });
    expect(actorIn(state, names.worker(3)).lastCrash?.message).toMatch(/fault injected/);
    expect(actorIn(state, names.store).lastCrash?.message).toMatch(/fault injected/);
    // one_for_one: the store's sibling journal and the other workers were left alone.
    expect(actorIn(state, names.journal).restarts).toBe(0);
    expect(actorIn(state, names.worker(2)).restarts).toBe(0);

    for (const [key, value] of acknowledged) {
      const read = await call('GET', `/kv/${key}`);
      expect(read).toMatchObject({ status: 200, body: { key, value } });
      expect(read.body.incarnation).toBeGreaterThanOrEqual(1);
    }
  });

  it('restarts the store after its journal (rest_for_one): both start empty, together', async () => {
    const before = actorIn(await health(), names.store).restarts;
    expect((await call('POST', `/faults/crash/${names.journal}`)).status).toBe(202);
    await waitForHealth('the journal and then the store restarted', (s) =>
      everyActorRunning(s) && actorIn(s, names.journal).restarts === 1 && actorIn(s, names.store).restarts === before + 1,
    );
    const read = await call('GET', `/kv/${phaseOneKeys[0]}`);
    expect(read).toMatchObject({ status: 404, body: { error: 'not_found' } });
    expect(await call('PUT', `/kv/${phaseOneKeys[0]}`, 'again')).toMatchObject({ status: 201, body: { value: 'again' } });
  });

  it('on SIGTERM stops the tree in order, writes the final record and exits 0; the log replays', async () => {
    // Requests in flight at SIGTERM are answered (the host drains them), refused as the
    // service shuts down, or meet a closed socket: never a wrong answer, never a 500.
    const inFlight = Array.from({ length: 40 }, (_, i) => {
      const limit = limits[i % limits.length]!;
      return call('GET', `/primes/${limit}`).then(
        (answer) => ({ limit, answer }),
        (failure: Error) => ({ limit, failure }),
      );
    });
    await Promise.race(inFlight);
    server.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout).toMatch(/stopping on SIGTERM/);
    for (const outcome of await Promise.all(inFlight)) {
      if ('failure' in outcome) expect(outcome.failure.message).toMatch(/fetch failed/);
      else expectPrimes(outcome.answer, outcome.limit);
    }
    const digest = /final digest ([0-9a-f]{64})/.exec(stdout)?.[1];
    expect(digest, `stdout:\n${stdout}\nstderr:\n${stderr}`).toBeDefined();

    const log = readLog(logPath);
    expect(log.end).toMatchObject({ reason: 'shutdown' });
    expect(log.tornTail).toBeNull();
    const nameOf = actorNames(log.ticks);
    const idOf = new Map([...nameOf].map(([id, name]) => [name, id]));

    // The final record is the shutdown record (the runtime's own running → stopping) ...
    const last = log.ticks.at(-1)!;
    expect(last.lifecycle[0]).toMatchObject({ actor: 0, from: 'running', to: 'stopping' });
    // ... and stops the tree as OTP does: each supervisor's children in reverse start
    // order, the supervisor right after them.
    const stopped = last.lifecycle.filter((e) => e.actor !== 0 && e.to === 'stopping').map((e) => nameOf.get(e.actor));
    expect(stopped).toEqual([
      names.worker(3), names.worker(2), names.worker(1), names.worker(0), names.pool,
      names.store, names.journal, names.kv,
      'root',
    ]);
    for (const name of stopped) {
      expect(last.lifecycle.some((e) => e.actor === idOf.get(name!) && e.from === 'stopping' && e.to === 'stopped')).toBe(true);
    }

    // Each crashed child went crashed → restarting → initializing → running, in that order.
    for (const name of [names.worker(3), names.worker(1), names.store, names.journal]) {
      const transitions = lifecycleOf(log.ticks, idOf.get(name)!);
      const crash = transitions.findIndex((t) => t.startsWith('running→crashed'));
      expect(crash, `${name}: ${transitions.join(', ')}`).toBeGreaterThanOrEqual(0);
      expect(transitions.slice(crash + 1, crash + 4)).toEqual(['crashed→restarting', 'restarting→initializing', 'initializing→running']);
    }
    // The journal's crash stopped the store (rest_for_one), which then restarted.
    const store = lifecycleOf(log.ticks, idOf.get(names.store)!);
    expect(store.join(', ')).toMatch(/running→stopping, stopping→stopped, stopped→restarting, restarting→initializing, initializing→running/);

    // Every request and every fault is an input in the log: replay re-executes the run.
    const report = await replay(logPath, system);
    expect(report.bitExact).toBe(true);
    expect(report.chainHex).toBe(digest);
  });
});

/** Actor id → name, from the log's creation events (a supervisor's detail adds its strategy). */
function actorNames(ticks: readonly TickRecord[]): Map<number, string> {
  const result = new Map<number, string>();
  for (const record of ticks) {
    for (const event of record.lifecycle) {
      if (event.from === 'none' && event.to === 'created') result.set(event.actor, event.detail.split(' ')[0]!);
    }
  }
  return result;
}

/** One actor's transitions over the whole log, as 'from→to'. */
function lifecycleOf(ticks: readonly TickRecord[], actor: number): string[] {
  return ticks.flatMap((record) => record.lifecycle.filter((e) => e.actor === actor).map((e) => `${e.from}→${e.to}`));
}
