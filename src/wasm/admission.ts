/**
 * Admission: every check a WASM agent must pass before any of its code runs (docs/abi.md,
 * ARCHITECTURE.md "WASM agents"). Nothing here instantiates the module or calls into it;
 * everything is decided from the bytes, so a hostile module (an endless start function, a
 * huge memory) cannot hurt the host by being admitted or refused.
 *
 * The checks, in order, each failing with its own AdmissionError code:
 *
 *   manifest   admission_manifest / admission_abi   its fields, abi one of pluginAbiVersions (1, 2)
 *   size       admission_size        bytes <= policy.moduleBytesMax (bounds all later work)
 *   parse      admission_malformed   wabt reads and validates it with every feature on,
 *                                    and V8 (WebAssembly.validate) agrees it is valid
 *   features   admission_feature     wabt again with only the allowed features on; our own
 *                                    parse of memory flags (shared, memory64) and tables
 *   imports    admission_import      only lockstep.{publish,topic,log,random,backpressure},
 *                                    exact types (each optional, the same in every version)
 *   start      admission_start       no start section
 *   exports    admission_export      the seven ABI exports with exact types; `lockstep_*`
 *                                    names other than lockstep_abi_version are reserved
 *   memory     admission_memory      exactly one, with a maximum <= min(manifest, policy)
 *   abi        admission_abi         lockstep_abi_version's body is a constant, 1 or 2, and
 *                                    the manifest's abi says the same
 *   signature  admission_unsigned / admission_untrusted / admission_signature
 *
 * The signature comes last on purpose: every earlier check only reads bytes (wabt itself runs
 * sandboxed in its own WebAssembly instance), so checking structure first costs nothing in
 * safety, and it gives an author the error they can act on (a bad import) before the one
 * they would otherwise fix first and then have to redo (re-signing). `allowUnsigned` skips
 * only the signature step, never a structural one.
 */
import { createHash } from 'node:crypto';
import wabtFactory from 'wabt';
import { AdmissionError, type AdmissionErrorCode } from '../errors.ts';
import { abiExports, abiImports, hostModule, isPluginAbiVersion, pluginAbiVersionsText, reservedExportPrefix, type PluginAbiVersion } from './abi.ts';
import { parseManifest, type PluginManifest } from './manifest.ts';
import { verifyPlugin, type PluginSignature } from './signing.ts';
import { memoryPagesMaxDefault, moduleBytesMaxDefault, tableEntriesMax } from '../limits.ts';

export interface AdmissionPolicy {
  /** Largest module accepted, in bytes. */
  moduleBytesMax: number;
  /** Largest declared memory maximum accepted, in 64 KiB pages, whatever the manifest asks. */
  memoryPagesMax: number;
  /** Ed25519 public keys (PEM) whose signatures are accepted. */
  trustedKeysPem: readonly string[];
  /** Development only: admit a module without checking its signature at all. */
  allowUnsigned: boolean;
}

export const admissionPolicyDefaults: Readonly<AdmissionPolicy> = Object.freeze({
  moduleBytesMax: moduleBytesMaxDefault,
  memoryPagesMax: memoryPagesMaxDefault,
  trustedKeysPem: Object.freeze([]) as readonly string[],
  allowUnsigned: false,
});

export interface AdmittedPlugin {
  /** The name used in messages, usually the module's file name. */
  name: string;
  manifest: PluginManifest;
  /** A private copy of the bytes that were checked: later changes to the caller's buffer cannot reach it. */
  bytes: Uint8Array;
  /** sha256 of `bytes`, 64 lowercase hex digits. */
  sha256: string;
  /** The key that verified the signature; null when admitted unsigned under allowUnsigned. */
  keyId: string | null;
  /** The module's declared memory maximum, in 64 KiB pages (at most the manifest's limit). */
  memoryPagesMax: number;
}

// wabt is an Emscripten build that instantiates itself asynchronously; load it once, when this
// module is first imported, so admitPlugin can stay synchronous.
const wabt = await wabtFactory();

/**
 * Takes a module (its name for messages, bytes, manifest and signature) and an admission
 * policy. Returns the admitted plugin: the manifest re-parsed, a private copy of the bytes,
 * their sha256 and the verifying keyId. Runs no code from the module. Throws AdmissionError
 * with the code of the first check that fails (see the file comment), and ConfigError for a
 * trusted key that is not an Ed25519 public key.
 */
