/**
 * The pool's side of the records of protocol.ts: commands queued per tick and encoded into
 * command records, and result records folded into each agent's output for the tick. Every
 * transport uses these two, so a command reaches an AgentHost as the same bytes whether it
 * crossed a ring to a worker or was handed over on the orchestrator's thread, and a result
 * reads the same whichever way it came back.
 */
import type { Envelope } from '../envelope.ts';
import { CrashKind, Op, Result, deliverHeaderBytes, readU32, writeU32, type CrashKindCode } from './protocol.ts';

/** A command for one agent, queued for the next barrier. */
export type PoolCommand =
  | { op: typeof Op.deliver; agent: number; envelope: Envelope }
  | { op: typeof Op.init | typeof Op.shutdown | typeof Op.unload | typeof Op.step | typeof Op.exhaustFuel; agent: number }
  | { op: typeof Op.load; agent: number; token: number };

export interface AgentTickOutput {
  publishes: { topic: number; priority: number; payload: Uint8Array }[];
  /** `name` is set when the topic id is no topic's (a refused inference lookup, agent-host.ts). */
  refused: { topic: number; code: number; name: string | null }[];
  logs: { level: number; text: string }[];
  crash: { kind: CrashKindCode; consumed: number; reason: string } | null;
  stopRequested: boolean;
  loaded: { ok: boolean; error: string } | null;
}

function emptyOutput(): AgentTickOutput {
  return { publishes: [], refused: [], logs: [], crash: null, stopRequested: false, loaded: null };
}

/** Encodes a lane's commands for one tick, reusing one scratch buffer. */
export class CommandEncoder {
  private scratch = new Uint8Array(4096);

  /**
   * The record of command `index` of `commands` in tick `tick`: -1 is TICK_BEGIN,
   * `commands.length` is TICK_END. The record is a view of the scratch buffer, valid until
   * the next call: write it to a ring, or hand it to an AgentHost, before encoding the next.
   */
  encode(commands: readonly PoolCommand[], index: number, tick: number): Uint8Array {
    if (index < 0 || index >= commands.length) {
      const record = this.scratchOf(12);
      writeU32(record, 0, index < 0 ? Op.tickBegin : Op.tickEnd);
      writeU32(record, 4, 0);
      writeU32(record, 8, tick >>> 0);
      return record.subarray(0, 12);
    }
    const command = commands[index]!;
    if (command.op === Op.deliver) {
      const envelope = command.envelope;
      const length = deliverHeaderBytes + envelope.payload.length;
      const record = this.scratchOf(length);
      writeU32(record, 0, Op.deliver);
      writeU32(record, 4, command.agent);
      writeU32(record, 8, envelope.topic);
      writeU32(record, 12, envelope.sender);
      writeU32(record, 16, envelope.seq >>> 0);
      writeU32(record, 20, envelope.priority);
      record.set(envelope.payload, deliverHeaderBytes);
      return record.subarray(0, length);
    }
    const record = this.scratchOf(12);
    writeU32(record, 0, command.op);
    writeU32(record, 4, command.agent);
    writeU32(record, 8, command.op === Op.load ? command.token : command.op === Op.step ? tick >>> 0 : 0);
    return record.subarray(0, 12);
  }

  private scratchOf(bytes: number): Uint8Array {
    if (this.scratch.length < bytes) this.scratch = new Uint8Array(Math.max(bytes, this.scratch.length * 2));
    return this.scratch;
  }
}

const utf8 = new TextDecoder();

/**
 * Folds one result record into `outputs` (copying what it keeps: `view` may be a ring's or
 * a host's scratch); returns the tick of a TICK_DONE, else -1.
 */
export function decodeResult(view: Uint8Array, outputs: Map<number, AgentTickOutput>): number {
  const op = readU32(view, 0);
  const agent = readU32(view, 4);
  if (op === Result.tickDone) return readU32(view, 8);
  let output = outputs.get(agent);
  if (output === undefined) {
    output = emptyOutput();
    outputs.set(agent, output);
  }
  switch (op) {
    case Result.publish:
      output.publishes.push({ topic: readU32(view, 8), priority: readU32(view, 12), payload: view.slice(16) });
      break;
    case Result.refused:
      output.refused.push({ topic: readU32(view, 8), code: readU32(view, 12), name: view.length > 16 ? utf8.decode(view.subarray(16)) : null });
      break;
    case Result.log:
      output.logs.push({ level: readU32(view, 8), text: utf8.decode(view.subarray(12)) });
      break;
    case Result.crash:
      output.crash = { kind: readU32(view, 8) as CrashKindCode, consumed: readU32(view, 12), reason: utf8.decode(view.subarray(16)) };
      break;
    case Result.stop:
      output.stopRequested = true;
      break;
    case Result.loaded:
      output.loaded = { ok: readU32(view, 8) === 1, error: utf8.decode(view.subarray(12)) };
      if (!output.loaded.ok) output.crash = { kind: CrashKind.instantiate, consumed: 0, reason: output.loaded.error };
      break;
    default:
      throw new Error(`assertion failed: unknown result opcode ${op}`);
  }
  return -1;
}
