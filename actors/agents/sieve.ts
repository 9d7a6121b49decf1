// @ts-nocheck: AssemblyScript, compiled by asc (actors/agents/build.ts), not by tsc.
/**
 * sieve: real CPU work for the demo. Every step it counts the primes below `bound` with a
 * sieve of Eratosthenes (one byte per number) in linear memory past the static data, and
 * publishes the count to `results`.
 *
 * A message on `config` (u32 bound, little-endian) sets the bound, clamped to
 * 2..sieve_bound_max so the sieve fits the manifest's memoryPages and fuelPerStep (a step
 * at the default bound costs ~0.85M fuel under the metering pass, at the maximum ~4.4M).
 * Result payload (8 bytes, little-endian): u32 bound, u32 count of primes below it.
 */
import { LogLevel, Status, log, message, publishBytes, topic } from './sdk/lockstep';
export { lockstep_abi_version, agent_alloc } from './sdk/lockstep';

const sieve_bound_default: u32 = 20000;
const sieve_bound_min: u32 = 2;
const sieve_bound_max: u32 = 100000;
const page_bytes: usize = 65536;

const result: usize = memory.data(8, 8);
let config: i32 = -1;
let results: i32 = -1;
let bound: u32 = 0; // set in agent_init: a global initialised from another global needs a start function

export function agent_init(): i32 {
  config = topic('config');
  results = topic('results');
  bound = sieve_bound_default;
  return config < 0 || results < 0 ? -1 : Status.Ok;
}

export function agent_receive(ptr: i32, len: i32): i32 {
  const update = message(ptr, len);
  if (update.topic != config) return Status.Ok;
  if (update.payloadLength < 4) {
    log(LogLevel.Warn, 'sieve: config payload shorter than 4 bytes, ignored');
    return Status.Ok;
  }
  bound = min(max(load<u32>(update.payloadPtr), sieve_bound_min), sieve_bound_max);
  return Status.Ok;
}

export function agent_step(tick: i32): i32 {
  store<u32>(result, bound);
  store<u32>(result, countPrimesBelow(bound), 4);
  const published = publishBytes(results, result, 8);
  return published < 0 ? published : Status.Ok;
}

export function agent_shutdown(): i32 {
  return Status.Ok;
}

/** Primes below `limit` (2 <= limit <= sieve_bound_max). The flags live at __heap_base:
 * the agent has no heap, so everything past the static data is the sieve's. */
function countPrimesBelow(limit: u32): u32 {
  const flags = (__heap_base + 15) & ~15;
  const end = flags + <usize>limit;
  const available = <usize>memory.size() * page_bytes;
  if (end > available) {
    const pages = <i32>((end - available + page_bytes - 1) / page_bytes);
    if (memory.grow(pages) < 0) unreachable(); // only if memoryPages is set too low
  }
  memory.fill(flags, 1, limit);
  store<u8>(flags, 0);
  store<u8>(flags, 0, 1);
  for (let candidate: u32 = 2; candidate * candidate < limit; candidate++) {
    if (load<u8>(flags + <usize>candidate) == 0) continue;
    for (let multiple = candidate * candidate; multiple < limit; multiple += candidate) {
      store<u8>(flags + <usize>multiple, 0);
    }
  }
  let count: u32 = 0;
  for (let index: u32 = 0; index < limit; index++) count += load<u8>(flags + <usize>index);
  return count;
}
