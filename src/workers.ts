import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread running `moduleUrl`. TypeScript sources (tests, `tsx` runs) go
 * through `worker-entry.mjs`, which registers tsx first; compiled JavaScript runs directly.
 * `workerData` reaches the module as usual (the entry field is added beside it).
 */
export function startWorker(moduleUrl: URL, options: WorkerOptions = {}): Worker {
  if (!moduleUrl.pathname.endsWith('.ts')) return new Worker(moduleUrl, options);
  const workerData = { ...(options.workerData as object | undefined), lockstepEntry: moduleUrl.href };
  return new Worker(new URL('./worker-entry.mjs', import.meta.url), { ...options, workerData });
}
