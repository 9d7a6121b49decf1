/**
 * The metering pass: rewrites an admitted agent module (binaryen, pinned 132.0.0) so that it
 * pays fuel for the work it does and cannot nest calls deeper than a limit, both checked by
 * the module itself, so running out traps at the same instruction on every run.
 *
 * Cost model (all counts are taken on binaryen's IR of the input, before any rewriting):
 * - a region is a function body or a loop body, minus the bodies of the loops nested in it;
 *   its static cost is the number of expression nodes in it, counting every node except
 *   blocks and loops (which are structure, not work). Both arms of an `if` count.
 * - function entry subtracts the cost of the function's region; every loop iteration (the
 *   start of the loop body, which every back edge re-enters) subtracts the cost of the loop's
 *   region. A region that costs 0 charges nothing (it cannot iterate without a `br`, which
 *   costs 1 in the region that holds it).
 * - `memory.fill`, `memory.copy` and `memory.init` subtract their byte count (1 fuel per
 *   byte), `memory.grow` subtracts `memoryGrowFuelPerPage` per page asked for, `table.grow`
 *   1 per entry, each after its operands are evaluated and right before it runs.
 * - the charge comes first; if fuel is then below zero the module traps (`unreachable`)
 *   before doing the work it could not pay for. A failing memory.grow still pays.
 *
 * Inserted code, per function (imports are host functions and are left alone):
 *
 *   f = fuel - regionCost; if (f < 0) trap               ;; pay, then enter
 *   depth += 1; if (depth > callDepthMax) trap
 *   result = <original body>                              ;; `br` to the body's label lands here
 *   fuel = f; depth -= 1
 *   result
 *
 * where `f` is a local copy of the fuel global, so the charge at a loop header works on a
 * register (`f -= loopCost; if (f < 0) trap`) instead of loading and storing the global
 * every iteration (bench/metering.ts: 1.4-2.0x with the global, 1.05-1.1x with the local). The global is brought up to date
 * wherever anything else could look at it: right before every call (after the operands,
 * which may charge) and reloaded right after it, on every way out, and in every inserted
 * trap (`trap` = `fuel = f; unreachable`). Only a trap the agent causes itself (an
 * `unreachable` of its own, an out-of-bounds access) leaves the global behind the local;
 * it is then still >= 0, so such a trap is never mistaken for fuel exhaustion.
 *
 * `return v` becomes `tmp = v; fuel = f; depth -= 1; return tmp`; a tail call (`return_call`,
 * `return_call_indirect`) does the same right after its last operand is evaluated, since the
 * callee increments for itself. A trap leaves `depth` incremented; the host resets both
 * globals before every call into the agent.
 *
 * Nothing in the inserted code depends on anything but the input bytes, the call-depth limit
 * and the binaryen version, and binaryen's optimizer never runs: levels are pinned to 0
 * around our use and restored after, so the emitted bytes (and their hash) are a function of
 * those three alone.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ConfigError, MeteringError } from '../errors.ts';
import { callDepthMaxDefault, callDepthMaxLimit, capturedStderrCharsMax, expressionNestingMax, meteredModuleCacheEntriesMaxDefault, meteringDiagnosticCharsMax } from '../limits.ts';
import { depthGlobalExport, fuelGlobalExport } from './abi.ts';

type BinaryenApi = typeof import('binaryen').default;
type BinaryenModule = InstanceType<BinaryenApi['Module']>;
type ExpressionRef = number;
type TypeRef = number;

/** Accessors for one operand slot of an expression kind, or one slot of a list of them. */
type Get = (expr: ExpressionRef) => ExpressionRef;
type Put = (expr: ExpressionRef, value: ExpressionRef) => void;
type GetAt = (expr: ExpressionRef, index: number) => ExpressionRef;
type PutAt = (expr: ExpressionRef, index: number, value: ExpressionRef) => void;

/**
 * The parts of binaryen.js 132 this pass uses that index.d.ts does not declare: the static
 * expression accessor classes (binaryen.Block, binaryen.Loop...), the Function accessors,
 * readBinary's feature argument, a C++ exception decoder and the raw var adder.
 */
interface BinaryenUndeclared {
  readBinary(data: Uint8Array, features: number): BinaryenModule;
  getExceptionMessage(error: unknown): unknown;
  _BinaryenFunctionAddVar(func: number, type: TypeRef): number;
  Function: { getBody(func: number): ExpressionRef; setBody(func: number, body: ExpressionRef): void };
  Block: { getNumChildren(expr: ExpressionRef): number; getChildAt: GetAt; setChildAt: PutAt };
  Loop: { getBody: Get; setBody: Put };
  If: { getCondition: Get; setCondition: Put; getIfTrue: Get; setIfTrue: Put; getIfFalse: Get; setIfFalse: Put };
  Break: { getValue: Get; setValue: Put; getCondition: Get; setCondition: Put };
  Switch: { getValue: Get; setValue: Put; getCondition: Get; setCondition: Put };
  Call: { getNumOperands(expr: ExpressionRef): number; getOperandAt: GetAt; setOperandAt: PutAt; isReturn(expr: ExpressionRef): boolean };
  CallIndirect: {
    getNumOperands(expr: ExpressionRef): number;
    getOperandAt: GetAt;
    setOperandAt: PutAt;
    getTarget: Get;
    setTarget: Put;
    isReturn(expr: ExpressionRef): boolean;
  };
  Return: { getValue: Get; setValue: Put };
  LocalSet: { getValue: Get; setValue: Put };
  GlobalSet: { getValue: Get; setValue: Put };
  Load: { isAtomic(expr: ExpressionRef): boolean; getPtr: Get; setPtr: Put };
  Store: { isAtomic(expr: ExpressionRef): boolean; getPtr: Get; setPtr: Put; getValue: Get; setValue: Put };
  Unary: { getValue: Get; setValue: Put };
  Binary: { getLeft: Get; setLeft: Put; getRight: Get; setRight: Put };
  Select: { getIfTrue: Get; setIfTrue: Put; getIfFalse: Get; setIfFalse: Put; getCondition: Get; setCondition: Put };
  Drop: { getValue: Get; setValue: Put };
  MemoryGrow: { getDelta: Get; setDelta: Put };
  MemoryFill: { getDest: Get; setDest: Put; getValue: Get; setValue: Put; getSize: Get; setSize: Put };
  MemoryCopy: { getDest: Get; setDest: Put; getSource: Get; setSource: Put; getSize: Get; setSize: Put };
  MemoryInit: { getDest: Get; setDest: Put; getOffset: Get; setOffset: Put; getSize: Get; setSize: Put };
  SIMDExtract: { getVec: Get; setVec: Put };
  SIMDReplace: { getVec: Get; setVec: Put; getValue: Get; setValue: Put };
  SIMDShuffle: { getLeft: Get; setLeft: Put; getRight: Get; setRight: Put };
  SIMDTernary: { getA: Get; setA: Put; getB: Get; setB: Put; getC: Get; setC: Put };
  SIMDShift: { getVec: Get; setVec: Put; getShift: Get; setShift: Put };
  SIMDLoad: { getPtr: Get; setPtr: Put };
  SIMDLoadStoreLane: { getPtr: Get; setPtr: Put; getVec: Get; setVec: Put };
  RefIsNull: { getValue: Get; setValue: Put };
  TableGet: { getIndex: Get; setIndex: Put };
  TableSet: { getIndex: Get; setIndex: Put; getValue: Get; setValue: Put };
  TableGrow: { getValue: Get; setValue: Put; getDelta: Get; setDelta: Put };
  TupleMake: { getNumOperands(expr: ExpressionRef): number; getOperandAt: GetAt; setOperandAt: PutAt };
  TupleExtract: { getTuple: Get; setTuple: Put };
}