export function admitPlugin(
  input: { name: string; bytes: Uint8Array; manifest: PluginManifest; signature: PluginSignature | null },
  policy: AdmissionPolicy,
): AdmittedPlugin {
  const name = `'${input.name}'`;
  const refuse = (code: AdmissionErrorCode, message: string): never => {
    throw new AdmissionError(code, `module ${name} ${message}`);
  };
  // Re-parse: a manifest built in code (or cast) gets the same checks as one read from a file.
  const manifest = parseManifest(input.manifest, `of module ${name}`);

  if (input.bytes.byteLength > policy.moduleBytesMax) {
    refuse(
      'admission_size',
      `is ${input.bytes.byteLength} bytes, more than the ${policy.moduleBytesMax} allowed (moduleBytesMax); ` +
        'build it optimised (AssemblyScript: -O3 --runtime stub) or raise moduleBytesMax in the admission policy',
    );
  }
  // A private copy, made once: what is checked, hashed and returned are the same bytes even if
  // the caller's buffer changes later, and wabt needs a plain Uint8Array, not a pooled Buffer.
  const bytes = new Uint8Array(input.bytes);

  checkParsesAndFeatures(bytes, refuse);
  const module = readSections(bytes, refuse);
  checkImports(module, manifest.abi, refuse);
  if (module.startFunction !== null) {
    refuse(
      'admission_start',
      'has a start function, which would run on instantiation before lockstep meters ' +
        'anything; lockstep never runs one. Move that work into agent_init (AssemblyScript emits a start function for ' +
        'top-level statements and allocations: keep module-level values constant, e.g. memory.data(n) instead of new StaticArray)',
    );
  }
  checkExports(module, manifest.abi, refuse);
  const memoryPagesMax = checkMemory(module, manifest, policy, refuse);
  checkAbiVersion(module, bytes, manifest.abi, refuse);

  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (policy.allowUnsigned) return { name: input.name, manifest, bytes, sha256, keyId: null, memoryPagesMax };
  const { keyId } = verifyPlugin(bytes, manifest, input.signature, policy.trustedKeysPem, name);
  return { name: input.name, manifest, bytes, sha256, keyId, memoryPagesMax };
}

type Refuse = (code: AdmissionErrorCode, message: string) => never;

// ---------------------------------------------------------------------------------------------
// Parse and features (wabt, then V8)

/** wabt feature flags, as its readWasm options spell them. */
type WabtFeature =
  | 'exceptions' | 'mutable_globals' | 'sat_float_to_int' | 'sign_extension' | 'simd' | 'threads'
  | 'function_references' | 'multi_value' | 'tail_call' | 'bulk_memory' | 'reference_types'
  | 'annotations' | 'code_metadata' | 'gc' | 'memory64' | 'multi_memory' | 'extended_const' | 'relaxed_simd';

/**
 * What an agent may use: deterministic on every CPU, supported by Node 20, and metered by the
 * binaryen fuel pass. Everything else is listed in refusedFeatures and switched off explicitly,
 * never left to wabt's defaults (which change between releases).
 */
const allowedFeatures = ['mutable_globals', 'sat_float_to_int', 'sign_extension', 'simd', 'multi_value', 'bulk_memory'] as const satisfies readonly WabtFeature[];

/** Each refused feature with the words a message uses for it and why it is refused. */
const refusedFeatures: ReadonlyArray<{ feature: WabtFeature; words: string }> = [
  { feature: 'threads', words: 'threads (shared memory or atomic instructions): an agent runs on one thread and may share nothing' },
  { feature: 'relaxed_simd', words: 'relaxed SIMD: its results differ between CPUs, so runs would not replay' },
  { feature: 'memory64', words: 'memory64 (64-bit memory addresses): Node 20 cannot run it and the host addresses 32-bit memory' },
  { feature: 'exceptions', words: 'exception handling' },
  { feature: 'tail_call', words: 'tail calls' },
  { feature: 'gc', words: 'garbage-collected types (WasmGC)' },
  { feature: 'function_references', words: 'typed function references' },
  { feature: 'reference_types', words: 'reference types (externref, several tables, table.grow/fill: unmetered and unbounded)' },
  { feature: 'multi_memory', words: 'multiple memories' },
  { feature: 'extended_const', words: 'extended constant expressions' },
];

const allowedWords = 'MVP WebAssembly plus SIMD (not relaxed), bulk memory, sign extension, non-trapping float-to-int, mutable globals and multi-value';

