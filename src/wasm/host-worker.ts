/**
 * A WASM worker: hosts the agents pinned to it, runs the commands the orchestrator writes
 * into its inbound ring, and writes what the agents did into its outbound ring. It never
 * decides order: it runs commands in the order they arrive, and the orchestrator re-orders
 * everything canonically at the barrier. Module code arrives once per agent over a
 * MessagePort (read synchronously with receiveMessageOnPort, so the loop can block on the
 * ring between ticks).
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { Random } from '../prng.ts';
import { SabRing } from '../ring.ts';
import {
  CrashKind,
  Op,
  Result,
  messageHeaderBytes,
  readU32,
  writeU32,
  type AgentSetup,
  type CrashKindCode,
} from './protocol.ts';

interface WorkerInit {
  toWorker: SharedArrayBuffer;
  fromWorker: SharedArrayBuffer;
  port: MessagePort;
}

const { toWorker: toWorkerBuffer, fromWorker: fromWorkerBuffer, port } = workerData as WorkerInit;
const inbound = SabRing.attach(toWorkerBuffer);
const outbound = SabRing.attach(fromWorkerBuffer);

const fuelGlobalExport = 'lockstep_fuel';
const depthGlobalExport = 'lockstep_depth';
/** How long a LOAD waits for its module on the port; it was posted before the ring record. */
const loadWaitMs = 5_000;

class Agent {
  exports!: WebAssembly.Exports;
  memory!: WebAssembly.Memory;
  fuel: WebAssembly.Global | null = null;
  depth: WebAssembly.Global | null = null;
  crashed = false;
  /** The tick whose fuel budget is loaded; the budget is per agent per tick. */
  fuelTick = -1;
  readonly random: Random;
  readonly publishAllowed: Set<number>;
  readonly topicIds: Map<string, number>;

  constructor(readonly setup: AgentSetup) {
    this.random = new Random(setup.seed, setup.agentId, setup.incarnation);
    this.publishAllowed = new Set(setup.publishTopics);
    this.topicIds = new Map(setup.topicIds);
  }
}

const agents = new Map<number, Agent>();
let scratch = new Uint8Array(4096);
const utf8 = new TextDecoder('utf-8', { fatal: false });
const utf8Encoder = new TextEncoder();
let currentTick = 0;

function scratchOf(bytes: number): Uint8Array {
  if (scratch.length < bytes) scratch = new Uint8Array(Math.max(bytes, scratch.length * 2));
  return scratch;
}

/** Writes one result record, waiting for space if the orchestrator has not drained yet. */
function emit(record: Uint8Array): void {
  if (outbound.tryWrite(record)) return;
  outbound.flush();
  outbound.waitWritableSync(record.length);
  if (!outbound.tryWrite(record)) throw new Error('assertion failed: the outbound ring had room and refused the record');
}

function emitWords(op: number, agentId: number, words: readonly number[], tail?: Uint8Array): void {
  const length = 8 + words.length * 4 + (tail?.length ?? 0);
  const record = scratchOf(length).subarray(0, length);
  writeU32(record, 0, op);
  writeU32(record, 4, agentId);
  for (let i = 0; i < words.length; i++) writeU32(record, 8 + i * 4, words[i]! >>> 0);
  if (tail !== undefined) record.set(tail, 8 + words.length * 4);
  emit(record);
}

function crash(agent: Agent, kind: CrashKindCode, consumed: number, reason: string): void {
  agent.crashed = true;
  emitWords(Result.crash, agent.setup.agentId, [kind, consumed], utf8Encoder.encode(reason.slice(0, 2000)));
}

