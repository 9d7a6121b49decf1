// @ts-nocheck: AssemblyScript, compiled by asc (actors/agents/build.ts), not by tsc.
/**
 * pilot: asks a policy model what to do, every step, and publishes what it decided.
 *
 * Each step it builds a 16-float observation from its own state (its step count and the
 * tick), and publishes an InferRequest (input `obs`, dims [1, 16], id = its step count,
 * counting from 1) to `infer/policy`. Each InferResponse that reaches its inbox (the next
 * tick) becomes one 8-byte record on `decisions`, little-endian:
 *
 *   0 u32 request id   4 u8 action   5 u8 error code   6 u16 zero
 *
 * The action is the argmax of the response's output `probs` (4 floats; the first of equal
 * ones wins); a response with an error, or without a usable `probs`, gives action 255 and
 * the error code (bad_request when it had none).
 */
import {
  InferErrorCode,
  Status,
  inferOutputF32Named,
  inferOutputValue,
  inferResponseErrorCode,
  inferResponseId,
  message,
  outbox,
  publish,
  publishInferRequest,
  readInferResponse,
  topic,
} from './sdk/lockstep';
export { lockstep_abi_version, agent_alloc } from './sdk/lockstep';

const observation_values: i32 = 16;
const action_count: i32 = 4;
const action_error: u8 = 255;
const decision_bytes: i32 = 8;

/** The observation's shape, [1, 16], in static memory. */
const observation_dims: usize = memory.data<u32>([1, 16]);
const observation: usize = memory.data(observation_values * 4, 16);

let policy: i32 = -1;
let decisions: i32 = -1;
let steps: u32 = 0;

export function agent_init(): i32 {
  policy = topic('infer/policy');
  decisions = topic('decisions');
  return policy < 0 || decisions < 0 ? -1 : Status.Ok;
}

export function agent_receive(ptr: i32, len: i32): i32 {
  const received = message(ptr, len);
  // The pilot subscribes to nothing: all it gets is its inbox, where answers arrive.
  let action = action_error;
  let error = <u8>InferErrorCode.BadRequest;
  let id: u32 = 0;
  if (readInferResponse(received.payloadPtr, received.payloadLength)) {
    id = inferResponseId();
    error = <u8>inferResponseErrorCode();
    if (error == InferErrorCode.None) {
      if (inferOutputF32Named('probs') == action_count) action = argmax();
      else error = <u8>InferErrorCode.BadRequest;
    }
  }
  const record = outbox(decision_bytes);
  store<u32>(record.dataStart, id);
  store<u8>(record.dataStart, action, 4);
  store<u8>(record.dataStart, error, 5);
  store<u16>(record.dataStart, 0, 6);
  const result = publish(decisions, record);
  return result < 0 ? result : Status.Ok;
}

export function agent_step(tick: i32): i32 {
  steps++;
  for (let i = 0; i < observation_values; i++) {
    // Something that changes every step and differs per slot: a ramp, scaled.
    const value = <f32>(<i32>steps * (i + 1) + tick) / <f32>64;
    store<f32>(observation + <usize>(i << 2), value);
  }
  const result = publishInferRequest(policy, steps, '', 'obs', observation_dims, 2, observation);
  return result < 0 ? result : Status.Ok;
}

export function agent_shutdown(): i32 {
  return Status.Ok;
}

/** The index of the largest of the selected output's action_count values (first wins). */
function argmax(): u8 {
  let best = 0;
  let bestValue = inferOutputValue(0);
  for (let i = 1; i < action_count; i++) {
    const value = inferOutputValue(i);
    if (value > bestValue) {
      best = i;
      bestValue = value;
    }
  }
  return <u8>best;
}