type Binaryen = Omit<BinaryenApi, keyof BinaryenUndeclared> & BinaryenUndeclared;

// The globals the pass adds (src/wasm/abi.ts): `lockstep_fuel`, an exported mutable i64 of
// fuel left (the host sets it before calling in; below 0 means trapped), and
// `lockstep_depth`, an exported mutable i32 of the current call depth (the host sets it to 0).


/**
 * A grown page is zeroed lazily by the OS, so it costs far less than filling 64 KiB; memory
 * is bounded by the module's declared maximum anyway. The charge makes growth count towards
 * the step's budget (and stops a grow-heavy loop early) without punishing a normal start-up.
 */
export const memoryGrowFuelPerPage = 1_024;
/** table.grow initialises one entry per unit of delta. */
export const tableGrowFuelPerEntry = 1;

/** binaryen's version is part of the cost model: the same bytes may read to other IR. */
export const binaryenVersionPinned = '132.0.0';
/** Bump when the inserted code or the cost model changes: it keys cached metered modules. */
export const meteringFormatVersion = 1;


export interface MeterOptions {
  /** Deepest call nesting allowed, in frames; the (callDepthMax + 1)-th nested call traps. */
  callDepthMax?: number;
  /** How errors name the module; defaults to the start of its sha256. */
  moduleName?: string;
}

let binaryenLoading: Promise<Binaryen> | null = null;

/**
 * Loads binaryen once, on first use (it costs ~340 ms and most processes never meter), and
 * checks that the installed version is the pinned one.
 * Throws MeteringError when it cannot be loaded or the version differs.
 */
function loadBinaryen(moduleName: string): Promise<Binaryen> {
  binaryenLoading ??= (async () => {
    const require = createRequire(import.meta.url);
    const packageJsonPath = join(dirname(require.resolve('binaryen')), 'package.json');
    const installed = (JSON.parse(readFileSync(packageJsonPath, 'utf8')) as { version?: string }).version;
    if (installed !== binaryenVersionPinned) {
      throw new MeteringError(
        moduleName,
        `binaryen ${installed ?? '(unknown version)'} is installed but lockstep pins ${binaryenVersionPinned}: ` +
          'fuel counts depend on the exact version; reinstall with the lockfile (npm ci)',
      );
    }
    return (await import('binaryen')).default as unknown as Binaryen;
  })();
  binaryenLoading.catch(() => {
    binaryenLoading = null;
  });
  return binaryenLoading;
}

/**
 * The features binaryen reads the module with: admission's allowlist (src/wasm/admission.ts:
 * mutable globals, saturating float-to-int, sign extension, SIMD, multi-value, bulk memory)
 * plus tail calls, which the pass knows how to meter should admission ever allow them. A
 * fixed set rather than the module's own target_features section, so the same bytes always
 * read the same way; anything outside it fails binaryen's validation with a clear error.
 */