function imports(agent: Agent): WebAssembly.Imports {
  const inBounds = (ptr: number, len: number) => ptr >= 0 && len >= 0 && ptr + len <= agent.memory.buffer.byteLength;
  return {
    lockstep: {
      publish(topic: number, ptr: number, len: number, priority: number): number {
        if (!agent.publishAllowed.has(topic >>> 0)) {
          emitWords(Result.refused, agent.setup.agentId, [topic >>> 0, 1]);
          return -1;
        }
        if (len > agent.setup.payloadBytesMax) return -2;
        if (!inBounds(ptr, len)) return -3;
        if (priority < 0 || priority > 255) return -4;
        const payload = new Uint8Array(agent.memory.buffer, ptr, len);
        emitWords(Result.publish, agent.setup.agentId, [topic >>> 0, priority], payload);
        return 0;
      },
      topic(ptr: number, len: number): number {
        if (!inBounds(ptr, len)) return -1;
        const name = utf8.decode(new Uint8Array(agent.memory.buffer, ptr, len));
        return agent.topicIds.get(name) ?? -1;
      },
      log(level: number, ptr: number, len: number): void {
        if (!inBounds(ptr, len)) return;
        emitWords(Result.log, agent.setup.agentId, [level], new Uint8Array(agent.memory.buffer, ptr, Math.min(len, 4096)));
      },
      random(): number {
        return agent.random.nextUint32() | 0;
      },
    },
  };
}

function load(agentId: number, token: number): void {
  let message = receiveMessageOnPort(port);
  if (message === undefined) {
    // Posted before the ring record, so it is on its way: wait for it, bounded.
    const waitCell = new Int32Array(new SharedArrayBuffer(4));
    for (let waited = 0; message === undefined && waited < loadWaitMs; waited += 1) {
      Atomics.wait(waitCell, 0, 0, 1);
      message = receiveMessageOnPort(port);
    }
  }
  const setup = message?.message as AgentSetup | undefined;
  if (setup === undefined || setup.token !== token || setup.agentId !== agentId) {
    emitWords(Result.loaded, agentId, [0], utf8Encoder.encode(`module for agent ${agentId} did not arrive (token ${token})`));
    return;
  }
  const agent = new Agent(setup);
  try {
    const instance = new WebAssembly.Instance(setup.module, imports(agent));
    agent.exports = instance.exports;
    agent.memory = instance.exports.memory as WebAssembly.Memory;
    agent.fuel = (instance.exports[fuelGlobalExport] as WebAssembly.Global | undefined) ?? null;
    agent.depth = (instance.exports[depthGlobalExport] as WebAssembly.Global | undefined) ?? null;
  } catch (error) {
    emitWords(Result.loaded, agentId, [0], utf8Encoder.encode(`instantiation failed: ${(error as Error).message}`));
    return;
  }
  agents.set(agentId, agent);
  emitWords(Result.loaded, agentId, [1]);
}

/**
 * Calls into the agent, first topping its fuel up to the per-tick budget if this is its
 * first call of the tick. Returns the agent's code, or null after a crash (reported).
 */
function call(agent: Agent, consumed: number, run: () => unknown): number | null {
  if (agent.fuelTick !== currentTick) {
    agent.fuelTick = currentTick;
    if (agent.fuel !== null) agent.fuel.value = BigInt(agent.setup.fuelPerStep);
  }
  if (agent.depth !== null) agent.depth.value = 0;
  let code: number;
  try {
    code = Number(run());
  } catch (error) {
    const fuelLeft = agent.fuel === null ? 1n : (agent.fuel.value as bigint);
    const depth = agent.depth === null ? 0 : (agent.depth.value as number);
    if (fuelLeft < 0n) {
      crash(agent, CrashKind.fuelExhausted, consumed, `fuel exhausted: the agent used more than its ${agent.setup.fuelPerStep} fuel this tick`);
    } else if (depth > agent.setup.callDepthMax) {
      crash(agent, CrashKind.callDepthExceeded, consumed, `call depth exceeded ${agent.setup.callDepthMax} frames`);
    } else {
      crash(agent, CrashKind.trap, consumed, `trap: ${(error as Error).message}`);
    }
    return null;
  }
  if (code === 0) return 0;
  if (code === 1) {
    emitWords(Result.stop, agent.setup.agentId, []);
    return 1;
  }
  if (code < 0) crash(agent, CrashKind.agentError, consumed, `agent error ${code}`);
  else crash(agent, CrashKind.unknownCode, consumed, `unknown return code ${code}; ABI v1 knows 0 (ok), 1 (stop) and negative errors`);
  return null;
}