type FeatureSet = Record<WabtFeature, boolean>;

function featureSet(enabled: readonly WabtFeature[]): FeatureSet {
  const set = {} as FeatureSet;
  for (const feature of allowedFeatures) set[feature] = false;
  for (const { feature } of refusedFeatures) set[feature] = false;
  // Text-format-only features: irrelevant to binaries, pinned off all the same.
  set.annotations = false;
  set.code_metadata = false;
  for (const feature of enabled) set[feature] = true;
  return set;
}

/** Returns null when wabt reads and validates the bytes with these features, else its first error. */
function wabtProblem(bytes: Uint8Array, features: FeatureSet): string | null {
  let module: ReturnType<typeof wabt.readWasm> | null = null;
  try {
    module = wabt.readWasm(bytes, { readDebugNames: false, check: true, ...features });
    // validate() takes its own feature set (missing from wabt's typings) and falls back to
    // wabt's defaults, reference types on, threads off, when given none: pass the same set.
    (module.validate as (options: FeatureSet) => void).call(module, features);
    return null;
  } catch (error) {
    return tidyWabtError((error as Error).message);
  } finally {
    module?.destroy();
  }
}

/** wabt's "readWasm failed:\n000001b: error: ..." as "at byte 0x1b: ...", first error only. */
function tidyWabtError(message: string): string {
  for (const line of message.split('\n')) {
    const match = /^(?:<binary>:)?([0-9a-f]+): error: (.*)$/.exec(line.trim());
    if (match !== null) return `at byte 0x${(match[1] ?? '').replace(/^0+(?=.)/, '')}: ${match[2] ?? ''}`;
  }
  return message.trim().split('\n').slice(0, 3).join('; ');
}

function checkParsesAndFeatures(bytes: Uint8Array, refuse: Refuse): void {
  const allowed = featureSet(allowedFeatures);
  const strictProblem = wabtProblem(bytes, allowed);
  if (strictProblem === null) {
    assertEngineAccepts(bytes, refuse);
    return;
  }
  // It failed with the allowlist. Whether that is a refused feature or plain garbage is
  // decided by reading it again with every feature on: only if that succeeds is it a feature.
  const everything = refusedFeatures.map(({ feature }) => feature);
  const permissiveProblem = wabtProblem(bytes, featureSet([...allowedFeatures, ...everything]));
  if (permissiveProblem !== null) {
    refuse(
      'admission_malformed',
      `is not a valid WebAssembly module (wabt: ${permissiveProblem}); rebuild it, and check that the file is the ` +
        'compiler output, whole and unmodified',
    );
  }
  // Name the features it needs: switch refused features off one at a time, keeping each off
  // when the module still reads without it. At most one extra read per refused feature, and
  // only on this failure path.
  const needed = new Set(everything);
  for (const feature of everything) {
    needed.delete(feature);
    if (wabtProblem(bytes, featureSet([...allowedFeatures, ...needed])) !== null) needed.add(feature);
  }
  const words = refusedFeatures.filter(({ feature }) => needed.has(feature)).map((entry) => entry.words);
  refuse(
    'admission_feature',
    `uses ${words.join('; and ')} (wabt: ${strictProblem}); agents may use only ${allowedWords}: rebuild it without ` +
      'those features (AssemblyScript: do not pass --enable threads, relaxed-simd, memory64, reference-types...)',
  );
}

/**
 * The pair to wabt's check: V8 is the engine that will run the module, so it must agree the
 * bytes are valid. A disagreement means a module wabt accepts but Node cannot run.
 */
function assertEngineAccepts(bytes: Uint8Array, refuse: Refuse): void {
  if (WebAssembly.validate(bytes)) return;
  let reason = 'no reason given';
  try {
    // Compiling is not running: no instance, no start function, no imports resolved.
    new WebAssembly.Module(bytes);
  } catch (error) {
    reason = (error as Error).message;
  }
  refuse('admission_malformed', `is refused by this Node's WebAssembly engine although wabt accepts it (${reason}); rebuild it for Node 20`);
}

// ---------------------------------------------------------------------------------------------
// Sections: just enough of the binary format to read types, imports, memories, exports, start
// and code. wabt has already validated the module, so a read past the end here is a bug; it is
// still refused as malformed rather than trusted.

type ExternalKind = 'function' | 'table' | 'memory' | 'global' | 'tag';
const externalKinds: readonly ExternalKind[] = ['function', 'table', 'memory', 'global', 'tag'];