function meteringFeatures(binaryen: Binaryen): number {
  const f = binaryen.Features;
  return f.MutableGlobals | f.NontrappingFPToInt | f.SignExt | f.SIMD128 | f.Multivalue | f.BulkMemory | f.BulkMemoryOpt | f.TailCall;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function callDepthMaxOf(options: MeterOptions | undefined): number {
  const callDepthMax = options?.callDepthMax ?? callDepthMaxDefault;
  if (!Number.isSafeInteger(callDepthMax) || callDepthMax < 1 || callDepthMax > callDepthMaxLimit) {
    throw new ConfigError(
      `callDepthMax must be an integer from 1 to ${callDepthMaxLimit} frames, got ${String(callDepthMax)}; ` +
        `the default is ${callDepthMaxDefault}`,
    );
  }
  return callDepthMax;
}

/**
 * Runs `work` with process.stderr captured (binaryen prints parse and validation errors
 * there, sometimes megabytes), and hands back what it printed, truncated. When `work`
 * throws, `onError` runs inside the capture too, so it can flush what binaryen held back.
 */
function withCapturedStderr<T>(
  work: () => T,
  onError: () => void,
): { value: T; stderr: string } | { error: unknown; stderr: string } {
  let stderr = '';
  const capture = ((chunk: string | Uint8Array): boolean => {
    if (stderr.length < capturedStderrCharsMax) stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  }) as NodeJS.WritableStream['write'];
  // binaryen prints through the console.error it bound when it loaded. Under plain Node that
  // console writes to process.stderr; a test runner's console (vitest's) writes to a stream
  // of its own, reachable as the console's legacy `_stderr`. Capture both.
  const streams = new Set<NodeJS.WritableStream>([process.stderr]);
  const consoleStderr = (console as unknown as { _stderr?: unknown })._stderr;
  if (typeof consoleStderr === 'object' && consoleStderr !== null && typeof (consoleStderr as NodeJS.WritableStream).write === 'function') {
    streams.add(consoleStderr as NodeJS.WritableStream);
  }
  const originals = [...streams].map((stream) => ({ stream, ownWrite: Object.hasOwn(stream, 'write'), write: stream.write }));
  for (const { stream } of originals) stream.write = capture;
  try {
    return { value: work(), stderr };
  } catch (error) {
    try {
      onError();
    } catch {
      // Flushing is best effort: the error being reported matters more.
    }
    return { error, stderr };
  } finally {
    for (const { stream, ownWrite, write } of originals) {
      if (ownWrite) stream.write = write;
      else delete (stream as { write?: unknown }).write; // back to the prototype's
    }
  }
}

/** The function whose validation error only serves to flush binaryen's stderr. */
const stderrFlushFunction = 'lockstep_stderr_flush';

/**
 * binaryen's stderr is line-buffered inside emscripten: a message that ends without a
 * newline (a parse exception does) stays in the buffer and would come out in front of some
 * later, unrelated print. Validating a one-function invalid module prints whole lines, which
 * pushes it out now; `withoutFlushLines` cuts those lines off again.
 */
function flushBinaryenStderr(binaryen: Binaryen): void {
  const probe = new binaryen.Module();
  try {
    probe.addFunction(stderrFlushFunction, binaryen.none, binaryen.i32, [], probe.nop());
    probe.validate();
  } finally {
    probe.dispose();
  }
}

function withoutFlushLines(stderr: string): string {
  const marker = stderr.indexOf(`[wasm-validator error in function ${stderrFlushFunction}]`);
  return marker === -1 ? stderr : stderr.slice(0, marker);
}

function excerpt(text: string): string {
  const trimmed = text.trim().replace(/\s+/g, ' ');
  return trimmed.length <= meteringDiagnosticCharsMax ? trimmed : `${trimmed.slice(0, meteringDiagnosticCharsMax)}... (${trimmed.length} chars)`;
}

/** binaryen throws C++ exceptions as opaque objects; this recovers their message. */
function describeBinaryenError(binaryen: Binaryen, error: unknown, stderr: string): string {
  let message: string;
  if (error instanceof Error) {
    message = error.message;
  } else {
    try {
      const parts = binaryen.getExceptionMessage(error);
      message = Array.isArray(parts) ? parts.map(String).join(': ') : String(parts);
    } catch {
      message = String(error);
    }
  }
  // Emscripten aborts repeat what they printed and add a hint meant for binaryen's builders.
  const said = excerpt(message.replace(/\s*Build with -sASSERTIONS for more info\.?/, ''));
  const printed = excerpt(stderr);
  if (printed === '' || said.includes(printed)) return said;
  return `${said}; binaryen printed: ${printed}`;
}

/** The global binaryen settings that could change what it emits, pinned while we use it. */
interface BinaryenSettings {
  optimizeLevel: number;
  shrinkLevel: number;
  debugInfo: boolean;
  generateStackIR: boolean;
  optimizeStackIR: boolean;
}

function pinSettings(binaryen: Binaryen): BinaryenSettings {
  const saved: BinaryenSettings = {
    optimizeLevel: binaryen.getOptimizeLevel(),
    shrinkLevel: binaryen.getShrinkLevel(),
    debugInfo: binaryen.getDebugInfo(),
    generateStackIR: binaryen.getGenerateStackIR(),
    optimizeStackIR: binaryen.getOptimizeStackIR(),
  };
  binaryen.setOptimizeLevel(0);
  binaryen.setShrinkLevel(0);
  binaryen.setDebugInfo(false);
  binaryen.setGenerateStackIR(false);
  binaryen.setOptimizeStackIR(false);
  return saved;
}

function restoreSettings(binaryen: Binaryen, saved: BinaryenSettings): void {
  binaryen.setOptimizeLevel(saved.optimizeLevel);
  binaryen.setShrinkLevel(saved.shrinkLevel);
  binaryen.setDebugInfo(saved.debugInfo);
  binaryen.setGenerateStackIR(saved.generateStackIR);
  binaryen.setOptimizeStackIR(saved.optimizeStackIR);
}

/**
 * Rewrites `bytes` (an admitted module: admission validated it with its feature allowlist;
 * binaryen's reader is no validator) to charge fuel and bound call depth as described at the
 * top of this file, and returns the new module's bytes. The input is not modified.
 * Throws ConfigError for a bad callDepthMax, MeteringError (naming the module) when binaryen
 * cannot read it, it holds an instruction kind the pass does not know, it already has the
 * metering exports, or the result does not validate.
 */
export async function meterModule(bytes: Uint8Array, options?: MeterOptions): Promise<Uint8Array> {
  const callDepthMax = callDepthMaxOf(options);
  const moduleName = options?.moduleName ?? `sha256:${sha256Hex(bytes).slice(0, 16)}`;
  const binaryen = await loadBinaryen(moduleName);
  // Everything below is synchronous: the pinned settings and the stderr capture cannot leak
  // into other work on this thread.
  const saved = pinSettings(binaryen);
  const held: { module: BinaryenModule | null } = { module: null };
  try {
    const outcome = withCapturedStderr((): { bytes: Uint8Array } | { invalid: 'input' | 'output' } => {
      // readBinary takes a feature set at runtime although index.d.ts omits it (and the
      // declared readBinaryWithFeatures does not exist in 132.0.0).
      const module = binaryen.readBinary(bytes.slice(), meteringFeatures(binaryen));
      held.module = module;
      // validate() prints what is wrong to stderr, which the capture keeps for the message.
      // The input first, so a module outside the feature set is not blamed on the pass.
      if (!module.validate()) return { invalid: 'input' };
      instrumentModule(binaryen, module, callDepthMax, moduleName);
      if (!module.validate()) return { invalid: 'output' };
      return { bytes: module.emitBinary() };
    }, () => flushBinaryenStderr(binaryen));
    if ('error' in outcome) {
      // The pass's own refusals already say what is wrong; binaryen's failures need decoding.
      if (outcome.error instanceof MeteringError) throw outcome.error;
      throw new MeteringError(moduleName, describeBinaryenError(binaryen, outcome.error, withoutFlushLines(outcome.stderr)), {
        cause: outcome.error,
      });
    }
    if ('invalid' in outcome.value) {
      const reason =
        outcome.value.invalid === 'input'
          ? 'binaryen does not accept it with the features agents may use (mutable globals, saturating ' +
            'float-to-int, sign extension, SIMD, multi-value, bulk memory, tail calls); admission should have ' +
            'refused it'
          : 'the metered module does not validate (a bug in the metering pass: please report it)';
      throw new MeteringError(moduleName, `${reason}: ${excerpt(outcome.stderr)}`);
    }
    return outcome.value.bytes;
  } finally {
    held.module?.dispose();
    restoreSettings(binaryen, saved);
  }
}

/** Names not yet taken by a global or an export, so the inserted globals never collide. */
function freeGlobalName(binaryen: Binaryen, module: BinaryenModule, wanted: string): string {
  const taken = new Set<string>();
  for (let i = 0; i < module.getNumGlobals(); i++) taken.add(binaryen.getGlobalInfo(module.getGlobalByIndex(i)).name);
  if (!taken.has(wanted)) return wanted;
  for (let suffix = 1; ; suffix++) if (!taken.has(`${wanted}_${suffix}`)) return `${wanted}_${suffix}`;
}

function instrumentModule(binaryen: Binaryen, module: BinaryenModule, callDepthMax: number, moduleName: string): void {
  for (let i = 0; i < module.getNumExports(); i++) {
    const name = binaryen.getExportInfo(module.getExportByIndex(i)).name;
    if (name === fuelGlobalExport || name === depthGlobalExport) {
      throw new MeteringError(moduleName, `it already exports '${name}'; was it metered twice? Meter the original module`);
    }
  }
  const fuelGlobal = freeGlobalName(binaryen, module, fuelGlobalExport);
  module.addGlobal(fuelGlobal, binaryen.i64, true, module.i64.const(0n));
  module.addGlobalExport(fuelGlobal, fuelGlobalExport);
  const depthGlobal = freeGlobalName(binaryen, module, depthGlobalExport);
  module.addGlobal(depthGlobal, binaryen.i32, true, module.i32.const(0));
  module.addGlobalExport(depthGlobal, depthGlobalExport);

  const ids = expressionIds(binaryen);
  const functionCount = module.getNumFunctions();
  for (let i = 0; i < functionCount; i++) {
    const func = module.getFunctionByIndex(i);
    const info = binaryen.getFunctionInfo(func);
    if (info.module !== '') continue; // an import: host code, not ours to meter
    new FunctionMeterer(binaryen, module, ids, func, info.name, info.results, {
      fuelGlobal,
      depthGlobal,
      callDepthMax,
      moduleName,
    }).run();
  }
}

/**
 * Expression ids as this binaryen build numbers them, read from its runtime constants:
 * index.d.ts's `ExpressionIds` enum lists the kinds in another order (Nop is 1 there, 22 at
 * runtime), so it must never be used for values.
 */
function expressionIds(binaryen: Binaryen) {
  return {
    Block: binaryen.BlockId,
    Loop: binaryen.LoopId,
    If: binaryen.IfId,
    Break: binaryen.BreakId,
    Switch: binaryen.SwitchId,
    Call: binaryen.CallId,
    CallIndirect: binaryen.CallIndirectId,
    Return: binaryen.ReturnId,
    LocalGet: binaryen.LocalGetId,
    LocalSet: binaryen.LocalSetId,
    GlobalGet: binaryen.GlobalGetId,
    GlobalSet: binaryen.GlobalSetId,
    Const: binaryen.ConstId,
    Nop: binaryen.NopId,
    Unreachable: binaryen.UnreachableId,
    Load: binaryen.LoadId,
    Store: binaryen.StoreId,
    Unary: binaryen.UnaryId,
    Binary: binaryen.BinaryId,
    Select: binaryen.SelectId,
    Drop: binaryen.DropId,
    MemorySize: binaryen.MemorySizeId,
    MemoryGrow: binaryen.MemoryGrowId,
    MemoryFill: binaryen.MemoryFillId,
    MemoryCopy: binaryen.MemoryCopyId,
    MemoryInit: binaryen.MemoryInitId,
    DataDrop: binaryen.DataDropId,
    SIMDExtract: binaryen.SIMDExtractId,
    SIMDReplace: binaryen.SIMDReplaceId,
    SIMDShuffle: binaryen.SIMDShuffleId,
    SIMDTernary: binaryen.SIMDTernaryId,
    SIMDShift: binaryen.SIMDShiftId,
    SIMDLoad: binaryen.SIMDLoadId,
    SIMDLoadStoreLane: binaryen.SIMDLoadStoreLaneId,
    RefNull: binaryen.RefNullId,
    RefIsNull: binaryen.RefIsNullId,
    RefFunc: binaryen.RefFuncId,
    TableGet: binaryen.TableGetId,
    TableSet: binaryen.TableSetId,
    TableSize: binaryen.TableSizeId,
    TableGrow: binaryen.TableGrowId,
    TupleMake: binaryen.TupleMakeId,
    TupleExtract: binaryen.TupleExtractId,
  } as const satisfies Record<string, number>;
}

type ExpressionIds = ReturnType<typeof expressionIds>;

/** A readable name for an expression id, including kinds the JS wrapper does not name. */
function expressionKindName(binaryen: Binaryen, id: number): string {
  const exported = binaryen as unknown as Record<string, unknown>;
  for (const key of Object.keys(exported)) {
    const match = /^_Binaryen(\w+)Id$/.exec(key);
    const getter = exported[key];
    if (match !== null && typeof getter === 'function' && key !== '_BinaryenExpressionGetId') {
      if ((getter as () => number)() === id) return match[1]!;
    }
  }
  return `expression id ${id}`;
}

interface MeteringTargets {
  fuelGlobal: string;
  depthGlobal: string;
  callDepthMax: number;
  moduleName: string;
}

/**
 * Meters one function in place. Walks its IR once, children before the node that holds them,
 * counting region costs and replacing the few nodes that need it (returns, tail calls) with
 * blocks; everything else is patched through the node's own operand setters.
 *
 * Scratch locals: one per value type per function. Each use is `local.set s <operand>`, then
 * only inserted accounting code (no agent code), then `local.get s`, so no two uses are ever
 * live at once and sharing is safe.
 */
class FunctionMeterer {
  private readonly regionCosts: number[] = [];
  private readonly scratchLocals = new Map<TypeRef, number>();
  /** Fuel left, kept in a local so loop headers charge a register, not the global. */
  private readonly fuelLocal: number;

  constructor(
    private readonly binaryen: Binaryen,
    private readonly module: BinaryenModule,
    private readonly ids: ExpressionIds,
    private readonly func: number,
    private readonly functionName: string,
    private readonly resultType: TypeRef,
    private readonly targets: MeteringTargets,
  ) {
    this.fuelLocal = binaryen._BinaryenFunctionAddVar(func, binaryen.i64);
  }

  run(): void {
    const { binaryen, module } = this;
    const body = binaryen.Function.getBody(this.func);
    this.regionCosts.push(0);
    const meteredBody = this.visit(body, 0);
    const entryCost = this.regionCosts.pop()!;

    const fuel = module.global.get(this.targets.fuelGlobal, binaryen.i64);
    const prologue = [
      module.local.set(this.fuelLocal, entryCost === 0 ? fuel : module.i64.sub(fuel, module.i64.const(BigInt(entryCost)))),
      ...(entryCost === 0 ? [] : [this.trapIfFuelNegative()]),
      ...this.depthEnter(),
    ];
    const bodyType = binaryen.getExpressionType(meteredBody);
    let children: ExpressionRef[];
    if (bodyType === binaryen.unreachable) {
      // Never falls off the end: every way out is a return, a tail call or a trap.
      children = [...prologue, meteredBody];
    } else if (this.resultType === binaryen.none) {
      children = [...prologue, meteredBody, ...this.leave()];
    } else {
      const result = this.scratch(this.resultType);
      children = [...prologue, module.local.set(result, meteredBody), ...this.leave(), module.local.get(result, this.resultType)];
    }
    binaryen.Function.setBody(this.func, module.block(null, children, binaryen.auto));
  }

  private fail(reason: string): never {
    throw new MeteringError(this.targets.moduleName, `function '${this.functionName}': ${reason}`);
  }

  private scratch(type: TypeRef): number {
    let index = this.scratchLocals.get(type);
    if (index === undefined) {
      index = this.binaryen._BinaryenFunctionAddVar(this.func, type);
      this.scratchLocals.set(type, index);
    }
    return index;
  }

  /** The fuel local, written back to the global: before any call, exit or inserted trap. */
  private storeFuel(): ExpressionRef {
    return this.module.global.set(this.targets.fuelGlobal, this.module.local.get(this.fuelLocal, this.binaryen.i64));
  }

  /** The fuel local, reloaded after a call: the callee charged the global. */
  private loadFuel(): ExpressionRef {
    return this.module.local.set(this.fuelLocal, this.module.global.get(this.targets.fuelGlobal, this.binaryen.i64));
  }

  /** Every inserted trap stores the fuel first, so the host sees what was spent. */
  private trap(): ExpressionRef {
    return this.module.block(null, [this.storeFuel(), this.module.unreachable()], this.binaryen.auto);
  }

  private trapIfFuelNegative(): ExpressionRef {
    const { module, binaryen } = this;
    return module.if(module.i64.lt_s(module.local.get(this.fuelLocal, binaryen.i64), module.i64.const(0n)), this.trap());
  }

  /** fuel -= amount; if (fuel < 0) trap. Nothing when the static amount is 0. */
  private charge(amount: ExpressionRef, staticAmount?: number): ExpressionRef[] {
    if (staticAmount === 0) return [];
    const { module, binaryen } = this;
    return [
      module.local.set(this.fuelLocal, module.i64.sub(module.local.get(this.fuelLocal, binaryen.i64), amount)),
      this.trapIfFuelNegative(),
    ];
  }

  private depthEnter(): ExpressionRef[] {
    const { module, binaryen } = this;
    const depth = this.scratch(binaryen.i32);
    return [
      module.global.set(
        this.targets.depthGlobal,
        module.local.tee(depth, module.i32.add(module.global.get(this.targets.depthGlobal, binaryen.i32), module.i32.const(1)), binaryen.i32),
      ),
      module.if(module.i32.gt_u(module.local.get(depth, binaryen.i32), module.i32.const(this.targets.callDepthMax)), this.trap()),
    ];
  }

  /** What every way out of the function runs: store the fuel, leave one level of depth. */
  private leave(): ExpressionRef[] {
    const { module, binaryen } = this;
    return [
      this.storeFuel(),
      module.global.set(
        this.targets.depthGlobal,
        module.i32.sub(module.global.get(this.targets.depthGlobal, binaryen.i32), module.i32.const(1)),
      ),
    ];
  }

  /**
   * A call that returns here: the fuel is stored right before it runs (after its operands,
   * which may charge), and reloaded right after. `lastOperand` reads and replaces the operand
   * evaluated last (null when there is none).
   */
  private wrapCall(
    call: ExpressionRef,
    lastOperand: { get(): ExpressionRef; set(value: ExpressionRef): void } | null,
  ): ExpressionRef {
    const { module, binaryen } = this;
    const type = binaryen.getExpressionType(call);
    if (type === binaryen.unreachable) return call; // an operand never completes: never called
    const before: ExpressionRef[] = [];
    if (lastOperand === null) before.push(this.storeFuel());
    else lastOperand.set(this.throughScratch(lastOperand.get(), () => [this.storeFuel()]));
    if (type === binaryen.none) return module.block(null, [...before, call, this.loadFuel()], binaryen.auto);
    const result = this.scratch(type);
    return module.block(
      null,
      [...before, module.local.set(result, call), this.loadFuel(), module.local.get(result, type)],
      binaryen.auto,
    );
  }

  /** A tail call: it leaves this function, so it stores the fuel and leaves a depth level. */
  private wrapTailCall(
    call: ExpressionRef,
    lastOperand: { get(): ExpressionRef; set(value: ExpressionRef): void } | null,
  ): ExpressionRef {
    if (lastOperand === null) return this.module.block(null, [...this.leave(), call], this.binaryen.auto);
    lastOperand.set(this.throughScratch(lastOperand.get(), () => this.leave()));
    return call;
  }

  /**
   * `operand` evaluated once into a scratch local, then `after` (accounting code built from
   * that local), then the operand's value. Unreachable operands are left alone: the node
   * that holds them never runs.
   */
  private throughScratch(operand: ExpressionRef, after: (local: number, type: TypeRef) => ExpressionRef[]): ExpressionRef {
    const { module, binaryen } = this;
    const type = binaryen.getExpressionType(operand);
    if (type === binaryen.unreachable) return operand;
    const local = this.scratch(type);
    return module.block(null, [module.local.set(local, operand), ...after(local, type), module.local.get(local, type)], binaryen.auto);
  }

  /** Charges `perUnit` fuel per unit of an i32 size operand, right before the node runs. */
  private chargedSize(size: ExpressionRef, perUnit: number): ExpressionRef {
    const { module } = this;
    return this.throughScratch(size, (local, type) => {
      let amount = module.i64.extend_u(module.local.get(local, type));
      if (perUnit !== 1) amount = module.i64.mul(amount, module.i64.const(BigInt(perUnit)));
      return this.charge(amount);
    });
  }

  private visitChild(child: ExpressionRef, nesting: number, set: (replacement: ExpressionRef) => void): void {
    if (child === 0) return;
    const replacement = this.visit(child, nesting + 1);
    if (replacement !== child) set(replacement);
  }

  private countNode(): void {
    this.regionCosts[this.regionCosts.length - 1]! += 1;
  }

  /** Visits one expression; returns what should stand in its place (itself, or a wrapper). */
  private visit(expr: ExpressionRef, nesting: number): ExpressionRef {
    if (nesting > expressionNestingMax) this.fail(`expressions nest deeper than ${expressionNestingMax} levels`);
    const b = this.binaryen;
    const ids = this.ids;
    const id = b.getExpressionId(expr);
    const n = nesting;
    switch (id) {
      case ids.Block: {
        const count = b.Block.getNumChildren(expr);
        for (let i = 0; i < count; i++) this.visitChild(b.Block.getChildAt(expr, i), n, (r) => b.Block.setChildAt(expr, i, r));
        return expr;
      }
      case ids.Loop: {
        this.regionCosts.push(0);
        const body = b.Loop.getBody(expr);
        const meteredBody = this.visit(body, n + 1);
        const cost = this.regionCosts.pop()!;
        const header = this.charge(this.module.i64.const(BigInt(cost)), cost);
        if (header.length > 0) b.Loop.setBody(expr, this.module.block(null, [...header, meteredBody], b.auto));
        else if (meteredBody !== body) b.Loop.setBody(expr, meteredBody);
        return expr;
      }
      case ids.If:
        this.countNode();
        this.visitChild(b.If.getCondition(expr), n, (r) => b.If.setCondition(expr, r));
        this.visitChild(b.If.getIfTrue(expr), n, (r) => b.If.setIfTrue(expr, r));
        this.visitChild(b.If.getIfFalse(expr), n, (r) => b.If.setIfFalse(expr, r));
        return expr;
      case ids.Break:
        this.countNode();
        this.visitChild(b.Break.getValue(expr), n, (r) => b.Break.setValue(expr, r));
        this.visitChild(b.Break.getCondition(expr), n, (r) => b.Break.setCondition(expr, r));
        return expr;
      case ids.Switch:
        this.countNode();
        this.visitChild(b.Switch.getValue(expr), n, (r) => b.Switch.setValue(expr, r));
        this.visitChild(b.Switch.getCondition(expr), n, (r) => b.Switch.setCondition(expr, r));
        return expr;
      case ids.Call: {
        this.countNode();
        const count = b.Call.getNumOperands(expr);
        for (let i = 0; i < count; i++) this.visitChild(b.Call.getOperandAt(expr, i), n, (r) => b.Call.setOperandAt(expr, i, r));
        const last =
          count === 0
            ? null
            : { get: () => b.Call.getOperandAt(expr, count - 1), set: (r: ExpressionRef) => b.Call.setOperandAt(expr, count - 1, r) };
        return b.Call.isReturn(expr) ? this.wrapTailCall(expr, last) : this.wrapCall(expr, last);
      }
      case ids.CallIndirect: {
        this.countNode();
        const count = b.CallIndirect.getNumOperands(expr);
        for (let i = 0; i < count; i++) {
          this.visitChild(b.CallIndirect.getOperandAt(expr, i), n, (r) => b.CallIndirect.setOperandAt(expr, i, r));
        }
        this.visitChild(b.CallIndirect.getTarget(expr), n, (r) => b.CallIndirect.setTarget(expr, r));
        // The table index is evaluated after the operands.
        const last = { get: () => b.CallIndirect.getTarget(expr), set: (r: ExpressionRef) => b.CallIndirect.setTarget(expr, r) };
        return b.CallIndirect.isReturn(expr) ? this.wrapTailCall(expr, last) : this.wrapCall(expr, last);
      }
      case ids.Return: {
        this.countNode();
        this.visitChild(b.Return.getValue(expr), n, (r) => b.Return.setValue(expr, r));
        const value = b.Return.getValue(expr);
        if (value === 0) return this.module.block(null, [...this.leave(), expr], b.auto);
        const type = b.getExpressionType(value);
        if (type === b.unreachable) return expr;
        const local = this.scratch(type);
        b.Return.setValue(expr, this.module.local.get(local, type));
        return this.module.block(null, [this.module.local.set(local, value), ...this.leave(), expr], b.auto);
      }
      case ids.LocalGet:
      case ids.GlobalGet:
      case ids.Const:
      case ids.Nop:
      case ids.Unreachable:
      case ids.MemorySize:
      case ids.DataDrop:
      case ids.RefNull:
      case ids.RefFunc:
      case ids.TableSize:
        this.countNode();
        return expr;
      case ids.LocalSet:
        this.countNode();
        this.visitChild(b.LocalSet.getValue(expr), n, (r) => b.LocalSet.setValue(expr, r));
        return expr;
      case ids.GlobalSet:
        this.countNode();
        this.visitChild(b.GlobalSet.getValue(expr), n, (r) => b.GlobalSet.setValue(expr, r));
        return expr;
      case ids.Load:
        this.countNode();
        if (b.Load.isAtomic(expr)) this.fail('atomic loads are not supported (admission refuses threads)');
        this.visitChild(b.Load.getPtr(expr), n, (r) => b.Load.setPtr(expr, r));
        return expr;
      case ids.Store:
        this.countNode();
        if (b.Store.isAtomic(expr)) this.fail('atomic stores are not supported (admission refuses threads)');
        this.visitChild(b.Store.getPtr(expr), n, (r) => b.Store.setPtr(expr, r));
        this.visitChild(b.Store.getValue(expr), n, (r) => b.Store.setValue(expr, r));
        return expr;
      case ids.Unary:
        this.countNode();
        this.visitChild(b.Unary.getValue(expr), n, (r) => b.Unary.setValue(expr, r));
        return expr;
      case ids.Binary:
        this.countNode();
        this.visitChild(b.Binary.getLeft(expr), n, (r) => b.Binary.setLeft(expr, r));
        this.visitChild(b.Binary.getRight(expr), n, (r) => b.Binary.setRight(expr, r));
        return expr;
      case ids.Select:
        this.countNode();
        this.visitChild(b.Select.getIfTrue(expr), n, (r) => b.Select.setIfTrue(expr, r));
        this.visitChild(b.Select.getIfFalse(expr), n, (r) => b.Select.setIfFalse(expr, r));
        this.visitChild(b.Select.getCondition(expr), n, (r) => b.Select.setCondition(expr, r));
        return expr;
      case ids.Drop:
        this.countNode();
        this.visitChild(b.Drop.getValue(expr), n, (r) => b.Drop.setValue(expr, r));
        return expr;
      case ids.MemoryGrow:
        this.countNode();
        this.visitChild(b.MemoryGrow.getDelta(expr), n, (r) => b.MemoryGrow.setDelta(expr, r));
        b.MemoryGrow.setDelta(expr, this.chargedSize(b.MemoryGrow.getDelta(expr), memoryGrowFuelPerPage));
        return expr;
      case ids.MemoryFill:
        this.countNode();
        this.visitChild(b.MemoryFill.getDest(expr), n, (r) => b.MemoryFill.setDest(expr, r));
        this.visitChild(b.MemoryFill.getValue(expr), n, (r) => b.MemoryFill.setValue(expr, r));
        this.visitChild(b.MemoryFill.getSize(expr), n, (r) => b.MemoryFill.setSize(expr, r));
        b.MemoryFill.setSize(expr, this.chargedSize(b.MemoryFill.getSize(expr), 1));
        return expr;
      case ids.MemoryCopy:
        this.countNode();
        this.visitChild(b.MemoryCopy.getDest(expr), n, (r) => b.MemoryCopy.setDest(expr, r));
        this.visitChild(b.MemoryCopy.getSource(expr), n, (r) => b.MemoryCopy.setSource(expr, r));
        this.visitChild(b.MemoryCopy.getSize(expr), n, (r) => b.MemoryCopy.setSize(expr, r));
        b.MemoryCopy.setSize(expr, this.chargedSize(b.MemoryCopy.getSize(expr), 1));
        return expr;
      case ids.MemoryInit:
        this.countNode();
        this.visitChild(b.MemoryInit.getDest(expr), n, (r) => b.MemoryInit.setDest(expr, r));
        this.visitChild(b.MemoryInit.getOffset(expr), n, (r) => b.MemoryInit.setOffset(expr, r));
        this.visitChild(b.MemoryInit.getSize(expr), n, (r) => b.MemoryInit.setSize(expr, r));
        b.MemoryInit.setSize(expr, this.chargedSize(b.MemoryInit.getSize(expr), 1));
        return expr;
      case ids.SIMDExtract:
        this.countNode();
        this.visitChild(b.SIMDExtract.getVec(expr), n, (r) => b.SIMDExtract.setVec(expr, r));
        return expr;
      case ids.SIMDReplace:
        this.countNode();
        this.visitChild(b.SIMDReplace.getVec(expr), n, (r) => b.SIMDReplace.setVec(expr, r));
        this.visitChild(b.SIMDReplace.getValue(expr), n, (r) => b.SIMDReplace.setValue(expr, r));
        return expr;
      case ids.SIMDShuffle:
        this.countNode();
        this.visitChild(b.SIMDShuffle.getLeft(expr), n, (r) => b.SIMDShuffle.setLeft(expr, r));
        this.visitChild(b.SIMDShuffle.getRight(expr), n, (r) => b.SIMDShuffle.setRight(expr, r));
        return expr;
      case ids.SIMDTernary:
        this.countNode();
        this.visitChild(b.SIMDTernary.getA(expr), n, (r) => b.SIMDTernary.setA(expr, r));
        this.visitChild(b.SIMDTernary.getB(expr), n, (r) => b.SIMDTernary.setB(expr, r));
        this.visitChild(b.SIMDTernary.getC(expr), n, (r) => b.SIMDTernary.setC(expr, r));
        return expr;
      case ids.SIMDShift:
        this.countNode();
        this.visitChild(b.SIMDShift.getVec(expr), n, (r) => b.SIMDShift.setVec(expr, r));
        this.visitChild(b.SIMDShift.getShift(expr), n, (r) => b.SIMDShift.setShift(expr, r));
        return expr;
      case ids.SIMDLoad:
        this.countNode();
        this.visitChild(b.SIMDLoad.getPtr(expr), n, (r) => b.SIMDLoad.setPtr(expr, r));
        return expr;
      case ids.SIMDLoadStoreLane:
        this.countNode();
        this.visitChild(b.SIMDLoadStoreLane.getPtr(expr), n, (r) => b.SIMDLoadStoreLane.setPtr(expr, r));
        this.visitChild(b.SIMDLoadStoreLane.getVec(expr), n, (r) => b.SIMDLoadStoreLane.setVec(expr, r));
        return expr;
      case ids.RefIsNull:
        this.countNode();
        this.visitChild(b.RefIsNull.getValue(expr), n, (r) => b.RefIsNull.setValue(expr, r));
        return expr;
      case ids.TableGet:
        this.countNode();
        this.visitChild(b.TableGet.getIndex(expr), n, (r) => b.TableGet.setIndex(expr, r));
        return expr;
      case ids.TableSet:
        this.countNode();
        this.visitChild(b.TableSet.getIndex(expr), n, (r) => b.TableSet.setIndex(expr, r));
        this.visitChild(b.TableSet.getValue(expr), n, (r) => b.TableSet.setValue(expr, r));
        return expr;
      case ids.TableGrow:
        this.countNode();
        this.visitChild(b.TableGrow.getValue(expr), n, (r) => b.TableGrow.setValue(expr, r));
        this.visitChild(b.TableGrow.getDelta(expr), n, (r) => b.TableGrow.setDelta(expr, r));
        b.TableGrow.setDelta(expr, this.chargedSize(b.TableGrow.getDelta(expr), tableGrowFuelPerEntry));
        return expr;
      case ids.TupleMake: {
        this.countNode();
        const count = b.TupleMake.getNumOperands(expr);
        for (let i = 0; i < count; i++) {
          this.visitChild(b.TupleMake.getOperandAt(expr, i), n, (r) => b.TupleMake.setOperandAt(expr, i, r));
        }
        return expr;
      }
      case ids.TupleExtract:
        this.countNode();
        this.visitChild(b.TupleExtract.getTuple(expr), n, (r) => b.TupleExtract.setTuple(expr, r));
        return expr;
      default:
        // Atomics, exceptions, GC, table.fill/copy/init (binaryen.js 132 has no setters for
        // them)...: refusing is better than metering them wrongly.
        return this.fail(
          `instruction kind '${expressionKindName(b, id)}' is not supported by the metering pass; ` +
            'rebuild the agent without it (admission should have refused it: please report this)',
        );
    }
  }
}

// Metered module cache

export interface MeteredModule {
  /** sha256 of the input module, hex. */
  readonly sha256: string;
  /** sha256 of the metered module, hex: what a log header records as the code that ran. */
  readonly meteredSha256: string;
  /** The metered module. Shared between callers: never modify it. */
  readonly bytes: Uint8Array;
}

export interface MeteredModuleCacheOptions {
  /** A folder for metered modules that outlives the process; created when missing. */
  directory?: string;
  /** Metered modules kept in memory, least recently used dropped first. */
  entriesMax?: number;
}


/** Counters that say where answers came from, so tests can tell a hit from a rewrite. */
export interface MeteredModuleCacheStats {
  memoryHits: number;
  diskHits: number;
  /** Calls to meterModule, i.e. binaryen runs. */
  meterings: number;
}

let temporaryFileSequence = 0;

/**
 * Metered modules by sha256 of the input, the call-depth limit and the metering format
 * (which names the binaryen version): the same key always stands for the same output bytes,
 * so a hit is as good as a rewrite. In memory, and optionally in a folder, where each file
 * is named by its key and written whole (temporary file, then rename), so a reader never
 * sees half a module. A file that does not compile as WebAssembly is rewritten.
 */
export class MeteredModuleCache {
  readonly stats: MeteredModuleCacheStats = { memoryHits: 0, diskHits: 0, meterings: 0 };
  private readonly entries = new Map<string, Promise<MeteredModule>>();
  private readonly directory: string | null;
  private readonly entriesMax: number;

  constructor(options: MeteredModuleCacheOptions = {}) {
    this.directory = options.directory ?? null;
    this.entriesMax = options.entriesMax ?? meteredModuleCacheEntriesMaxDefault;
    if (!Number.isSafeInteger(this.entriesMax) || this.entriesMax < 1) {
      throw new ConfigError(`entriesMax must be a positive integer, got ${String(options.entriesMax)}`);
    }
  }

  /** The file name (and map key) for a module hash and options. */
  static keyOf(sha256: string, callDepthMax: number): string {
    return `${sha256}.depth${callDepthMax}.m${meteringFormatVersion}-binaryen${binaryenVersionPinned}`;
  }

  /**
   * The metered form of `bytes`, from memory, from the folder, or by metering it now.
   * Concurrent calls for the same key share one metering. Throws what meterModule throws
   * (a failed metering is not cached), or a file system error when the folder is unusable.
   */
  get(bytes: Uint8Array, options: MeterOptions = {}): Promise<MeteredModule> {
    let callDepthMax: number;
    try {
      callDepthMax = callDepthMaxOf(options);
    } catch (error) {
      return Promise.reject(error);
    }
    const sha256 = sha256Hex(bytes);
    const key = MeteredModuleCache.keyOf(sha256, callDepthMax);
    const cached = this.entries.get(key);
    if (cached !== undefined) {
      this.stats.memoryHits += 1;
      // Map order is the recency order: re-insert to mark it most recently used.
      this.entries.delete(key);
      this.entries.set(key, cached);
      return cached;
    }
    const loading = this.load(key, sha256, bytes.slice(), { ...options, callDepthMax });
    this.entries.set(key, loading);
    loading.catch(() => {
      if (this.entries.get(key) === loading) this.entries.delete(key);
    });
    while (this.entries.size > this.entriesMax) this.entries.delete(this.entries.keys().next().value!);
    return loading;
  }

  private async load(key: string, sha256: string, bytes: Uint8Array, options: MeterOptions): Promise<MeteredModule> {
    const path = this.directory === null ? null : join(this.directory, `${key}.wasm`);
    if (path !== null) {
      const stored = await readFile(path).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return null;
        throw error;
      });
      if (stored !== null) {
        // A plain copy, not a view into a Node Buffer that may share a pool.
        const storedBytes = new Uint8Array(stored);
        if (WebAssembly.validate(storedBytes) && exportsMeteringGlobals(storedBytes)) {
          this.stats.diskHits += 1;
          return Object.freeze({ sha256, meteredSha256: sha256Hex(storedBytes), bytes: storedBytes });
        }
      }
    }
    this.stats.meterings += 1;
    const metered = await meterModule(bytes, options);
    if (path !== null) await writeWhole(path, metered);
    return Object.freeze({ sha256, meteredSha256: sha256Hex(metered), bytes: metered });
  }
}

/** True when a module exports both metering globals (a cached file that lacks them is not ours). */
function exportsMeteringGlobals(bytes: Uint8Array): boolean {
  try {
    const names = new Set(WebAssembly.Module.exports(new WebAssembly.Module(bytes)).filter((e) => e.kind === 'global').map((e) => e.name));
    return names.has(fuelGlobalExport) && names.has(depthGlobalExport);
  } catch {
    return false;
  }
}

/** Writes a file so that it appears whole or not at all: a temporary file, then a rename. */
async function writeWhole(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  temporaryFileSequence += 1;
  const temporary = `${path}.${process.pid}.${temporaryFileSequence}.tmp`;
  try {
    await writeFile(temporary, bytes);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
