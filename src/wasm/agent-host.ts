/**
 * The agent host: instances of the WASM agents of one lane (a worker thread, or the
 * orchestrator's own thread with `workers: 0`), driven one command record at a time.
 *
 *   command record ──▶ handle(record) ──▶ agent code (metered) ──▶ output.write(result record)
 *                                                                ──▶ output.tickDone() after TICK_DONE
 *
 * It never decides order: it runs commands in the order they arrive, and the orchestrator
 * re-orders everything canonically at the barrier. It knows nothing of threads, rings or
 * ports: the worker script (host-worker.ts) binds it to its two rings and its MessagePort,
 * the in-thread transport (in-thread-transport.ts) calls it directly, and both hand it the
 * same records (records.ts encodes them) and decode what it writes the same way. The
 * records are those of protocol.ts; a LOAD record names a token, and the module and setup
 * of the agent come from `setupOf(agentId, token)`.
 *
 * All state lives in the instance (one per lane); the module holds only constants.
 */
import { Random } from '../prng.ts';
import { AgentStatus, PublishStatus, depthGlobalExport, fuelGlobalExport, inferTopicName, inferTopicPrefix, initializeExport } from './abi.ts';
import { classifyTrap, type TrapKind } from './traps.ts';
import { EnvelopeAt, envelopeHeaderBytes, writeEnvelopeFields, writeEnvelopeHeader } from '../envelope-layout.ts';
import { copyBytes, wordsOf } from '../copy.ts';
import { hashEnvelopeRange } from '../hash.ts';
import {
  CrashKind,
  Op,
  Result,
  messageHeaderBytesV1,
  publishHeadBytes,
  readU32,
  writeU32,
  type AgentSetup,
  type CrashKindCode,
} from './protocol.ts';
import { crashReasonCharsMax, hostFuelSyncUnits, logLineBytesMax, logLinesPerTickMax, refusedCallNamesMax, topicNameBytesMax } from '../limits.ts';

/** Where an agent host's result records go. */
export interface AgentHostOutput {
  /**
   * Takes one result record. `record` is a view of the host's scratch buffer, valid ONLY
   * during the call: copy what you keep (a ring's `tryWrite` does).
   */
  write(record: Uint8Array): void;
  /**
   * Takes one result record made of two parts: `head[headStart, +headLength)` (the host's
   * scratch) then `body[bodyStart, +bodyLength)` (a payload in an agent's memory), both
   * valid ONLY during the call. A PUBLISH comes this way, so its payload is copied once.
   */
  writeParts(
    head: Uint8Array,
    headStart: number,
    headLength: number,
    body: Uint8Array,
    bodyStart: number,
    bodyLength: number,
    headWords: Int32Array | null,
    bodyWords: Int32Array | null,
  ): void;
  /** The tick's results are all written (just after its TICK_DONE): publish them now. */
  tickDone(): void;
}

/**
 * The bytes of shared mailbox slab `id` (src/slabs.ts), which a DELIVER names. Called when a
 * DELIVER names it; undefined when no such slab was shared (a host bug: the agent crashes).
 */
export type SlabSource = (id: number) => Uint8Array | undefined;

/**
 * The setup posted for the LOAD of `agentId` with `token`, or undefined when none came (the
 * host then reports the agent's load as failed). Called once per LOAD, synchronously.
 */
export type AgentSetupSource = (agentId: number, token: number) => AgentSetup | undefined;

