// @ts-nocheck: AssemblyScript, compiled by asc (actors/agents/build.ts), not by tsc.
/**
 * pong: the other half of ping.ts. Every ball on `ping` (a u32 rally counter,
 * little-endian) goes back on `pong` with the counter plus one.
 */
import { Status, message, publishU32, topic } from './sdk/lockstep';
export { lockstep_abi_version, agent_alloc } from './sdk/lockstep';

let ping: i32 = -1;
let pong: i32 = -1;

export function agent_init(): i32 {
  ping = topic('ping');
  pong = topic('pong');
  return ping < 0 || pong < 0 ? -1 : Status.Ok;
}

export function agent_receive(ptr: i32, len: i32): i32 {
  const ball = message(ptr, len);
  if (ball.topic != ping || ball.payloadLength < 4) return Status.Ok;
  const result = publishU32(pong, load<u32>(ball.payloadPtr) + 1);
  return result < 0 ? result : Status.Ok;
}

export function agent_step(tick: i32): i32 {
  return Status.Ok;
}

export function agent_shutdown(): i32 {
  return Status.Ok;
}
