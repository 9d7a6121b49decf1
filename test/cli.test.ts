import { mkdtempSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { lockstep } from './fixtures/cli.ts';

const demo = fileURLToPath(new URL('../examples/demo/system.ts', import.meta.url));
const devKey = fileURLToPath(new URL('../examples/keys/dev.pub.pem', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'lockstep-cli-'));


describe('lockstep CLI', () => {
  const log = join(dir, 'demo.log');

  beforeAll(async () => {
    const result = await lockstep('run', demo, '--ticks', '300', '--seed', '7', '--log', log, '--level', 'full', '--trust', devKey);
    expect(result.stderr).toMatch(/run tick 300\/300/);
    expect(result.code).toBe(0);
  });

  it('runs a system module and writes its log', async () => {
    expect(statSync(log).size).toBeGreaterThan(1000);
    // Another worker count: the log must not change.
    const again = await lockstep('run', demo, '--ticks', '300', '--seed', '7', '--log', join(dir, 'again.log'), '--level', 'full', '--quiet', '--trust', devKey, '--workers', '1');
    expect(again.stdout).toMatch(/ran market-demo: 300 ticks, \d+ messages delivered/);
    // Same seed, same inputs: the same bytes.
    expect(Buffer.compare(readFileSync(log), readFileSync(join(dir, 'again.log')))).toBe(0);
  });

  it('replays a log and verifies it bit for bit', async () => {
    const result = await lockstep('replay', log, demo, '--quiet', '--trust', devKey, '--workers', '3');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/replay verified: 300 ticks, bit for bit, final digest [0-9a-f]{64}/);
  });

  it('inspects a log: header, ticks, messages, lifecycle, integrity', async () => {
    const result = await lockstep('inspect', log);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/format version 1, system 'market-demo', seed 7, level full/);
    expect(result.stdout).toMatch(/ticks 301, closed \(shutdown after 300 ticks\)/);
    // 52 JS actors, 6 WASM agents (4 risk models, the sieve, the pilot) and the inference actor.
    expect(result.stdout).toMatch(/actors 59, topics \d+/);
    expect(result.stdout).toMatch(/created → initializing: 59/);
    expect(result.stdout).toMatch(/models policy \(sha256 [0-9a-f]{12}…, 22769 bytes\); GPU not used/);
    expect(result.stdout).toMatch(/inference answers \d+ \(0 logged whole, \d+ as digests\)/);
    expect(result.stdout).toMatch(/integrity: every record's CRC and hash chain verified; no torn tail/);
  });

  it('reports a torn tail and still replays the whole records before it', async () => {
    const torn = join(dir, 'torn.log');
    writeFileSync(torn, readFileSync(log));
    truncateSync(torn, statSync(torn).size - 7);
    const inspected = await lockstep('inspect', torn);
    expect(inspected.stdout).toMatch(/torn tail of \d+ bytes at offset \d+/);
    expect(inspected.stdout).toMatch(/no end record/);
    const replayed = await lockstep('replay', torn, demo, '--quiet', '--trust', devKey);
    expect(replayed.code).toBe(0);
    expect(replayed.stdout).toMatch(/torn tail/);
  });

  it('says what is wrong with a corrupt log, a missing module, bad flags', async () => {
    const corrupt = join(dir, 'corrupt.log');
    const bytes = readFileSync(log);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x40;
    writeFileSync(corrupt, bytes);
    const badLog = await lockstep('inspect', corrupt);
    expect(badLog.code).toBe(2);
    expect(badLog.stderr).toMatch(/corrupt record at byte offset \d+/);

    const notLog = join(dir, 'not-a-log.txt');
    writeFileSync(notLog, 'hello');
    expect((await lockstep('inspect', notLog)).stderr).toMatch(/not a lockstep log/);

    const missing = await lockstep('run', join(dir, 'nope.ts'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/system module '.*nope\.ts' does not exist/);

    const notSystem = join(dir, 'not-system.mjs');
    writeFileSync(notSystem, 'export const x = 1;\n');
    expect((await lockstep('run', notSystem)).stderr).toMatch(/exports no system: export default defineSystem/);

    const badTicks = await lockstep('run', demo, '--ticks', 'many');
    expect(badTicks.code).toBe(2);
    expect(badTicks.stderr).toMatch(/--ticks must be an integer/);

    const untrusted = await lockstep('run', demo, '--ticks', '1', '--log', join(dir, 'u.log'));
    expect(untrusted.code).toBe(2);
    expect(untrusted.stderr).toMatch(/signed by key [0-9a-f]{16}, which is not trusted here \(trusted: none\); .*lockstep run --trust <pub.pem>/);

    const badLevel = await lockstep('run', demo, '--level', 'verbose', '--log', join(dir, 'x.log'));
    expect(badLevel.stderr).toMatch(/--level must be digest or full/);

    const wrongSystem = await lockstep('replay', log, fileURLToPath(new URL('../examples/testing/systems.ts', import.meta.url)));
    expect(wrongSystem.stderr).toMatch(/exports no system|recorded from system 'market-demo'/);
  });
});
