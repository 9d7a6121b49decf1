import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, MeteringError } from '../src/errors.ts';
import { MeteredModuleCache, memoryGrowFuelPerPage, meterModule, sha256Hex } from '../src/wasm/metering.ts';
import {
  arm,
  bulkStaticFuel,
  bulkWat,
  controlFlowExports,
  controlFlowImports,
  controlFlowWat,
  counterOf,
  countingEntryFuel,
  countingIterationFuel,
  countingWat,
  depthOf,
  fuelOf,
  growStaticFuel,
  instantiate,
  recurseFrameFuel,
  recurseWat,
  spinLoopCostFuel,
  spinWat,
  sumsqCost,
  sumsqWat,
  watToWasm,
} from './fixtures/metering-wat.ts';
import { callDepthMaxDefault } from '../src/limits.ts';
import { classifyTrap } from '../src/wasm/traps.ts';
import { depthGlobalExport, fuelGlobalExport } from '../src/wasm/abi.ts';

const freshRuns = 5;

/** Calls `run` and returns the error it throws; fails the test when it returns instead. */
function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to trap, but it returned');
}

describe('meterModule: fuel', () => {
  it('stops a runaway loop with fuel_exhausted after exactly floor(fuel / loop cost) iterations, every run', async () => {
    const metered = await meterModule(watToWasm(spinWat));
    const fuel = 10_007n;
    const expectedIterations = Number(fuel / BigInt(spinLoopCostFuel)); // 2001
    const seen: Array<{ iterations: number; fuelLeft: bigint; kind: string }> = [];
    for (let run = 0; run < freshRuns; run++) {
      const instance = instantiate(metered);
      arm(instance, fuel);
      const error = thrown(() => (instance.exports.spin as () => void)());
      expect(error).toBeInstanceOf(WebAssembly.RuntimeError);
      seen.push({
        iterations: counterOf(instance),
        fuelLeft: fuelOf(instance),
        kind: classifyTrap(instance.exports, error, { callDepthMax: callDepthMaxDefault }).kind,
      });
    }
    // The charge for iteration 2002 takes the fuel below zero and traps before its body.
    const expected = { iterations: expectedIterations, fuelLeft: fuel - BigInt((expectedIterations + 1) * spinLoopCostFuel), kind: 'fuel_exhausted' };
    expect(seen).toEqual(Array.from({ length: freshRuns }, () => expected));
  });

  it('meters the same input to the same bytes every time', async () => {
    const input = watToWasm(controlFlowWat);
    const first = await meterModule(input);
    const second = await meterModule(input.slice());
    expect(sha256Hex(second)).toBe(sha256Hex(first));
    expect(WebAssembly.validate(first)).toBe(true);
    expect(first.length).toBeGreaterThan(input.length);
  });

  it('leaves exactly the predicted fuel after a fixed amount of work, every run', async () => {
    const metered = await meterModule(watToWasm(sumsqWat));
    const budget = 100_000n;
    for (const n of [1, 10, 1000]) {
      const left = new Set<bigint>();
      for (let run = 0; run < freshRuns; run++) {
        const instance = instantiate(metered);
        arm(instance, budget);
        let expectedSum = 0;
        for (let i = 0; i < n; i++) expectedSum = (expectedSum + i * i) | 0;
        expect((instance.exports.sumsq as (n: number) => number)(n)).toBe(expectedSum);
        left.add(fuelOf(instance));
        expect(depthOf(instance)).toBe(0);
      }
      expect([...left]).toEqual([budget - BigInt(sumsqCost(n))]);
    }
  });

  it('charges the counting loop its entry cost plus its iteration cost per pass', async () => {
    const metered = await meterModule(watToWasm(countingWat));
    const instance = instantiate(metered);
    arm(instance, 1_000n);
    expect((instance.exports.run as (n: number) => number)(7)).toBe(7);
    expect(fuelOf(instance)).toBe(1_000n - BigInt(countingEntryFuel + 7 * countingIterationFuel));
  });

  it('runs with exactly enough fuel and traps with one unit less', async () => {
    const metered = await meterModule(watToWasm(sumsqWat));
    const exact = BigInt(sumsqCost(50));
    const enough = instantiate(metered);
    arm(enough, exact);
    (enough.exports.sumsq as (n: number) => number)(50);
    expect(fuelOf(enough)).toBe(0n);
    const short = instantiate(metered);
    arm(short, exact - 1n);
    const error = thrown(() => (short.exports.sumsq as (n: number) => number)(50));
    expect(classifyTrap(short.exports, error, { callDepthMax: callDepthMaxDefault }).kind).toBe('fuel_exhausted');
  });

  it('traps on entry when the host did not arm the fuel (it starts at 0)', async () => {
    const instance = instantiate(await meterModule(watToWasm(sumsqWat)));
    const error = thrown(() => (instance.exports.sumsq as (n: number) => number)(3));
    expect(classifyTrap(instance.exports, error, { callDepthMax: callDepthMaxDefault }).kind).toBe('fuel_exhausted');
    expect(fuelOf(instance)).toBe(-1n); // sumsq's entry charge is 1
  });
});

