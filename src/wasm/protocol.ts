/**
 * Records exchanged between the orchestrator and a WASM worker over its two SAB rings.
 * Every record starts with a u32 opcode and a u32 agent id, then fixed u32 fields, then
 * bytes. Little endian throughout. Module code and per-agent setup travel once, at load,
 * over a MessagePort, and so do the shared mailbox slabs (src/slabs.ts) as they are made
 * and freed; everything per tick goes through the rings.
 *
 *   orchestrator → worker                       worker → orchestrator
 *   LOAD       agent token                      LOADED   agent ok | error text
 *   AGENT_TICK agent seqLo seqHi backpressure   PUBLISH  agent hashHi hashLo | Envelope
 *   INIT       agent                            REFUSED  agent topic code | topic name
 *   DELIVER    agent slab at length             LOG      agent level | utf-8 text
 *   STEP       agent tick                       CRASH    agent kind consumed | utf-8 reason
 *   SHUTDOWN   agent                            STOP     agent (the agent returned 1)
 *   UNLOAD     agent
 *   EXHAUST_FUEL agent (fault injection: the agent's fuel for this tick is spent)
 *   TICK_BEGIN 0 tick                           TICK_DONE 0 tick
 *   TICK_END   0 tick
 *
 * AGENT_TICK opens an agent's share of a tick, before its INIT or its messages: the
 * sequence number of its last accepted publish (so the worker numbers and hashes its
 * publishes as the kernel will, when none is refused) and the count its `backpressure()`
 * returns. DELIVER names an Envelope (src/envelope-layout.ts) in a shared mailbox slab; the
 * worker copies it from there into the agent. PUBLISH carries the Envelope the agent
 * published (sender, the guessed seq, the tick, topic, priority, payload) and its hash.
 *
 * A REFUSED record carries the topic's name only for a refused inference lookup (the
 * agent's topic id is then a negative refusal id that no topic has; agent-host.ts).
 */

export const Op = {
  load: 1,
  init: 2,
  deliver: 3,
  step: 4,
  shutdown: 5,
  unload: 6,
  tickEnd: 7,
  tickBegin: 8,
  exhaustFuel: 9,
  agentTick: 10,
} as const;

export const Result = {
  loaded: 101,
  publish: 102,
  refused: 103,
  log: 104,
  crash: 105,
  stop: 106,
  tickDone: 107,
} as const;

export const CrashKind = {
  trap: 1,
  fuelExhausted: 2,
  callDepthExceeded: 3,
  agentError: 4,
  unknownCode: 5,
  instantiate: 6,
  memoryLimit: 7,
} as const;
export type CrashKindCode = (typeof CrashKind)[keyof typeof CrashKind];

export const crashKindName: Record<CrashKindCode, string> = {
  [CrashKind.trap]: 'trap',
  [CrashKind.fuelExhausted]: 'fuel exhausted',
  [CrashKind.callDepthExceeded]: 'call depth exceeded',
  [CrashKind.agentError]: 'agent error',
  [CrashKind.unknownCode]: 'unknown return code',
  [CrashKind.instantiate]: 'instantiation failed',
  [CrashKind.memoryLimit]: 'memory limit',
};

/** Bytes of a DELIVER record: op, agent, slab, at, length. */
export const deliverRecordBytes = 20;
/** Bytes of an AGENT_TICK record: op, agent, seq (two words), backpressure. */
export const agentTickRecordBytes = 20;
/** Bytes of a PUBLISH record before its Envelope: op, agent, hashHi, hashLo. */
export const publishHeadBytes = 16;
/** Bytes of the ABI v1 inbound message header (docs/abi.md): topic, sender, seq, priority. */
export const messageHeaderBytesV1 = 16;

/** A shared mailbox slab, or a release of one, as posted to a worker's port. */
export type SlabMessage = { kind: 'slab'; id: number; buffer: SharedArrayBuffer } | { kind: 'release'; id: number };
/** What the orchestrator posts to a worker's port. */
export type PortMessage = { kind: 'setup'; setup: AgentSetup } | SlabMessage;

/**
 * A compiled `WebAssembly.Module`, as lockstep's public types name it. Declarations that
 * mention the `WebAssembly` namespace compile only with the DOM lib (this repo has its own
 * src/webassembly.d.ts), which a Node app's tsconfig does not load; a Module is a plain
 * object to TypeScript anyway, so nothing is lost.
 */
export type CompiledModule = object;

/** What the orchestrator posts for LOAD: everything an instance needs, by value. */
export interface AgentSetup {
  token: number;
  agentId: number;
  name: string;
  module: CompiledModule;
  fuelPerStep: number;
  callDepthMax: number;
  seed: number;
  incarnation: number;
  payloadBytesMax: number;
  /** The module's declared memory maximum, in 64 KiB pages (a trap there is a memory limit). */
  memoryPagesMax: number;
  /** The ABI version the module declares (1 or 2): the layout of the messages it gets. */
  abi: number;
  /** Topic ids the agent may publish to. */
  publishTopics: number[];
  /** Names the agent may look up with `topic()`, with their ids. */
  topicIds: [string, number][];
}

export function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

export function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value & 0xff;
  bytes[at + 1] = (value >>> 8) & 0xff;
  bytes[at + 2] = (value >>> 16) & 0xff;
  bytes[at + 3] = (value >>> 24) & 0xff;
}
