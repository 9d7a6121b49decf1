/**
 * A WASM worker: binds one AgentHost (agent-host.ts, which hosts the agents pinned to this
 * worker) to the worker's two rings and its MessagePort. Commands come in on the inbound
 * ring and go to the host one record at a time; the host's result records go out on the
 * outbound ring. Module code arrives once per agent over the MessagePort (read
 * synchronously with receiveMessageOnPort, so the loop can block on the ring between
 * ticks).
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { SabRing } from '../ring.ts';
import { AgentHost } from './agent-host.ts';
import type { AgentSetup } from './protocol.ts';
import { workerIdleSpinPolls, workerLoadWaitMs } from '../limits.ts';

interface WorkerInit {
  toWorker: SharedArrayBuffer;
  fromWorker: SharedArrayBuffer;
  port: MessagePort;
}

const { toWorker: toWorkerBuffer, fromWorker: fromWorkerBuffer, port } = workerData as WorkerInit;
const inbound = SabRing.attach(toWorkerBuffer);
const outbound = SabRing.attach(fromWorkerBuffer);


/** Writes one result record, waiting for space if the orchestrator has not drained yet. */
function write(record: Uint8Array): void {
  if (outbound.tryWrite(record)) return;
  outbound.flush();
  outbound.waitWritableSync(record.length);
  if (!outbound.tryWrite(record)) throw new Error('assertion failed: the outbound ring had room and refused the record');
}

/** The setup the orchestrator posted before the LOAD record; the host checks its token. */
function setupFromPort(): AgentSetup | undefined {
  let message = receiveMessageOnPort(port);
  if (message === undefined) {
    // Posted before the ring record, so it is on its way: wait for it, bounded.
    const waitCell = new Int32Array(new SharedArrayBuffer(4));
    for (let waited = 0; message === undefined && waited < workerLoadWaitMs; waited += 1) {
      Atomics.wait(waitCell, 0, 0, 1);
      message = receiveMessageOnPort(port);
    }
  }
  return message?.message as AgentSetup | undefined;
}

const host = new AgentHost({ write, tickDone: () => outbound.flush() }, setupFromPort);
const handle = (record: Uint8Array): void => host.handle(record);


for (;;) {
  let handled = inbound.drain(handle);
  for (let poll = 0; handled === 0 && poll < workerIdleSpinPolls; poll++) handled = inbound.drain(handle);
  if (handled === 0) {
    inbound.waitReadableSync();
    handled = inbound.drain(handle);
  }
  outbound.flush();
}