describe('meterModule: bulk memory', () => {
  const call = (instance: WebAssembly.Instance, name: string, arg: number): unknown =>
    (instance.exports[name] as (x: number) => unknown)(arg);

  it.each([0, 1, 100, 65_536])('memory.fill and memory.copy of %i bytes charge exactly that plus their nodes', async (bytes) => {
    const metered = await meterModule(watToWasm(bulkWat));
    for (const name of ['fill', 'copy']) {
      const instance = instantiate(metered);
      arm(instance, 1_000_000n);
      call(instance, name, bytes);
      expect(fuelOf(instance)).toBe(1_000_000n - BigInt(bulkStaticFuel + bytes));
    }
  });

  it('charges before filling: a fill beyond the budget traps and writes nothing', async () => {
    const instance = instantiate(await meterModule(watToWasm(bulkWat)));
    arm(instance, 1_000n);
    const error = thrown(() => call(instance, 'fill', 5_000));
    expect(classifyTrap(instance.exports, error, { callDepthMax: callDepthMaxDefault }).kind).toBe('fuel_exhausted');
    expect(fuelOf(instance)).toBe(1_000n - BigInt(bulkStaticFuel + 5_000));
    const memory = instance.exports.memory as WebAssembly.Memory;
    expect(new Uint8Array(memory.buffer, 0, 5_000).every((byte) => byte === 0)).toBe(true);
  });

  it('charges memory.grow per page asked for, whether or not the grow succeeds', async () => {
    const instance = instantiate(await meterModule(watToWasm(bulkWat)));
    arm(instance, 1_000_000n);
    expect(call(instance, 'grow', 3)).toBe(2); // old size in pages
    expect(fuelOf(instance)).toBe(1_000_000n - BigInt(growStaticFuel + 3 * memoryGrowFuelPerPage));
    arm(instance, 1_000_000n);
    expect(call(instance, 'grow', 100)).toBe(-1); // past the declared maximum of 8
    expect(fuelOf(instance)).toBe(1_000_000n - BigInt(growStaticFuel + 100 * memoryGrowFuelPerPage));
  });
});