class Agent {
  exports!: WebAssembly.Exports;
  memory!: WebAssembly.Memory;
  /** A view of the agent's memory, renewed when a memory.grow detaches the old buffer. */
  bytes = new Uint8Array(0);
  /** The same memory as 32-bit words, for the message copies (src/copy.ts). */
  words: Int32Array | null = null;
  alloc!: (len: number) => number;
  receive!: (ptr: number, len: number) => number;
  fuel: WebAssembly.Global | null = null;
  depth: WebAssembly.Global | null = null;
  crashed = false;
  /** The agent returned 1 (stop): it gets nothing more until the host has stopped it. */
  stopRequested = false;
  /** The tick whose fuel budget is loaded; the budget is per agent per tick. */
  fuelTick = -1;
  /** Host-call fuel not yet taken from the fuel global (see `charge`). */
  pendingFuel = 0;
  logTick = -1;
  logLines = 0;
  refusedTick = -1;
  /** Memory pages at instantiation: a memory that grew to its maximum and then trapped ran out. */
  initialPages = 0;
  /** Messages handed over in the current tick (for the crash report). */
  consumed = 0;
  consumedTick = -1;
  /** The seq the kernel gives this agent's next accepted publish, as far as the host knows (AGENT_TICK). */
  nextSeq = 1;
  /** What `backpressure()` returns: publishes refused at the barrier of its last scheduled tick (AGENT_TICK). */
  backpressure = 0;
  readonly random: Random;
  readonly publishAllowed: Set<number>;
  readonly topicIds: Map<string, number>;
  /**
   * Inference topics the agent looked up without the model in its manifest: the name of
   * refusal id -2 - i is entry i (see `refusedCallId`). A publish to one is refused and
   * logged naming the model; bounded by refusedCallNamesMax.
   */
  readonly refusedCalls: string[] = [];

  constructor(readonly setup: AgentSetup) {
    this.random = new Random(setup.seed, setup.agentId, setup.incarnation);
    this.publishAllowed = new Set(setup.publishTopics);
    this.topicIds = new Map(setup.topicIds);
  }

  view(): Uint8Array {
    // memory.grow detaches the old buffer, and a view of a detached buffer has length 0:
    // a cheaper check than reading memory.buffer on every message.
    if (this.bytes.byteLength === 0) {
      this.bytes = new Uint8Array(this.memory.buffer);
      this.words = wordsOf(this.bytes);
    }
    return this.bytes;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false });
const utf8Encoder = new TextEncoder();

/**
 * What `topic()` returns for a name the agent was not granted: -1, unless it is an
 * inference topic (`infer` or `infer/<model>`). Then it is a refusal id, -2 - i (negative,
 * so an agent that checks `< 0` sees "not granted"), that remembers the name: a publish to
 * it is refused like any undeclared publish, and the log names the model the agent may not
 * call rather than a topic number. Ids depend only on the agent's own lookups: replayable.
 */
function refusedCallId(agent: Agent, name: string): number {
  if (name !== inferTopicName && !name.startsWith(inferTopicPrefix)) return -1;
  let index = agent.refusedCalls.indexOf(name);
  if (index < 0) {
    if (agent.refusedCalls.length >= refusedCallNamesMax) return -1;
    index = agent.refusedCalls.push(name) - 1;
  }
  return -2 - index;
}

/** The name of a refusal id from `refusedCallId`, or null for any other number. */
function refusedCallName(agent: Agent, topic: number): string | null {
  const index = -2 - (topic | 0);
  return index >= 0 && index < agent.refusedCalls.length ? agent.refusedCalls[index]! : null;
}

/** Fuel a host import costs on top of its per-byte charge. */
const importCallFuel = 16;

/**
 * Charges an import call to the agent's fuel: a fixed cost plus one unit per byte the host
 * handles, as for memory.copy. Charges gather in `pendingFuel` and are taken from the fuel
 * global every `hostFuelSyncUnits` units and at the end of init, step and shutdown, so the
 * common small publish costs no BigInt arithmetic; the points where an agent runs out are
 * still fixed by its own sequence of calls, so they are the same every run.
 */
function charge(agent: Agent, bytes: number): void {
  agent.pendingFuel += importCallFuel + bytes;
  if (agent.pendingFuel >= hostFuelSyncUnits && !settleFuel(agent)) {
    throw new WebAssembly.RuntimeError('fuel exhausted in a host call');
  }
}

/** Takes the gathered host charges from the fuel global; false when that exhausts it. */
function settleFuel(agent: Agent): boolean {
  if (agent.pendingFuel === 0) return true;
  const fuel = agent.fuel!;
  const left = (fuel.value as bigint) - BigInt(agent.pendingFuel);
  agent.pendingFuel = 0;
  fuel.value = left;
  return left >= 0n;
}

