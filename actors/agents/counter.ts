// @ts-nocheck: AssemblyScript, compiled by asc (actors/agents/build.ts), not by tsc.
/**
 * counter: counts the messages it receives on `numbers` and, at the end of every step that
 * saw new ones, publishes the running count to `counts` as a u32 (little-endian).
 */
import { Status, message, publishU32, topic } from './sdk/lockstep';
export { lockstep_abi_version, agent_alloc } from './sdk/lockstep';

let numbers: i32 = -1;
let counts: i32 = -1;
let total: u32 = 0;
let unpublished: bool = false;

export function agent_init(): i32 {
  numbers = topic('numbers');
  counts = topic('counts');
  // -1: a topic the manifest does not grant; an agent error says so at init.
  return numbers < 0 || counts < 0 ? -1 : Status.Ok;
}

export function agent_receive(ptr: i32, len: i32): i32 {
  const received = message(ptr, len);
  if (received.topic == numbers) {
    total++;
    unpublished = true;
  }
  return Status.Ok;
}

export function agent_step(tick: i32): i32 {
  if (!unpublished) return Status.Ok;
  unpublished = false;
  const result = publishU32(counts, total);
  return result < 0 ? result : Status.Ok;
}

export function agent_shutdown(): i32 {
  return Status.Ok;
}
