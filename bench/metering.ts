/**
 * What fuel metering costs a CPU-bound agent: the same WAT module run unmetered and metered
 * (src/wasm/metering.ts), in one process, warm, median of several runs.
 *
 * The workload is agent-like and loop-heavy, the worst case for a pass that charges at
 * every loop header: a sieve of Eratosthenes over `sieveBytes` bytes of linear memory
 * (memory.fill to reset it, a tight marking loop), then an FNV-1a hash over the sieve.
 * Both versions must return the same checksum, or the bench throws.
 *
 * Nothing is printed unless this file is run directly (`npx tsx bench/metering.ts`), which
 * prints both timings side by side with the core count.
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import wabtFactory from 'wabt';
import { meterModule } from '../src/wasm/metering.ts';
import { fuelGlobalExport, depthGlobalExport } from '../src/wasm/abi.ts';

/** 2 MB of sieve: ~5-15 ms per run on one core of this kind of machine. */
const sieveBytes = 2_000_000;
/** Runs before timing: lets V8 tier the hot function up from Liftoff to TurboFan. */
const warmupRuns = 20;
const timedRuns = 21;
/** Far more than any run needs: the bench measures accounting, not exhaustion. */
const benchFuel = 1n << 62n;

const sieveWat = `(module
  (memory (export "memory") 32 32)
  (func (export "sieve") (param $n i32) (result i32)
    (local $i i32) (local $j i32) (local $hash i32)
    ;; 0 = maybe prime, 1 = composite
    (memory.fill (i32.const 0) (i32.const 0) (local.get $n))
    (local.set $i (i32.const 2))
    (block $done
      (loop $outer
        (br_if $done (i32.gt_u (i32.mul (local.get $i) (local.get $i)) (local.get $n)))
        (if (i32.eqz (i32.load8_u (local.get $i)))
          (then
            (local.set $j (i32.mul (local.get $i) (local.get $i)))
            (loop $mark
              (i32.store8 (local.get $j) (i32.const 1))
              (local.set $j (i32.add (local.get $j) (local.get $i)))
              (br_if $mark (i32.lt_u (local.get $j) (local.get $n))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    ;; FNV-1a over the sieve, so the result depends on every byte
    (local.set $hash (i32.const 0x811c9dc5))
    (local.set $i (i32.const 0))
    (loop $fnv
      (local.set $hash (i32.mul (i32.xor (local.get $hash) (i32.load8_u (local.get $i))) (i32.const 0x01000193)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fnv (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $hash)))`;

async function sieveModuleBytes(): Promise<Uint8Array> {
  const wabt = await wabtFactory();
  const module = wabt.parseWat('sieve.wat', sieveWat, { bulk_memory: true });
  try {
    return new Uint8Array(module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

interface SieveRunner {
  run(): number;
}

function sieveRunner(bytes: Uint8Array, metered: boolean): SieveRunner {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
  const sieve = instance.exports.sieve as (n: number) => number;
  const fuel = instance.exports[fuelGlobalExport] as WebAssembly.Global | undefined;
  const depth = instance.exports[depthGlobalExport] as WebAssembly.Global | undefined;
  if (metered && (fuel === undefined || depth === undefined)) throw new Error('metered module lacks its globals');
  return {
    run(): number {
      // What the host does before every call in.
      if (fuel !== undefined) fuel.value = benchFuel;
      if (depth !== undefined) depth.value = 0;
      return sieve(sieveBytes);
    },
  };
}

function timed(runner: SieveRunner): { ms: number; checksum: number } {
  const start = performance.now();
  const checksum = runner.run();
  return { ms: performance.now() - start, checksum };
}

/**
 * Times the sieve unmetered and metered, warm, alternating the two run by run so that load
 * from other processes hits both alike; median of `timedRuns` runs each.
 * Returns both medians in microseconds and ratio = metered / unmetered.
 * Throws when the two disagree on the checksum (the pass changed what the code computes).
 */
export async function benchMetering(): Promise<{ meteredUs: number; unmeteredUs: number; ratio: number }> {
  const bytes = await sieveModuleBytes();
  const meteredBytes = await meterModule(bytes, { moduleName: 'bench-sieve' });
  const unmetered = sieveRunner(bytes, false);
  const metered = sieveRunner(meteredBytes, true);
  for (let run = 0; run < warmupRuns; run++) {
    unmetered.run();
    metered.run();
  }
  const unmeteredMs: number[] = [];
  const meteredMs: number[] = [];
  for (let run = 0; run < timedRuns; run++) {
    const plain = timed(unmetered);
    const charged = timed(metered);
    if (plain.checksum !== charged.checksum) {
      throw new Error(`metered sieve returned ${charged.checksum}, unmetered ${plain.checksum}`);
    }
    unmeteredMs.push(plain.ms);
    meteredMs.push(charged.ms);
  }
  const unmeteredUs = median(unmeteredMs) * 1000;
  const meteredUs = median(meteredMs) * 1000;
  return { meteredUs, unmeteredUs, ratio: meteredUs / unmeteredUs };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await benchMetering();
  console.log(`cores: ${availableParallelism()}`);
  console.log(`sieve of ${sieveBytes} bytes, median of ${timedRuns} warm runs`);
  console.log(`unmetered_us ${result.unmeteredUs.toFixed(0).padStart(8)}`);
  console.log(`metered_us   ${result.meteredUs.toFixed(0).padStart(8)}`);
  console.log(`ratio        ${result.ratio.toFixed(2).padStart(8)}  (target <= 1.5)`);
}