const wasmPageBytes = 65_536;

const crashKindOfTrap: Record<TrapKind, CrashKindCode> = {
  fuel_exhausted: CrashKind.fuelExhausted,
  call_depth_exceeded: CrashKind.callDepthExceeded,
  memory_limit: CrashKind.memoryLimit,
  trap: CrashKind.trap,
};

/** Hosts the agents of one lane; see the file's comment. */
export class AgentHost {
  private readonly agents = new Map<number, Agent>();
  private scratch = new Uint8Array(4096);
  private readonly publishHead = new Uint8Array(publishHeadBytes + envelopeHeaderBytes);
  private readonly publishHeadView = new DataView(this.publishHead.buffer);
  private readonly publishHeadWords = new Int32Array(this.publishHead.buffer);
  private readonly hash = new Uint32Array(2);
  private currentTick = 0;
  /** The last slab a DELIVER named, and its words (consecutive messages mostly share one). */
  private lastSlab: Uint8Array | null = null;
  private lastSlabWords: Int32Array | null = null;

  private slabWordsOf(slab: Uint8Array): Int32Array | null {
    if (slab !== this.lastSlab) {
      this.lastSlab = slab;
      this.lastSlabWords = wordsOf(slab);
    }
    return this.lastSlabWords;
  }

  constructor(
    private readonly output: AgentHostOutput,
    private readonly setupOf: AgentSetupSource,
    private readonly slabOf: SlabSource,
    /** Called at every TICK_BEGIN, before the tick's commands (the worker applies slab releases there). */
    private readonly tickBegins: () => void = () => {},
  ) {
    // The Envelope header's constant words, written once: each publish rewrites its fields.
    writeEnvelopeHeader(this.publishHeadView, publishHeadBytes, 0, 0, 0, 0, 0, 0);
  }

  /**
   * Runs one command record (protocol.ts). Results go to `output.write` before this returns.
   * The record is read only during the call. Throws only on a programmer error (an unknown
   * opcode); everything an agent does wrong is a CRASH record.
   */
  handle(record: Uint8Array): void {
    this.handleAt(record, 0);
  }

  /** `handle` for the record that starts at `bytes[start]` (a ring's or a queue's bytes: no view per record). */
  handleAt(bytes: Uint8Array, start: number): void {
    const op = readU32(bytes, start + 0);
    const agentId = readU32(bytes, start + 4);
    if (op === Op.tickBegin) {
      this.currentTick = readU32(bytes, start + 8);
      this.tickBegins();
      return;
    }
    if (op === Op.tickEnd) {
      this.emitWords(Result.tickDone, 0, [readU32(bytes, start + 8)]);
      this.output.tickDone();
      return;
    }
    if (op === Op.load) {
      this.load(agentId, readU32(bytes, start + 8));
      return;
    }
    const agent = this.agents.get(agentId);
    if (agent === undefined) return;
    if (op === Op.unload) {
      this.agents.delete(agentId);
      return;
    }
    if (op === Op.agentTick) {
      agent.nextSeq = readU32(bytes, start + 8) + readU32(bytes, start + 12) * 0x1_0000_0000 + 1;
      agent.backpressure = readU32(bytes, start + 16);
      return;
    }
    if (agent.crashed) return;
    if (agent.stopRequested && op !== Op.shutdown) return;
    const currentTick = this.currentTick;
    const consumed = agent.consumedTick === currentTick ? agent.consumed : 0;
    switch (op) {
      case Op.init:
        // Init gets a budget of its own; the agent's first tick gets a fresh one.
        agent.fuelTick = -1;
        this.call(agent, 0, () => {
          // The optional static initialiser (docs/abi.md) runs first, on the same budget.
          const initialize = agent.exports[initializeExport] as (() => void) | undefined;
          if (initialize !== undefined) initialize();
          return (agent.exports.agent_init as () => number)();
        });
        agent.fuelTick = -1;
        break;
      case Op.deliver:
        this.deliver(agent, bytes, start);
        break;
      case Op.step:
        if (this.call(agent, consumed, () => (agent.exports.agent_step as (tick: number) => number)(currentTick | 0)) === AgentStatus.stop) agent.stopRequested = true;
        break;
      case Op.exhaustFuel:
        // Fault injection: the budget of this tick is spent, so the next call traps on its
        // first fuel check, as a runaway loop would.
        agent.fuelTick = currentTick;
        agent.pendingFuel = 0;
        if (agent.fuel !== null) agent.fuel.value = 0n;
        break;
      case Op.shutdown:
        this.call(agent, consumed, agent.exports.agent_shutdown as () => number);
        this.agents.delete(agentId);
        break;
      default:
        throw new Error(`assertion failed: unknown opcode ${op}`);
    }
  }

