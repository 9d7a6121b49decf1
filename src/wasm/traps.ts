/**
 * Why a call into a metered agent failed: the one classifier the agent host reports
 * crashes with and the metering tests check. From the instance's globals first (the
 * inserted checks trap the moment fuel goes below zero or depth above the limit, so either
 * condition seen after a failure is the reason: the host resets both before every call),
 * then from the error and the memory:
 *
 *   fuel_exhausted       the fuel global is below zero
 *   call_depth_exceeded  the depth global is above the limit
 *   trap                 a V8 stack overflow below the depth limit (frames too large for the
 *                        thread's stack: a nondeterministic fault, and the message says so)
 *   memory_limit         a trap after the memory grew since instantiation to its declared
 *                        maximum (memory.grow does not trap, it returns -1; an agent then
 *                        aborts). A memory at its maximum from the start never counts: any
 *                        trap of a fixed-size agent would read as a memory limit
 *   trap                 anything else (`unreachable`, an out-of-bounds access, a host
 *                        import that threw), with the error's own text
 */
import { depthGlobalExport, fuelGlobalExport } from './abi.ts';

export type TrapKind = 'fuel_exhausted' | 'call_depth_exceeded' | 'memory_limit' | 'trap';

/** What the classifier knows of the agent besides its globals. */
export interface TrapLimits {
  callDepthMax: number;
  /** The fuel budget of the call's tick, to name it in the message. */
  fuelPerStep?: number;
  /** The declared memory maximum and the pages at instantiation, in 64 KiB pages. */
  memoryPagesMax?: number;
  initialPages?: number;
}

const wasmPageBytes = 65_536;

function globalValue(instanceExports: Readonly<Record<string, unknown>>, name: string): unknown {
  const global = instanceExports[name];
  return global instanceof WebAssembly.Global ? (global.value as unknown) : undefined;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Takes the instance's exports (not WebAssembly.Exports: the public declarations stay free
 * of the WebAssembly namespace), the error the call threw and the agent's limits. Returns
 * the kind and the message a crash is reported with. Throws nothing.
 */
export function classifyTrap(
  instanceExports: Readonly<Record<string, unknown>>,
  error: unknown,
  limits: TrapLimits,
): { kind: TrapKind; message: string } {
  const fuel = globalValue(instanceExports, fuelGlobalExport);
  if (typeof fuel === 'bigint' && fuel < 0n) {
    const budget = limits.fuelPerStep === undefined ? 'fuel budget' : `${limits.fuelPerStep} fuel`;
    return { kind: 'fuel_exhausted', message: `fuel exhausted: the agent used more than its ${budget} this tick` };
  }
  const depth = globalValue(instanceExports, depthGlobalExport);
  if (typeof depth === 'number' && depth > limits.callDepthMax) {
    return { kind: 'call_depth_exceeded', message: `call depth exceeded ${limits.callDepthMax} frames` };
  }
  if (error instanceof RangeError && /call stack/i.test(error.message)) {
    return {
      kind: 'trap',
      message: `V8 stack overflow below the call-depth limit of ${limits.callDepthMax} frames (a nondeterministic fault: frames too large for the thread's stack): ${error.message}`,
    };
  }
  const memory = instanceExports.memory;
  if (memory instanceof WebAssembly.Memory && limits.memoryPagesMax !== undefined) {
    const pages = memory.buffer.byteLength / wasmPageBytes;
    if (pages >= limits.memoryPagesMax && pages > (limits.initialPages ?? pages)) {
      const max = limits.memoryPagesMax;
      return { kind: 'memory_limit', message: `trapped with its memory grown to the declared maximum of ${max} pages (${max * 64} KiB): ${errorMessage(error)}` };
    }
  }
  return { kind: 'trap', message: `trap: ${errorMessage(error)}` };
}
