/**
 * A WASM worker: binds one AgentHost (agent-host.ts, which hosts the agents pinned to this
 * worker) to the worker's two rings and its MessagePort. Commands come in on the inbound
 * ring and go to the host one record at a time; the host's result records go out on the
 * outbound ring. Module code arrives once per agent over the MessagePort, and so do the
 * shared mailbox slabs as they are made and freed (read synchronously with
 * receiveMessageOnPort, so the loop can block on the ring between ticks).
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { SabRing } from '../ring.ts';
import { AgentHost } from './agent-host.ts';
import type { AgentSetup, PortMessage } from './protocol.ts';
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

/** What the port has brought: LOAD setups by token, the shared mailbox slabs by id. */
const setups = new Map<number, AgentSetup>();
const slabs = new Map<number, Uint8Array>();
/** Slabs released but not dropped yet: dropped at the next TICK_BEGIN (see takePort). */
const released: number[] = [];

/**
 * Takes every message waiting on the port. Releases are only noted here and applied at the
 * next TICK_BEGIN: a release can be posted while this tick's DELIVERs naming the slab are
 * still in the ring (the orchestrator lets go of an envelope as soon as its DELIVER is
 * written), and all of those come before the next TICK_BEGIN.
 */
function takePort(): void {
  for (let message = receiveMessageOnPort(port); message !== undefined; message = receiveMessageOnPort(port)) {
    const posted = message.message as PortMessage;
    if (posted.kind === 'setup') setups.set(posted.setup.token, posted.setup);
    else if (posted.kind === 'slab') slabs.set(posted.id, new Uint8Array(posted.buffer));
    else released.push(posted.id);
  }
}

/**
 * Waits, bounded, for `found` to become true as the port brings messages: what a record
 * names was posted before the record was written, so it is on its way.
 */
function awaitPort(found: () => boolean): void {
  takePort();
  const waitCell = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; !found() && waited < workerLoadWaitMs; waited += 1) {
    Atomics.wait(waitCell, 0, 0, 1);
    takePort();
  }
}

/** The setup the orchestrator posted before the LOAD record; the host checks its agent. */
function setupFromPort(_agentId: number, token: number): AgentSetup | undefined {
  if (!setups.has(token)) awaitPort(() => setups.has(token));
  const setup = setups.get(token);
  setups.delete(token);
  return setup;
}

function slabFromPort(id: number): Uint8Array | undefined {
  if (!slabs.has(id)) awaitPort(() => slabs.has(id));
  return slabs.get(id);
}

function tickBegins(): void {
  takePort();
  for (const id of released.splice(0)) slabs.delete(id);
}

function writeParts(
  head: Uint8Array,
  headStart: number,
  headLength: number,
  body: Uint8Array,
  bodyStart: number,
  bodyLength: number,
  headWords: Int32Array | null,
  bodyWords: Int32Array | null,
): void {
  if (outbound.tryWriteParts(head, headStart, headLength, body, bodyStart, bodyLength, headWords, bodyWords)) return;
  outbound.flush();
  outbound.waitWritableSync(headLength + bodyLength);
  if (!outbound.tryWriteParts(head, headStart, headLength, body, bodyStart, bodyLength, headWords, bodyWords)) {
    throw new Error('assertion failed: the outbound ring had room and refused the record');
  }
}

const host = new AgentHost({ write, writeParts, tickDone: () => outbound.flush() }, setupFromPort, slabFromPort, tickBegins);
const handle = (bytes: Uint8Array, _words: Int32Array, start: number): void => host.handleAt(bytes, start);

for (;;) {
  let handled = inbound.drainRecords(handle);
  for (let poll = 0; handled === 0 && poll < workerIdleSpinPolls; poll++) handled = inbound.drainRecords(handle);
  if (handled === 0) {
    inbound.waitReadableSync();
    handled = inbound.drainRecords(handle);
  }
  outbound.flush();
}
