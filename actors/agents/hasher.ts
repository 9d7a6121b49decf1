// @ts-nocheck: AssemblyScript, compiled by asc (actors/agents/build.ts), not by tsc.
/**
 * hasher: real CPU work for the demo. For each message on `jobs` it hashes the payload and
 * mixes the digest for a number of rounds, then publishes the result to `results`.
 *
 * Job payload: u32 rounds (little-endian), then the bytes to hash. A payload shorter than
 * 4 bytes is hashed whole with hasher_rounds_default rounds. Rounds are capped at
 * hasher_rounds_max: the worst job (max rounds, 64 KiB payload) costs ~4.5M fuel under
 * the metering pass, under half the manifest's fuelPerStep.
 * Result payload (16 bytes, little-endian): u32 job seq (its low 32 bits), u32 rounds run,
 * u64 digest.
 * Digest: FNV-1a 64 over the bytes, then per round the MurmurHash3 fmix64 finaliser of
 * (digest xor round).
 */
import { Status, message, outbox, publish, topic } from './sdk/lockstep';
export { lockstep_abi_version, agent_alloc } from './sdk/lockstep';

const hasher_rounds_default: u32 = 1000;
const hasher_rounds_max: u32 = 100000;
const result_bytes: i32 = 16;

let jobs: i32 = -1;
let results: i32 = -1;

export function agent_init(): i32 {
  jobs = topic('jobs');
  results = topic('results');
  return jobs < 0 || results < 0 ? -1 : Status.Ok;
}

export function agent_receive(ptr: i32, len: i32): i32 {
  const job = message(ptr, len);
  if (job.topic != jobs) return Status.Ok;
  let data = job.payloadPtr;
  let length = job.payloadLength;
  let rounds = hasher_rounds_default;
  if (length >= 4) {
    rounds = min(load<u32>(data), hasher_rounds_max);
    data += 4;
    length -= 4;
  }
  const digest = mix(fnv1a64(data, length), rounds);
  const out = outbox(result_bytes);
  store<u32>(out.dataStart, <u32>job.seq);
  store<u32>(out.dataStart, rounds, 4);
  store<u64>(out.dataStart, digest, 8);
  const result = publish(results, out);
  return result < 0 ? result : Status.Ok;
}

export function agent_step(tick: i32): i32 {
  return Status.Ok;
}

export function agent_shutdown(): i32 {
  return Status.Ok;
}

function fnv1a64(data: usize, length: i32): u64 {
  let hash: u64 = 0xcbf29ce484222325;
  for (let index = 0; index < length; index++) {
    hash = (hash ^ <u64>load<u8>(data + <usize>index)) * 0x100000001b3;
  }
  return hash;
}

function mix(seed: u64, rounds: u32): u64 {
  let hash = seed;
  for (let round: u32 = 0; round < rounds; round++) {
    hash ^= <u64>round;
    hash ^= hash >> 33;
    hash *= 0xff51afd7ed558ccd;
    hash ^= hash >> 33;
    hash *= 0xc4ceb9fe1a85ec53;
    hash ^= hash >> 33;
  }
  return hash;
}