interface FunctionType {
  params: string[];
  results: string[];
}

interface Limits {
  flags: number;
  min: number;
  max: number | null;
}

interface ModuleSections {
  types: FunctionType[];
  imports: Array<{ module: string; field: string; kind: ExternalKind; typeIndex: number | null; limits: Limits | null }>;
  /** Type index of each function defined in the module (after the imported ones). */
  definedFunctionTypes: number[];
  tables: Limits[];
  memories: Limits[];
  exports: Array<{ name: string; kind: ExternalKind; index: number }>;
  startFunction: number | null;
  /** Byte range of each defined function's body (locals and expression) within the module. */
  codeBodies: Array<{ start: number; end: number }>;
}

const valueTypeNames = new Map<number, string>([
  [0x7f, 'i32'],
  [0x7e, 'i64'],
  [0x7d, 'f32'],
  [0x7c, 'f64'],
  [0x7b, 'v128'],
  [0x70, 'funcref'],
  [0x6f, 'externref'],
]);

const sectionId = { custom: 0, type: 1, import: 2, function: 3, table: 4, memory: 5, export: 7, start: 8, code: 10 } as const;

/** Limits flags (binary format 5.3.7): which bits exist and what they mean. */
const limitsHasMaxFlag = 0x01;
const limitsSharedFlag = 0x02;
const limitsMemory64Flag = 0x04;
const limitsKnownFlags = limitsHasMaxFlag | limitsSharedFlag | limitsMemory64Flag;
const wasmHeaderBytes = 8;

class MalformedModule extends Error {}

class ByteReader {
  position: number;

  constructor(
    private readonly bytes: Uint8Array,
    start: number,
    private readonly end: number,
  ) {
    this.position = start;
  }

  get remaining(): number {
    return this.end - this.position;
  }

  get done(): boolean {
    return this.position >= this.end;
  }

  byte(): number {
    if (this.position >= this.end) throw new MalformedModule(`unexpected end at byte 0x${this.position.toString(16)}`);
    return this.bytes[this.position++] as number;
  }

  /** Unsigned LEB128, up to 64 bits; values past 2^53 saturate (no real limit is that large). */
  unsigned(): number {
    let result = 0;
    let scale = 1;
    for (let index = 0; index < 10; index++) {
      const byte = this.byte();
      result += (byte & 0x7f) * scale;
      scale *= 128;
      if ((byte & 0x80) === 0) return Math.min(result, Number.MAX_SAFE_INTEGER);
    }
    throw new MalformedModule(`LEB128 longer than 10 bytes at byte 0x${this.position.toString(16)}`);
  }

  /** Signed LEB128 of at most 32 bits (5 bytes), as for i32.const. */
  signed32(): number {
    let result = 0;
    let shift = 0;
    for (let index = 0; index < 5; index++) {
      const byte = this.byte();
      result |= (byte & 0x7f) << shift;
      shift += 7;
      if ((byte & 0x80) === 0) {
        if (shift < 32 && (byte & 0x40) !== 0) result |= -1 << shift;
        return result | 0;
      }
    }
    throw new MalformedModule(`i32 LEB128 longer than 5 bytes at byte 0x${this.position.toString(16)}`);
  }

  name(): string {
    const length = this.unsigned();
    if (this.position + length > this.end) throw new MalformedModule(`name runs past its section at byte 0x${this.position.toString(16)}`);
    const text = new TextDecoder('utf-8', { fatal: true }).decode(this.bytes.subarray(this.position, this.position + length));
    this.position += length;
    return text;
  }

  valueType(): string {
    const code = this.byte();
    const type = valueTypeNames.get(code);
    if (type === undefined) throw new MalformedModule(`unknown value type 0x${code.toString(16)}`);
    return type;
  }

  limits(): Limits {
    const flags = this.unsigned();
    const min = this.unsigned();
    const max = (flags & limitsHasMaxFlag) !== 0 ? this.unsigned() : null;
    return { flags, min, max };
  }
}

function readSections(bytes: Uint8Array, refuse: Refuse): ModuleSections {
  try {
    return readSectionsUnchecked(bytes);
  } catch (error) {
    if (!(error instanceof MalformedModule)) throw error;
    return refuse('admission_malformed', `is not a valid WebAssembly module (${error.message}); rebuild it`);
  }
}