describe('meterModule: call depth', () => {
  it.each([callDepthMaxDefault, 50])(
    'stops infinite recursion with call_depth_exceeded at exactly %i frames, every run, before V8 overflows',
    async (callDepthMax) => {
      const metered = await meterModule(watToWasm(recurseWat), { callDepthMax });
      const fuel = 10_000_000n;
      for (let run = 0; run < freshRuns; run++) {
        const instance = instantiate(metered);
        arm(instance, fuel);
        const error = thrown(() => (instance.exports.recurse as () => void)());
        expect(error).toBeInstanceOf(WebAssembly.RuntimeError);
        expect(classifyTrap(instance.exports, error, { callDepthMax: callDepthMax })).toEqual({
          kind: 'call_depth_exceeded',
          message: `call depth exceeded ${callDepthMax} frames`,
        });
        expect(counterOf(instance)).toBe(callDepthMax);
        expect(depthOf(instance)).toBe(callDepthMax + 1);
        // Frame callDepthMax + 1 paid its entry too, then hit the limit.
        expect(fuelOf(instance)).toBe(fuel - BigInt((callDepthMax + 1) * recurseFrameFuel));
      }
    },
  );

  it('classifies the V8 overflow of the same recursion unmetered as a plain trap that says so', () => {
    const instance = instantiate(watToWasm(recurseWat));
    const error = thrown(() => (instance.exports.recurse as () => void)());
    expect(error).toBeInstanceOf(RangeError);
    const trap = classifyTrap(instance.exports, error, { callDepthMax: callDepthMaxDefault });
    expect(trap.kind).toBe('trap');
    expect(trap.message).toMatch(/V8 stack overflow below the call-depth limit of 1000 frames.*Maximum call stack size exceeded/);
  });

  it('restores the depth on every way out, so many sequential calls never add up', async () => {
    const instance = instantiate(await meterModule(watToWasm(controlFlowWat), { callDepthMax: 3 }), controlFlowImports);
    arm(instance, 1n << 40n);
    // A depth leak on any path would pass 3 within a few calls.
    for (let x = 0; x < 50; x++) {
      for (const name of controlFlowExports) (instance.exports[name] as (x: number) => number)(x);
    }
    expect(depthOf(instance)).toBe(0);
  });

  it('refuses a callDepthMax outside 1..10000 with a ConfigError', async () => {
    const bytes = watToWasm(spinWat);
    for (const callDepthMax of [0, -1, 1.5, 10_001, Number.NaN]) {
      await expect(meterModule(bytes, { callDepthMax })).rejects.toThrow(ConfigError);
    }
  });
});

describe('meterModule: differential against the unmetered module', () => {
  it('keeps br_table, if/else, nested loops, call_indirect, multi-value, SIMD, tail calls and bulk memory computing the same', async () => {
    const input = watToWasm(controlFlowWat);
    const metered = await meterModule(input);
    expect(WebAssembly.validate(metered)).toBe(true);
    const plain = instantiate(input, controlFlowImports);
    const charged = instantiate(metered, controlFlowImports);
    const inputs = [0, 1, 2, 3, 4, 5, 13, 99, 1234, 0x7fff_ffff, -1];
    const budget = 1n << 40n;
    for (const name of controlFlowExports) {
      for (const x of inputs) {
        arm(charged, budget);
        const expected = (plain.exports[name] as (x: number) => number)(x);
        const actual = (charged.exports[name] as (x: number) => number)(x);
        expect({ name, x, result: actual }).toEqual({ name, x, result: expected });
        expect(depthOf(charged)).toBe(0);
        expect(fuelOf(charged)).toBeLessThan(budget);
      }
    }
    // Metering is per module, not per instance: memories do not leak between them.
    expect(new Uint8Array((charged.exports.memory as WebAssembly.Memory).buffer, 300, 64)).toEqual(
      new Uint8Array((plain.exports.memory as WebAssembly.Memory).buffer, 300, 64),
    );
  });

  it('charges the same fuel for the same input every run, and different fuel for different work', async () => {
    const metered = await meterModule(watToWasm(controlFlowWat));
    const spent = (x: number): bigint => {
      const instance = instantiate(metered, controlFlowImports);
      arm(instance, 1n << 40n);
      (instance.exports.nested as (x: number) => number)(x);
      return (1n << 40n) - fuelOf(instance);
    };
    expect(spent(17)).toBe(spent(17));
    expect(spent(18)).toBeGreaterThan(spent(17));
  });

  it('does not instrument imported host functions and exports the two globals', async () => {
    const metered = await meterModule(watToWasm(controlFlowWat));
    const module = new WebAssembly.Module(metered);
    expect(WebAssembly.Module.imports(module)).toEqual([{ module: 'env', name: 'triple', kind: 'function' }]);
    const globals = WebAssembly.Module.exports(module).filter((entry) => entry.kind === 'global').map((entry) => entry.name);
    expect(globals.sort()).toEqual([depthGlobalExport, fuelGlobalExport].sort());
  });
});