  private scratchOf(bytes: number): Uint8Array {
    if (this.scratch.length < bytes) this.scratch = new Uint8Array(Math.max(bytes, this.scratch.length * 2));
    return this.scratch;
  }

  private emitWords(op: number, agentId: number, words: readonly number[], tail?: Uint8Array): void {
    const length = 8 + words.length * 4 + (tail?.length ?? 0);
    const record = this.scratchOf(length).subarray(0, length);
    writeU32(record, 0, op);
    writeU32(record, 4, agentId);
    for (let i = 0; i < words.length; i++) writeU32(record, 8 + i * 4, words[i]! >>> 0);
    if (tail !== undefined) record.set(tail, 8 + words.length * 4);
    this.output.write(record);
  }

  /**
   * PUBLISH: the Envelope the kernel will deliver, numbered with the seq it will most likely
   * get and hashed with it (the kernel keeps both when the guess holds), then the payload
   * straight from the agent's memory.
   */
  private emitPublish(agent: Agent, topic: number, priority: number, ptr: number, len: number): void {
    const head = this.publishHead;
    const view = this.publishHeadView;
    const sender = agent.setup.agentId;
    const seq = agent.nextSeq++;
    const memory = agent.view();
    hashEnvelopeRange(topic, sender, seq, priority, memory, ptr, len, this.hash);
    view.setUint32(0, Result.publish, true);
    view.setUint32(4, sender, true);
    view.setUint32(8, this.hash[0]!, true);
    view.setUint32(12, this.hash[1]!, true);
    writeEnvelopeFields(view, publishHeadBytes, topic, sender, seq, this.currentTick, priority, len);
    this.output.writeParts(head, 0, head.length, memory, ptr, len, this.publishHeadWords, agent.words);
  }

  private crash(agent: Agent, kind: CrashKindCode, consumed: number, reason: string): void {
    agent.crashed = true;
    this.emitWords(Result.crash, agent.setup.agentId, [kind, consumed], utf8Encoder.encode(reason.slice(0, crashReasonCharsMax)));
  }