function readSectionsUnchecked(bytes: Uint8Array): ModuleSections {
  const sections: ModuleSections = {
    types: [],
    imports: [],
    definedFunctionTypes: [],
    tables: [],
    memories: [],
    exports: [],
    startFunction: null,
    codeBodies: [],
  };
  const module = new ByteReader(bytes, wasmHeaderBytes, bytes.length);
  while (!module.done) {
    const id = module.byte();
    const size = module.unsigned();
    const start = module.position;
    const end = start + size;
    if (end > bytes.length) throw new MalformedModule(`section ${id} runs past the end of the module`);
    const section = new ByteReader(bytes, start, end);
    switch (id) {
      case sectionId.type:
        readVector(section, () => {
          const form = section.byte();
          if (form !== 0x60) throw new MalformedModule(`type form 0x${form.toString(16)} is not a function type`);
          const params = readVector(section, () => section.valueType());
          const results = readVector(section, () => section.valueType());
          sections.types.push({ params, results });
        });
        break;
      case sectionId.import:
        readVector(section, () => {
          const moduleName = section.name();
          const field = section.name();
          const kind = externalKinds[section.byte()];
          let typeIndex: number | null = null;
          let limits: Limits | null = null;
          if (kind === 'function') typeIndex = section.unsigned();
          else if (kind === 'table') {
            section.byte();
            limits = section.limits();
          } else if (kind === 'memory') limits = section.limits();
          else if (kind === 'global') {
            section.valueType();
            section.byte();
          } else if (kind === 'tag') {
            section.byte();
            section.unsigned();
          } else throw new MalformedModule(`import '${moduleName}.${field}' has an unknown kind`);
          sections.imports.push({ module: moduleName, field, kind, typeIndex, limits });
        });
        break;
      case sectionId.function:
        readVector(section, () => sections.definedFunctionTypes.push(section.unsigned()));
        break;
      case sectionId.table:
        readVector(section, () => {
          section.byte();
          sections.tables.push(section.limits());
        });
        break;
      case sectionId.memory:
        readVector(section, () => sections.memories.push(section.limits()));
        break;
      case sectionId.export:
        readVector(section, () => {
          const exportName = section.name();
          const kind = externalKinds[section.byte()];
          if (kind === undefined) throw new MalformedModule(`export '${exportName}' has an unknown kind`);
          sections.exports.push({ name: exportName, kind, index: section.unsigned() });
        });
        break;
      case sectionId.start:
        sections.startFunction = section.unsigned();
        break;
      case sectionId.code:
        readVector(section, () => {
          const bodyBytes = section.unsigned();
          const bodyStart = section.position;
          if (bodyStart + bodyBytes > end) throw new MalformedModule('a function body runs past the code section');
          sections.codeBodies.push({ start: bodyStart, end: bodyStart + bodyBytes });
          section.position = bodyStart + bodyBytes;
        });
        break;
      default:
        // Custom, global, element, data, data count: nothing admission decides depends on them.
        break;
    }
    module.position = end;
  }
  return sections;
}

function readVector<T>(reader: ByteReader, readOne: () => T): T[] {
  const count = reader.unsigned();
  // Each item takes at least one byte, so a count past the remaining bytes is a lie; checking
  // it first keeps a forged count from looping for long.
  if (count > reader.remaining) throw new MalformedModule(`a vector of ${count} items in ${reader.remaining} bytes`);
  const items: T[] = [];
  for (let index = 0; index < count; index++) items.push(readOne());
  return items;
}

function signatureText(type: FunctionType | undefined): string {
  if (type === undefined) return '(an unknown type)';
  const results = type.results.length === 0 ? '()' : type.results.length === 1 ? (type.results[0] as string) : `(${type.results.join(', ')})`;
  return `(${type.params.join(', ')}) -> ${results}`;
}

function importedFunctionCount(module: ModuleSections): number {
  return module.imports.filter((entry) => entry.kind === 'function').length;
}

function functionType(module: ModuleSections, functionIndex: number): FunctionType | undefined {
  const imported = module.imports.filter((entry) => entry.kind === 'function');
  const typeIndex = functionIndex < imported.length ? imported[functionIndex]?.typeIndex : module.definedFunctionTypes[functionIndex - imported.length];
  return typeIndex === undefined || typeIndex === null ? undefined : module.types[typeIndex];
}

// ---------------------------------------------------------------------------------------------
// Imports, exports, memory, ABI version

