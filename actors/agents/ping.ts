// @ts-nocheck: AssemblyScript, compiled by asc (actors/agents/build.ts), not by tsc.
/**
 * ping: one half of a ping-pong pair. It serves the first ball in agent_init (a u32 rally
 * counter, little-endian, starting at 0, on `ping`); every ball that comes back on `pong`
 * goes out again on `ping` with the counter plus one. pong.ts is the other half.
 */
import { Status, message, publishU32, topic } from './sdk/lockstep';
export { lockstep_abi_version, agent_alloc } from './sdk/lockstep';

let ping: i32 = -1;
let pong: i32 = -1;

export function agent_init(): i32 {
  ping = topic('ping');
  pong = topic('pong');
  if (ping < 0 || pong < 0) return -1;
  const result = publishU32(ping, 0);
  return result < 0 ? result : Status.Ok;
}

export function agent_receive(ptr: i32, len: i32): i32 {
  const ball = message(ptr, len);
  if (ball.topic != pong || ball.payloadLength < 4) return Status.Ok;
  const result = publishU32(ping, load<u32>(ball.payloadPtr) + 1);
  return result < 0 ? result : Status.Ok;
}

export function agent_step(tick: i32): i32 {
  return Status.Ok;
}

export function agent_shutdown(): i32 {
  return Status.Ok;
}
