// @ts-nocheck: AssemblyScript, compiled by asc (actors/agents/build.ts), not by tsc.
/**
 * recursor (adversarial): agent_step recurses without bound. The host's call-depth limit
 * traps it deterministically, long before V8's own stack limit would.
 */
import { Status } from './sdk/lockstep';
export { lockstep_abi_version, agent_alloc } from './sdk/lockstep';

let deepest: i32 = 0;

export function agent_init(): i32 {
  return Status.Ok;
}

export function agent_receive(ptr: i32, len: i32): i32 {
  return Status.Ok;
}

export function agent_step(tick: i32): i32 {
  return descend(1) > 0 ? Status.Ok : -1;
}

export function agent_shutdown(): i32 {
  return Status.Ok;
}

// Not a tail call (the + 1 runs after it returns) and `depth` is never negative, so
// neither the optimiser nor the engine can turn this into a loop.
function descend(depth: i32): i32 {
  deepest = depth;
  if (depth < 0) return 0;
  return descend(depth + 1) + 1;
}
