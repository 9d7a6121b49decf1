// @ts-nocheck: AssemblyScript, compiled by asc (actors/agents/build.ts), not by tsc.
/**
 * bad_code (adversarial): agent_step returns 7, which is not an ABI v1 return code; the host
 * crashes it with `unknown return code 7`.
 */
import { Status } from './sdk/lockstep';
export { lockstep_abi_version, agent_alloc } from './sdk/lockstep';

const unknown_return_code: i32 = 7;

export function agent_init(): i32 {
  return Status.Ok;
}

export function agent_receive(ptr: i32, len: i32): i32 {
  return Status.Ok;
}

export function agent_step(tick: i32): i32 {
  return unknown_return_code;
}

export function agent_shutdown(): i32 {
  return Status.Ok;
}
