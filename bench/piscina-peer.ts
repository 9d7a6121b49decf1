/**
 * The piscina peer: one piscina task per message, as a user would route messages through
 * a worker pool without rings. Keeps `concurrency` tasks in flight so both workers stay busy.
 */
import { performance } from 'node:perf_hooks';
import { Piscina } from 'piscina';

export async function benchPiscina(opts: { messages?: number; workers?: number; concurrency?: number } = {}): Promise<{ tasksPerS: number }> {
  const messages = opts.messages ?? 100_000;
  const workers = opts.workers ?? 2;
  const concurrency = opts.concurrency ?? 256;
  const pool = new Piscina({
    filename: new URL('./workers/piscina-task.mjs', import.meta.url).href,
    minThreads: workers,
    maxThreads: workers,
    // Explicit, so a change of piscina's defaults cannot change the measurement.
    concurrentTasksPerWorker: 1,
    idleTimeout: 60_000,
  });
  const payload = new Uint8Array(64).fill(7);
  // Warm up: start the threads and load the task module before timing.
  await Promise.all(Array.from({ length: workers * 4 }, () => pool.run(payload)));
  let sent = 0;
  const started = performance.now();
  const lane = async () => {
    while (sent < messages) {
      sent++;
      await pool.run(payload);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  const elapsed = performance.now() - started;
  await pool.destroy();
  return { tasksPerS: messages / (elapsed / 1000) };
}