describe('meterModule: refusals', () => {
  it('throws a short MeteringError naming the module for bytes binaryen cannot read', async () => {
    const garbage = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 0]);
    const error = await meterModule(garbage, { moduleName: 'broken.wasm' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MeteringError);
    expect((error as MeteringError).message).toMatch(/^module 'broken\.wasm' could not be metered: .*parsing wasm binary.*Section extends beyond end of input/);
    expect((error as MeteringError).message.length).toBeLessThan(2_500);
    expect((error as MeteringError).code).toBe('metering_failed');
  });

  it('names the module by its hash when no name is given', async () => {
    const bytes = new Uint8Array([1, 2, 3]);
    await expect(meterModule(bytes)).rejects.toThrow(`module 'sha256:${sha256Hex(bytes).slice(0, 16)}' could not be metered`);
  });

  it('refuses an instruction kind it does not meter (atomics) instead of metering it wrongly', async () => {
    const atomics = watToWasm('(module (memory 1 1 shared) (func (export "f") (result i32) (i32.atomic.load (i32.const 0))))', {
      threads: true,
    });
    await expect(meterModule(atomics, { moduleName: 'atomic.wasm' })).rejects.toThrow(MeteringError);
  });

  it('refuses a module that is already metered', async () => {
    const once = await meterModule(watToWasm(spinWat));
    await expect(meterModule(once, { moduleName: 'twice.wasm' })).rejects.toThrow(/already exports 'lockstep_fuel'; was it metered twice/);
  });

  it('refuses a feature outside the agent feature set without blaming the pass', async () => {
    const refTypes = watToWasm('(module (func (export "f") (param externref) (result i32) (ref.is_null (local.get 0))))', {
      reference_types: true,
    });
    await expect(meterModule(refTypes, { moduleName: 'reftypes.wasm' })).rejects.toThrow(/admission should have refused it.*reference-types/);
  });
});

describe('classifyTrap', () => {
  it('tells a trap of the agent itself from fuel and depth', async () => {
    const bytes = watToWasm(`(module
      (memory 1 1)
      (func (export "boom") unreachable)
      (func (export "oob") (result i32) (i32.load (i32.const 70000))))`);
    const instance = instantiate(await meterModule(bytes));
    for (const name of ['boom', 'oob']) {
      arm(instance, 1_000n);
      const error = thrown(() => (instance.exports[name] as () => unknown)());
      const trap = classifyTrap(instance.exports, error, { callDepthMax: callDepthMaxDefault });
      expect(trap.kind).toBe('trap');
      expect(trap.message).toMatch(/^trap: (unreachable|memory access out of bounds)$/);
    }
  });

  // memory.grow does not trap: it returns -1, and an agent then aborts. That abort is a
  // memory limit only if the memory grew to its maximum since instantiation.
  const growThenAbort = `(module
      (memory (export "memory") 1 4)
      (func (export "grow") (param $pages i32) (result i32) (memory.grow (local.get $pages)))
      (func (export "abort") unreachable))`;

  it('calls a trap after the memory grew to its declared maximum the memory limit, and names the maximum', async () => {
    const instance = instantiate(await meterModule(watToWasm(growThenAbort)));
    arm(instance, 1_000_000n);
    expect((instance.exports.grow as (pages: number) => number)(3)).toBe(1);
    expect((instance.exports.grow as (pages: number) => number)(1)).toBe(-1);
    const error = thrown(() => (instance.exports.abort as () => void)());
    expect(classifyTrap(instance.exports, error, { callDepthMax: callDepthMaxDefault, memoryPagesMax: 4, initialPages: 1 })).toEqual({
      kind: 'memory_limit',
      message: 'trapped with its memory grown to the declared maximum of 4 pages (256 KiB): unreachable',
    });
  });

  it('does not call a trap of a memory at its maximum from the start the memory limit', async () => {
    const instance = instantiate(await meterModule(watToWasm(growThenAbort)));
    arm(instance, 1_000_000n);
    const error = thrown(() => (instance.exports.abort as () => void)());
    expect(classifyTrap(instance.exports, error, { callDepthMax: callDepthMaxDefault, memoryPagesMax: 1, initialPages: 1 }).kind).toBe('trap');
  });

  it('names the fuel budget when it knows it', async () => {
    const instance = instantiate(await meterModule(watToWasm(growThenAbort)));
    const error = thrown(() => (instance.exports.abort as () => void)());
    expect(classifyTrap(instance.exports, error, { callDepthMax: callDepthMaxDefault, fuelPerStep: 500 }).message).toBe(
      'fuel exhausted: the agent used more than its 500 fuel this tick',
    );
  });
});

