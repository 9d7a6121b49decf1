// @ts-nocheck: AssemblyScript, compiled by asc (actors/agents/build.ts), not by tsc.
/**
 * spinner (adversarial): agent_step never returns. Only fuel metering stops it; never run it
 * without metering.
 */
import { Status } from './sdk/lockstep';
export { lockstep_abi_version, agent_alloc } from './sdk/lockstep';

let spins: u32 = 0;

export function agent_init(): i32 {
  return Status.Ok;
}

export function agent_receive(ptr: i32, len: i32): i32 {
  return Status.Ok;
}

export function agent_step(tick: i32): i32 {
  // The global store keeps the optimiser from treating the loop as removable.
  while (true) spins++;
  return Status.Ok;
}

export function agent_shutdown(): i32 {
  return Status.Ok;
}