  private imports(agent: Agent): WebAssembly.Imports {
    const inBounds = (ptr: number, len: number) => ptr >= 0 && len >= 0 && ptr + len <= agent.memory.buffer.byteLength;
    return {
      lockstep: {
        publish: (topic: number, ptr: number, len: number, priority: number): number => {
          if (!agent.publishAllowed.has(topic >>> 0)) {
            // Logged once per tick: a refused publish costs the agent nothing else.
            if (agent.refusedTick !== this.currentTick) {
              agent.refusedTick = this.currentTick;
              const refusedName = refusedCallName(agent, topic);
              this.emitWords(Result.refused, agent.setup.agentId, [topic >>> 0, 1], refusedName === null ? undefined : utf8Encoder.encode(refusedName));
            }
            return PublishStatus.notAllowed;
          }
          if (len > agent.setup.payloadBytesMax) return PublishStatus.tooLarge;
          if (!inBounds(ptr, len)) return PublishStatus.outOfBounds;
          if (priority < 0 || priority > 255) return PublishStatus.badPriority;
          charge(agent, len);
          this.emitPublish(agent, topic >>> 0, priority, ptr, len);
          return PublishStatus.accepted;
        },
        topic: (ptr: number, len: number): number => {
          // No capability name is longer; refusing first keeps an agent from buying a huge
          // decode for a few units of fuel.
          if (len > topicNameBytesMax || !inBounds(ptr, len)) return -1;
          charge(agent, len);
          const name = utf8.decode(new Uint8Array(agent.memory.buffer, ptr, len));
          return agent.topicIds.get(name) ?? refusedCallId(agent, name);
        },
        log: (level: number, ptr: number, len: number): void => {
          if (!inBounds(ptr, len)) return;
          charge(agent, len);
          if (agent.logTick !== this.currentTick) {
            agent.logTick = this.currentTick;
            agent.logLines = 0;
          }
          agent.logLines++;
          if (agent.logLines > logLinesPerTickMax) return;
          const text = agent.logLines === logLinesPerTickMax ? utf8Encoder.encode(`(log lines past ${logLinesPerTickMax} this tick are dropped)`) : new Uint8Array(agent.memory.buffer, ptr, Math.min(len, logLineBytesMax));
          this.emitWords(Result.log, agent.setup.agentId, [level], text);
        },
        backpressure: (): number => agent.backpressure,
        random: (): number => {
          return agent.random.nextUint32() | 0;
        },
      },
    };
  }

  private load(agentId: number, token: number): void {
    const setup = this.setupOf(agentId, token);
    if (setup === undefined || setup.token !== token || setup.agentId !== agentId) {
      this.emitWords(Result.loaded, agentId, [0], utf8Encoder.encode(`module for agent ${agentId} did not arrive (token ${token})`));
      return;
    }
    const agent = new Agent(setup);
    try {
      const instance = new WebAssembly.Instance(setup.module, this.imports(agent));
      agent.exports = instance.exports;
      agent.memory = instance.exports.memory as WebAssembly.Memory;
      agent.alloc = instance.exports.agent_alloc as (len: number) => number;
      agent.receive = instance.exports.agent_receive as (ptr: number, len: number) => number;
      agent.fuel = (instance.exports[fuelGlobalExport] as WebAssembly.Global | undefined) ?? null;
      agent.depth = (instance.exports[depthGlobalExport] as WebAssembly.Global | undefined) ?? null;
      // Fail closed: an unmetered module must never run, whatever path it came by.
      if (agent.fuel === null || agent.depth === null) throw new Error('the module is not metered (no lockstep_fuel/lockstep_depth exports)');
      agent.initialPages = agent.memory.buffer.byteLength / wasmPageBytes;
    } catch (error) {
      this.emitWords(Result.loaded, agentId, [0], utf8Encoder.encode(`instantiation failed: ${(error as Error).message}`));
      return;
    }
    this.agents.set(agentId, agent);
    this.emitWords(Result.loaded, agentId, [1]);
  }

  /** Tops the agent's fuel up to its per-tick budget on its first call of the tick. */
  private prepare(agent: Agent): void {
    if (agent.fuelTick === this.currentTick) return;
    agent.fuelTick = this.currentTick;
    agent.pendingFuel = 0;
    if (agent.fuel !== null) agent.fuel.value = BigInt(agent.setup.fuelPerStep);
  }

  /** Classifies a trap (reading the metering globals) and reports the crash. */
  private trapped(agent: Agent, consumed: number, error: unknown): null {
    const { kind, message } = classifyTrap(agent.exports, error, {
      callDepthMax: agent.setup.callDepthMax,
      fuelPerStep: agent.setup.fuelPerStep,
      memoryPagesMax: agent.setup.memoryPagesMax,
      initialPages: agent.initialPages,
    });
    this.crash(agent, crashKindOfTrap[kind], consumed, message);
    return null;
  }

