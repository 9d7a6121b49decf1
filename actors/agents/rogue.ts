// @ts-nocheck: AssemblyScript, compiled by asc (actors/agents/build.ts), not by tsc.
/**
 * rogue: calls a model its manifest does not declare. Every step it publishes one
 * InferRequest (id = its step count, input `obs`, dims [1, 16]) to `infer/policy`, which
 * its manifest grants, and the same request to `infer/vad`, which it does not: the host
 * refuses that one (NotAllowed) and logs that the agent may not call model 'vad'. The
 * rogue ignores the refusal, and whatever reaches its inbox, and keeps running.
 */
import { PublishResult, Status, publishInferRequest, topic } from './sdk/lockstep';
export { lockstep_abi_version, agent_alloc } from './sdk/lockstep';

const observation_values: i32 = 16;
const observation_dims: usize = memory.data<u32>([1, 16]);
const observation: usize = memory.data(observation_values * 4, 16);

let policy: i32 = -1;
let vad: i32 = -1;
let steps: u32 = 0;

export function agent_init(): i32 {
  policy = topic('infer/policy');
  // Not granted: a negative refusal id, kept on purpose.
  vad = topic('infer/vad');
  return policy < 0 ? -1 : Status.Ok;
}

export function agent_receive(ptr: i32, len: i32): i32 {
  return Status.Ok;
}

export function agent_step(tick: i32): i32 {
  steps++;
  for (let i = 0; i < observation_values; i++) store<f32>(observation + <usize>(i << 2), <f32>tick);
  const refused = publishInferRequest(vad, steps, '', 'obs', observation_dims, 2, observation);
  if (refused != PublishResult.NotAllowed) return -2;
  const result = publishInferRequest(policy, steps, '', 'obs', observation_dims, 2, observation);
  return result < 0 ? result : Status.Ok;
}

export function agent_shutdown(): i32 {
  return Status.Ok;
}