function checkImports(module: ModuleSections, abi: PluginAbiVersion, refuse: Refuse): void {
  const allowed = [...abiImports.keys()].map((field) => `'${hostModule}.${field}'`).join(', ');
  for (const entry of module.imports) {
    const qualified = `'${entry.module}.${entry.field}'`;
    if (entry.module !== hostModule) {
      refuse('admission_import', `imports ${qualified}; agents may import only from '${hostModule}' (${allowed}): build without WASI or env imports (AssemblyScript: --use abort=)`);
    }
    const expected = abiImports.get(entry.field);
    if (expected === undefined) refuse('admission_import', `imports ${qualified}, which ABI v${abi} does not have; the host provides only ${allowed}`);
    if (entry.kind !== 'function') refuse('admission_import', `imports ${qualified} as a ${entry.kind}; it is a function ${expected} (docs/abi.md)`);
    const actual = signatureText(entry.typeIndex === null ? undefined : module.types[entry.typeIndex]);
    if (actual !== expected) refuse('admission_import', `imports ${qualified} as ${actual}; ABI v${abi} defines it as ${expected} (docs/abi.md)`);
  }
}

function checkExports(module: ModuleSections, abi: PluginAbiVersion, refuse: Refuse): void {
  for (const entry of module.exports) {
    if (entry.name.startsWith(reservedExportPrefix) && !abiExports.has(entry.name)) {
      refuse('admission_export', `exports '${entry.name}'; names starting with '${reservedExportPrefix}' are reserved for the host (metering adds lockstep_fuel and lockstep_depth): rename it`);
    }
  }
  for (const [exportName, expected] of abiExports) {
    const found = module.exports.find((entry) => entry.name === exportName);
    const wanted = expected === 'memory' ? 'its memory' : `a function ${expected}`;
    if (found === undefined) refuse('admission_export', `does not export '${exportName}'; ABI v${abi} requires it to export ${wanted} (docs/abi.md)`);
    if (expected === 'memory') {
      if (found.kind !== 'memory') refuse('admission_export', `exports '${exportName}' as a ${found.kind}; it must be the module's memory (docs/abi.md)`);
      continue;
    }
    if (found.kind !== 'function') refuse('admission_export', `exports '${exportName}' as a ${found.kind}; it must be a function ${expected} (docs/abi.md)`);
    const actual = signatureText(functionType(module, found.index));
    if (actual !== expected) refuse('admission_export', `exports '${exportName}' as ${actual}; ABI v${abi} requires ${expected} (docs/abi.md)`);
  }
}

/** Checks the module's one memory against the limits; returns its declared maximum, in pages. */
function checkMemory(module: ModuleSections, manifest: PluginManifest, policy: AdmissionPolicy, refuse: Refuse): number {
  // Flags first, from our own parse, as the pair to wabt's feature check: a shared or 64-bit
  // memory must never reach a worker even if a wabt release stopped refusing it.
  const limitsAll = [...module.imports.flatMap((entry) => (entry.limits === null ? [] : [entry.limits])), ...module.tables, ...module.memories];
  for (const limits of limitsAll) {
    if ((limits.flags & limitsSharedFlag) !== 0) refuse('admission_feature', `declares shared memory; agents may share nothing: remove 'shared' (AssemblyScript: no --sharedMemory)`);
    if ((limits.flags & limitsMemory64Flag) !== 0) refuse('admission_feature', `declares a 64-bit memory or table (memory64); agents use 32-bit memory: build without memory64`);
    if ((limits.flags & ~limitsKnownFlags) !== 0) refuse('admission_feature', `declares limits with unknown flags 0x${limits.flags.toString(16)}; agents may use only ${allowedWords}`);
  }
  if (module.tables.length + module.imports.filter((entry) => entry.kind === 'table').length > 1) {
    refuse('admission_feature', `declares more than one table (reference types); agents may use only ${allowedWords}`);
  }
  // A table is allocated whole at instantiation, before any fuel is charged: bound it.
  for (const table of module.tables) {
    if (table.max === null || table.max > tableEntriesMax || table.min > tableEntriesMax) {
      refuse(
        'admission_memory',
        `declares a table of ${table.min}..${table.max ?? 'unbounded'} entries; a table must declare a maximum of at most ${tableEntriesMax} entries`,
      );
    }
  }
  const memories = module.memories.length + module.imports.filter((entry) => entry.kind === 'memory').length;
  if (memories !== 1) refuse('admission_memory', `declares ${memories} memories; an agent has exactly one, exported as 'memory'`);
  const memory = module.memories[0];
  if (memory === undefined) return refuse('admission_memory', "imports its memory; an agent defines its own memory and exports it as 'memory'");
  const limitPages = Math.min(manifest.limits.memoryPages, policy.memoryPagesMax);
  const manifestBinds = manifest.limits.memoryPages <= policy.memoryPagesMax;
  const limitSource = manifestBinds
    ? `the manifest's limits.memoryPages (${manifest.limits.memoryPages})`
    : `the admission policy's memoryPagesMax (${policy.memoryPagesMax}; the manifest asks for ${manifest.limits.memoryPages})`;
  if (memory.max === null) {
    refuse(
      'admission_memory',
      `declares no memory maximum, so it could grow until the process runs out; declare one of at most ${limitPages} pages, ` +
        `${limitSource} (WAT: (memory 1 ${limitPages}); AssemblyScript: --maximumMemory ${limitPages})`,
    );
  }
  if (memory.max > limitPages) {
    refuse(
      'admission_memory',
      `declares a memory maximum of ${memory.max} pages (64 KiB each), more than ${limitSource}; ` +
        `lower the module's maximum to ${limitPages} (AssemblyScript: --maximumMemory ${limitPages})` +
        (manifestBinds ? ', or raise limits.memoryPages in the manifest and re-sign' : ', or raise memoryPagesMax in the admission policy'),
    );
  }
  return memory.max;
}