  /** Acts on an ABI return code; returns it, or null after a crash (reported). */
  private outcome(agent: Agent, consumed: number, code: number): number | null {
    if (code === AgentStatus.ok) return AgentStatus.ok;
    if (code === AgentStatus.stop) {
      this.emitWords(Result.stop, agent.setup.agentId, []);
      return AgentStatus.stop;
    }
    if (code < 0) this.crash(agent, CrashKind.agentError, consumed, `agent error ${code}`);
    else this.crash(agent, CrashKind.unknownCode, consumed, `unknown return code ${code}; ABI v${agent.setup.abi} knows 0 (ok), 1 (stop) and negative errors`);
    return null;
  }

  /**
   * Calls into the agent (fuel topped up first). Returns the agent's code, or null after a
   * crash (reported). The metered code restores the depth global on every way out, so it
   * only needs resetting after a trap, and a trap ends the agent.
   */
  private call(agent: Agent, consumed: number, run: () => unknown): number | null {
    this.prepare(agent);
    let code: number;
    try {
      code = Number(run());
    } catch (error) {
      return this.trapped(agent, consumed, error);
    }
    if (!settleFuel(agent)) return this.trapped(agent, consumed, new WebAssembly.RuntimeError('fuel exhausted in host calls'));
    return this.outcome(agent, consumed, code);
  }

  /**
   * The hot path: one inbound message, copied from its shared mailbox slab into the agent's
   * memory (ABI v2: the Envelope as it is; v1: its 16-byte header and the payload), then
   * agent_receive.
   */
  private deliver(agent: Agent, bytes: Uint8Array, start: number): void {
    if (agent.consumedTick !== this.currentTick) {
      agent.consumedTick = this.currentTick;
      agent.consumed = 0;
    }
    const consumed = ++agent.consumed;
    const slab = this.slabOf(readU32(bytes, start + 8));
    const at = readU32(bytes, start + 12);
    const length = readU32(bytes, start + 16);
    if (slab === undefined) {
      this.crash(agent, CrashKind.trap, consumed, `host error: the message's mailbox slab #${readU32(bytes, start + 8)} never arrived`);
      return;
    }
    const v2 = agent.setup.abi >= 2;
    const total = v2 ? length : messageHeaderBytesV1 + length - envelopeHeaderBytes;
    this.prepare(agent);
    let ptr: number;
    try {
      ptr = agent.alloc(total);
    } catch (error) {
      this.trapped(agent, consumed, error);
      return;
    }
    const memory = agent.view();
    if (ptr < 0 || ptr + total > memory.length) {
      this.crash(agent, CrashKind.trap, consumed, `agent_alloc(${total}) returned ${ptr}, outside memory`);
      return;
    }
    if (v2) {
      if (total <= 256) copyBytes(memory, agent.words, ptr, slab, this.slabWordsOf(slab), at, total);
      else memory.set(slab.subarray(at, at + total), ptr);
    } else {
      // v1: topic, sender, seq (low 32 bits), priority as u32s, then the payload.
      for (let i = 0; i < 4; i++) {
        memory[ptr + i] = slab[at + EnvelopeAt.topic + i]!;
        memory[ptr + 4 + i] = slab[at + EnvelopeAt.sender + i]!;
        memory[ptr + 8 + i] = slab[at + EnvelopeAt.seq + i]!;
        memory[ptr + 12 + i] = i === 0 ? slab[at + EnvelopeAt.priority]! : 0;
      }
      const payload = at + envelopeHeaderBytes;
      const payloadBytes = total - messageHeaderBytesV1;
      if (payloadBytes <= 96) for (let i = 0; i < payloadBytes; i++) memory[ptr + messageHeaderBytesV1 + i] = slab[payload + i]!;
      else memory.set(slab.subarray(payload, payload + payloadBytes), ptr + messageHeaderBytesV1);
    }
    let code: number;
    try {
      code = agent.receive(ptr, total);
    } catch (error) {
      this.trapped(agent, consumed, error);
      return;
    }
    if (agent.pendingFuel >= hostFuelSyncUnits && !settleFuel(agent)) {
      this.trapped(agent, consumed, new WebAssembly.RuntimeError('fuel exhausted in host calls'));
      return;
    }
    if (code !== AgentStatus.ok && this.outcome(agent, consumed, code) === AgentStatus.stop) agent.stopRequested = true;
  }
}
