/**
 * The acknowledgement contract under kill -9: a host in its own process takes a stream of
 * tells and is killed with SIGKILL at seeded moments; every input it acknowledged is in the
 * log on disk, whole, and the log (its torn tail cut) replays.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { jsonDecode, replay } from 'lockstep';
import { readLog, repairLog } from 'lockstep/log';
import { system } from './fixtures/host-child.ts';

const child = fileURLToPath(new URL('./fixtures/host-child.ts', import.meta.url));
const kills = 10;

/** A seeded stream (mulberry32): the kill moments are the same every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs the child, feeds it numbers, kills it with SIGKILL after `killAfterAcks` acks; returns what it acknowledged. */
function runAndKill(log: string, killAfterAcks: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', child, log], { stdio: ['pipe', 'pipe', 'pipe'] });
    const acked: number[] = [];
    let out = '';
    let err = '';
    let next = 1;
    let killed = false;
    const feed = () => {
      // Keep a few dozen in flight, so the kill lands among tells taken, recorded and fsynced.
      while (!killed && next - acked.length < 40) proc.stdin.write(`${next++}\n`);
    };
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const line of lines) {
        if (line === 'ready') feed();
        else if (line.startsWith('ack ')) acked.push(Number(line.slice(4)));
        else if (line.length > 0) err += `unexpected: ${line}\n`;
      }
      if (!killed && acked.length >= killAfterAcks) {
        killed = true;
        proc.kill('SIGKILL');
      } else feed();
    });
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    proc.stdin.on('error', () => {}); // the pipe breaks when the child is killed
    proc.once('exit', (code, signal) => {
      if (signal === 'SIGKILL' && err === '') resolve(acked);
      else reject(new Error(`the host process ended with ${code ?? signal} before it was killed; stderr:\n${err}`));
    });
  });
}

describe('a host killed with SIGKILL', () => {
  it(`keeps every acknowledged input on disk, whole, at ${kills} seeded moments; the log replays`, async () => {
    const random = seeded(20261206);
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-kill-'));
    for (let k = 0; k < kills; k++) {
      const log = join(dir, `run-${k}.log`);
      const acked = await runAndKill(log, 1 + Math.floor(random() * 300));
      const recorded = readLog(log);
      const inputs = recorded.ticks.flatMap((t) => t.injected.map((input) => jsonDecode(input.payload) as number));
      // Every acknowledged input is in a whole record; none is there twice.
      for (const n of acked) expect(inputs, `kill ${k}: acknowledged input ${n}`).toContain(n);
      expect(new Set(inputs).size).toBe(inputs.length);
      expect(recorded.end).toBeNull();
      // A torn tail, if the kill left one, is cut; the records before it replay.
      if (recorded.tornTail !== null) repairLog(log);
      const report = await replay(log, system);
      expect(report.bitExact, `kill ${k}: ${report.notes.join('; ')}`).toBe(true);
    }
  }, 180_000);
});