/** Messages handed to each agent in the current tick (for the crash report). */
const consumedThisTick = new Map<number, number>();

function deliver(agent: Agent, record: Uint8Array): void {
  const consumed = (consumedThisTick.get(agent.setup.agentId) ?? 0) + 1;
  consumedThisTick.set(agent.setup.agentId, consumed);
  const payloadBytes = record.length - 24;
  const total = messageHeaderBytes + payloadBytes;
  const alloc = agent.exports.agent_alloc as (len: number) => number;
  const receive = agent.exports.agent_receive as (ptr: number, len: number) => number;
  let ptr = 0;
  const allocated = call(agent, consumed, () => {
    ptr = alloc(total);
    return 0;
  });
  if (allocated === null) return;
  const memory = new Uint8Array(agent.memory.buffer);
  if (ptr < 0 || ptr + total > memory.length) {
    crash(agent, CrashKind.trap, consumed, `agent_alloc(${total}) returned ${ptr}, outside memory`);
    return;
  }
  // topic, sender, seq, priority: the 16 bytes after op and agent id.
  memory.set(record.subarray(8, 24), ptr);
  memory.set(record.subarray(24), ptr + messageHeaderBytes);
  call(agent, consumed, () => receive(ptr, total));
}

function handle(record: Uint8Array): void {
  const op = readU32(record, 0);
  const agentId = readU32(record, 4);
  if (op === Op.tickBegin) {
    currentTick = readU32(record, 8);
    return;
  }
  if (op === Op.tickEnd) {
    consumedThisTick.clear();
    emitWords(Result.tickDone, 0, [readU32(record, 8)]);
    outbound.flush();
    return;
  }
  if (op === Op.load) {
    load(agentId, readU32(record, 8));
    return;
  }
  const agent = agents.get(agentId);
  if (agent === undefined) return;
  if (op === Op.unload) {
    agents.delete(agentId);
    return;
  }
  if (agent.crashed) return;
  const consumed = consumedThisTick.get(agentId) ?? 0;
  switch (op) {
    case Op.init:
      // Init gets a budget of its own; the agent's first tick gets a fresh one.
      agent.fuelTick = -1;
      call(agent, 0, () => {
        // The optional static initialiser (docs/abi.md) runs first, on the same budget.
        const initialize = agent.exports._initialize as (() => void) | undefined;
        if (initialize !== undefined) initialize();
        return (agent.exports.agent_init as () => number)();
      });
      agent.fuelTick = -1;
      break;
    case Op.deliver:
      deliver(agent, record);
      break;
    case Op.step:
      call(agent, consumed, () => (agent.exports.agent_step as (tick: number) => number)(currentTick | 0));
      break;
    case Op.shutdown:
      call(agent, consumed, agent.exports.agent_shutdown as () => number);
      agents.delete(agentId);
      break;
    default:
      throw new Error(`assertion failed: unknown opcode ${op}`);
  }
}

/**
 * Polls of an empty inbound ring before the worker sleeps. Between two ticks the
 * orchestrator is busy for tens of microseconds; a futex wake-up costs about as much again,
 * so a worker that keeps polling that long starts the next tick at once. Bounded, so an
 * idle pool goes to sleep.
 */
const idleSpinPolls = 5_000;

for (;;) {
  let handled = inbound.drain(handle);
  for (let poll = 0; handled === 0 && poll < idleSpinPolls; poll++) handled = inbound.drain(handle);
  if (handled === 0) {
    inbound.waitReadableSync();
    handled = inbound.drain(handle);
  }
  outbound.flush();
}
