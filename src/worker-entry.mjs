// Entry for worker threads whose code is TypeScript source. Node 20 does not apply
// `--import tsx` from a Worker's execArgv to the worker's own entry module, so the worker
// starts here, registers tsx, then imports the real module named in workerData.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.lockstepEntry);