/**
 * lockstep_abi_version must return the version the manifest declares (1 or 2), but calling it
 * would run the module's code unmetered. So it is read instead: its body must be a constant,
 * as `i32.const N` or (what AssemblyScript emits without optimisation) `i32.const N; return`.
 * Locals are allowed. The manifest's `abi` was checked by parseManifest; the two must agree,
 * because the host lays out each inbound message by the manifest's version and a module
 * reading the other layout would misread every field.
 */
function checkAbiVersion(module: ModuleSections, bytes: Uint8Array, abi: PluginAbiVersion, refuse: Refuse): void {
  const ask =
    `ABI v${abi} (the manifest's "abi": ${abi}) requires \`(func (export "lockstep_abi_version") (result i32) i32.const ${abi})\` ` +
    `(AssemblyScript: export function lockstep_abi_version(): i32 { return ${abi}; })`;
  const exported = module.exports.find((entry) => entry.name === 'lockstep_abi_version' && entry.kind === 'function');
  if (exported === undefined) throw new Error('assertion: checkExports ran first');
  const definedIndex = exported.index - importedFunctionCount(module);
  const body = module.codeBodies[definedIndex];
  if (body === undefined) return refuse('admission_abi', `exports an imported function as 'lockstep_abi_version'; ${ask}`);
  const value = constantBodyValue(bytes, body);
  if (value === null) {
    refuse('admission_abi', `has a 'lockstep_abi_version' that does not simply return a constant, so its version cannot be read without running it; ${ask}`);
  }
  if (!isPluginAbiVersion(value)) {
    refuse('admission_abi', `reports ABI version ${value} (lockstep_abi_version returns ${value}); this lockstep speaks only ABI ${pluginAbiVersionsText()}: rebuild it against docs/abi.md`);
  }
  if (value !== abi) {
    refuse(
      'admission_abi',
      `reports ABI version ${value} (lockstep_abi_version returns ${value}), but its manifest says "abi": ${abi}; the host lays out ` +
        `messages by the manifest's version, so the two must agree: write "abi": ${value} in the manifest and re-sign, or build the module for ABI v${abi}`,
    );
  }
}

const opcodeI32Const = 0x41;
const opcodeReturn = 0x0f;
const opcodeEnd = 0x0b;

/** The constant a body returns when it is exactly `i32.const N [return] end`; otherwise null. */
function constantBodyValue(bytes: Uint8Array, body: { start: number; end: number }): number | null {
  try {
    const reader = new ByteReader(bytes, body.start, body.end);
    readVector(reader, () => {
      reader.unsigned();
      reader.valueType();
    });
    if (reader.byte() !== opcodeI32Const) return null;
    const value = reader.signed32();
    let next = reader.byte();
    if (next === opcodeReturn) next = reader.byte();
    return next === opcodeEnd && reader.done ? value : null;
  } catch (error) {
    if (error instanceof MalformedModule) return null;
    throw error;
  }
}
