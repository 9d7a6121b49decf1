// @ts-nocheck: AssemblyScript, compiled by asc (actors/agents/build.ts), not by tsc.
/**
 * grower (adversarial): agent_step grows memory one page at a time until memory.grow fails
 * at the declared maximum, then traps with `unreachable`.
 */
import { Status } from './sdk/lockstep';
export { lockstep_abi_version, agent_alloc } from './sdk/lockstep';

let grown: i32 = 0;

export function agent_init(): i32 {
  return Status.Ok;
}

export function agent_receive(ptr: i32, len: i32): i32 {
  return Status.Ok;
}

export function agent_step(tick: i32): i32 {
  while (memory.grow(1) >= 0) grown++;
  unreachable();
  return Status.Ok;
}

export function agent_shutdown(): i32 {
  return Status.Ok;
}
