// @ts-nocheck: AssemblyScript, compiled by asc (actors/agents/build.ts), not by tsc.
/**
 * bad_init (adversarial): traps in agent_init, so it never runs a step.
 */
import { Status } from './sdk/lockstep';
export { lockstep_abi_version, agent_alloc } from './sdk/lockstep';

export function agent_init(): i32 {
  unreachable();
  return Status.Ok;
}

export function agent_receive(ptr: i32, len: i32): i32 {
  return Status.Ok;
}

export function agent_step(tick: i32): i32 {
  return Status.Ok;
}

export function agent_shutdown(): i32 {
  return Status.Ok;
}
