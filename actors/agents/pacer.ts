// @ts-nocheck: AssemblyScript, compiled by asc (actors/agents/build.ts), not by tsc.
/**
 * pacer: a producer that paces itself by its subscribers' backpressure (the `backpressure`
 * import, docs/abi.md). Every step it publishes a burst of messages on `load`, each 8 bytes
 * (little-endian): a u32 serial number, counting every message it ever published (so a
 * subscriber sees a refused one as a gap), then the u32 size of this step's burst.
 *
 * What it does with backpressure(): at the start of each step it asks how many of its
 * publishes the barrier of its previous scheduled tick refused because a subscriber's
 * mailbox was full. None: the burst grows by one, up to pacer_burst_max. Some: the burst
 * halves, down to 1 (additive increase, multiplicative decrease, as TCP paces itself), so it
 * settles near what its slowest subscriber takes per tick. The host does not schedule it
 * while that mailbox is full, so the step that hears of a refusal is the first one after
 * the mailbox has room again. Its first step sends a burst of 1.
 */
import { Status, backpressure, message, outbox, publish, topic } from './sdk/lockstep';
export { lockstep_abi_version, agent_alloc } from './sdk/lockstep';

/** The largest burst: 64 messages of 8 bytes a tick. */
const pacer_burst_max: u32 = 64;
const load_message_bytes: i32 = 8;

let load: i32 = -1;
let burst: u32 = 0;
let serial: u32 = 0;

export function agent_init(): i32 {
  load = topic('load');
  burst = 0;
  serial = 0;
  return load < 0 ? -1 : Status.Ok;
}

export function agent_receive(ptr: i32, len: i32): i32 {
  // It subscribes to nothing; a direct message is read (so a bad one traps) and ignored.
  message(ptr, len);
  return Status.Ok;
}

export function agent_step(tick: i32): i32 {
  if (backpressure() > 0) {
    burst = max<u32>(burst >> 1, 1);
  } else if (burst < pacer_burst_max) {
    burst++;
  }
  const out = outbox(load_message_bytes);
  for (let sent: u32 = 0; sent < burst; sent++) {
    store<u32>(out.dataStart, serial++);
    store<u32>(out.dataStart, burst, 4);
    const result = publish(load, out);
    if (result < 0) return result;
  }
  return Status.Ok;
}

export function agent_shutdown(): i32 {
  return Status.Ok;
}