describe('MeteredModuleCache', () => {
  const directories: string[] = [];
  afterAll(() => {
    for (const directory of directories) rmSync(directory, { recursive: true, force: true });
  });

  it('answers the second get from memory without running binaryen', async () => {
    const cache = new MeteredModuleCache();
    const bytes = watToWasm(sumsqWat);
    const first = await cache.get(bytes, { callDepthMax: 100 });
    const second = await cache.get(bytes.slice(), { callDepthMax: 100 });
    expect(second).toBe(first);
    expect(cache.stats).toEqual({ memoryHits: 1, diskHits: 0, meterings: 1 });
    expect(first.sha256).toBe(sha256Hex(bytes));
    expect(first.meteredSha256).toBe(sha256Hex(first.bytes));
    expect(first.bytes).toEqual(await meterModule(bytes, { callDepthMax: 100 }));
    // Another depth limit is another module.
    const other = await cache.get(bytes, { callDepthMax: 200 });
    expect(other.meteredSha256).not.toBe(first.meteredSha256);
    expect(cache.stats.meterings).toBe(2);
  });

  it('shares one metering between concurrent gets and does not cache a failure', async () => {
    const cache = new MeteredModuleCache();
    const bytes = watToWasm(countingWat);
    const [a, b] = await Promise.all([cache.get(bytes), cache.get(bytes)]);
    expect(a).toBe(b);
    expect(cache.stats.meterings).toBe(1);
    const garbage = new Uint8Array([9, 9, 9]);
    await expect(cache.get(garbage)).rejects.toThrow(MeteringError);
    await expect(cache.get(garbage)).rejects.toThrow(MeteringError);
    expect(cache.stats.meterings).toBe(3);
  });

  it('keeps at most entriesMax modules in memory', async () => {
    const cache = new MeteredModuleCache({ entriesMax: 1 });
    const spin = watToWasm(spinWat);
    await cache.get(spin);
    await cache.get(watToWasm(countingWat));
    await cache.get(spin);
    expect(cache.stats).toEqual({ memoryHits: 0, diskHits: 0, meterings: 3 });
  });

  it('persists metered modules on disk across cache instances, written whole', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'lockstep-metering-'));
    directories.push(directory);
    const bytes = watToWasm(controlFlowWat);
    const writer = new MeteredModuleCache({ directory: join(directory, 'nested') });
    const written = await writer.get(bytes);
    expect(writer.stats).toEqual({ memoryHits: 0, diskHits: 0, meterings: 1 });
    const files = readdirSync(join(directory, 'nested'));
    expect(files).toEqual([`${MeteredModuleCache.keyOf(written.sha256, callDepthMaxDefault)}.wasm`]);

    const reader = new MeteredModuleCache({ directory: join(directory, 'nested') });
    const read = await reader.get(bytes);
    expect(reader.stats).toEqual({ memoryHits: 0, diskHits: 1, meterings: 0 });
    expect(read.bytes).toEqual(written.bytes);
    expect(read.meteredSha256).toBe(written.meteredSha256);
  });

  it('re-meters a cached file that is not valid WebAssembly', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'lockstep-metering-'));
    directories.push(directory);
    const bytes = watToWasm(spinWat);
    const key = MeteredModuleCache.keyOf(sha256Hex(bytes), callDepthMaxDefault);
    writeFileSync(join(directory, `${key}.wasm`), new Uint8Array([0, 97, 115, 109]));
    const cache = new MeteredModuleCache({ directory });
    const result = await cache.get(bytes);
    expect(cache.stats).toEqual({ memoryHits: 0, diskHits: 0, meterings: 1 });
    expect(WebAssembly.validate(result.bytes)).toBe(true);
    const again = new MeteredModuleCache({ directory });
    await again.get(bytes);
    expect(again.stats.diskHits).toBe(1);
  });
});
