/**
 * The manifest that ships next to every WASM agent (docs/abi.md, ADR-005): who the agent
 * is, which ABI it speaks, what it may touch (topics, models) and what it may spend (fuel,
 * memory). The signature covers its canonical JSON, so parsing is strict: an unknown field
 * is refused rather than ignored, because an ignored field would ride along unsigned.
 */
import { AdmissionError } from '../errors.ts';
import { capabilityEntriesMax, capabilityNameCharsMax, manifestNameCharsMax, manifestVersionCharsMax, memoryPagesLimitMax, modelNameCharsMax } from '../limits.ts';

export interface PluginManifest {
  name: string;
  version: string;
  /** The ABI the module speaks; its lockstep_abi_version returns the same (admission checks). */
  abi: PluginAbiVersion;
  capabilities: { publish: string[]; subscribe: string[]; models: string[] };
  limits: { fuelPerStep: number; memoryPages: number };
}

import { inferTopicName, inferTopicPrefix, isPluginAbiVersion, pluginAbiVersionLatest, pluginAbiVersions, pluginAbiVersionsText, type PluginAbiVersion } from './abi.ts';

const modelNamePattern = /^[A-Za-z0-9._-]{1,128}$/;

const manifestKeys = ['abi', 'capabilities', 'limits', 'name', 'version'] as const;
const capabilityKeys = ['models', 'publish', 'subscribe'] as const;
const limitKeys = ['fuelPerStep', 'memoryPages'] as const;

const exampleManifest =
  `{ "name": "counter", "version": "1.0.0", "abi": ${pluginAbiVersionLatest}, ` +
  '"capabilities": { "publish": ["counts"], "subscribe": ["numbers"], "models": [] }, ' +
  '"limits": { "fuelPerStep": 1000000, "memoryPages": 16 } }';

/**
 * Takes a parsed JSON value and where it came from (a file path or module name, for messages).
 * Returns it as a PluginManifest (fresh arrays and objects, nothing shared with `value`).
 * Throws AdmissionError `admission_manifest` naming the first bad field and what to write
 * there, or `admission_abi` when `abi` is an integer that is not one of pluginAbiVersions.
 */
export function parseManifest(value: unknown, source: string): PluginManifest {
  const fail = (field: string, problem: string, write: string): never => {
    throw new AdmissionError('admission_manifest', `manifest ${source}: ${field} ${problem}; write ${write}`);
  };
  if (!isPlainObject(value)) fail('the manifest', `must be a JSON object, got ${describe(value)}`, `e.g. ${exampleManifest}`);
  const top = value as Record<string, unknown>;
  refuseUnknownKeys(top, manifestKeys, '', fail);

  const name = top.name;
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name.length > manifestNameCharsMax) {
    fail("field 'name'", `must be 1..${manifestNameCharsMax} letters, digits, '.', '_' or '-' (starting with a letter or digit), got ${describe(name)}`, '"name": "counter"');
  }
  const version = top.version;
  if (typeof version !== 'string' || !/^[\x21-\x7e]+$/.test(version) || version.length > manifestVersionCharsMax) {
    fail("field 'version'", `must be 1..${manifestVersionCharsMax} printable characters without spaces, got ${describe(version)}`, '"version": "1.0.0"');
  }
  const abi = top.abi;
  const versions = pluginAbiVersions.join(' or ');
  if (typeof abi === 'number' && Number.isInteger(abi) && !isPluginAbiVersion(abi)) {
    throw new AdmissionError(
      'admission_abi',
      `manifest ${source}: field 'abi' is ${abi}, but this lockstep speaks only ABI ${pluginAbiVersionsText()} (docs/abi.md); ` +
        `build the agent against ABI v${pluginAbiVersionLatest} and write "abi": ${pluginAbiVersionLatest}`,
    );
  }
  if (!isPluginAbiVersion(abi)) fail("field 'abi'", `must be the number ${versions}, got ${describe(abi)}`, `"abi": ${pluginAbiVersionLatest}`);

  const capabilities = top.capabilities;
  if (!isPlainObject(capabilities)) {
    fail("field 'capabilities'", `must be an object, got ${describe(capabilities)}`, '"capabilities": { "publish": [], "subscribe": [], "models": [] }');
  }
  const capabilityRecord = capabilities as Record<string, unknown>;
  refuseUnknownKeys(capabilityRecord, capabilityKeys, 'capabilities.', fail);
  const publish = nameList(capabilityRecord.publish, 'capabilities.publish', '"publish": ["counts"]', fail);
  const subscribe = nameList(capabilityRecord.subscribe, 'capabilities.subscribe', '"subscribe": ["numbers"]', fail);
  const models = nameList(capabilityRecord.models, 'capabilities.models', '"models": ["policy"]', fail);
  // An agent calls a model by publishing to `infer/<model>`; the host grants exactly those
  // topics from capabilities.models. Granting them through capabilities.publish as well
  // would make two manifests that mean the same thing, and `infer` (the topic that names
  // its model inside the request) would grant every model.
  for (const [index, topic] of publish.entries()) {
    if (topic === inferTopicName || topic.startsWith(inferTopicPrefix)) {
      const model = topic.slice(inferTopicPrefix.length);
      fail(
        `field 'capabilities.publish[${index}]'`,
        `is ${describe(topic)}, an inference topic: an agent calls a model by listing the model's name in capabilities.models, never through publish`,
        topic === inferTopicName || model.length === 0
          ? `each model's name in capabilities.models instead (e.g. "models": ["policy"], which grants 'infer/policy') and remove ${JSON.stringify(topic)} from "publish"`
          : `"models": [${JSON.stringify(model)}] in capabilities instead (it grants ${JSON.stringify(topic)}) and remove ${JSON.stringify(topic)} from "publish"`,
      );
    }
  }
  for (const [index, model] of models.entries()) {
    if (model.includes('/')) {
      fail(`field 'capabilities.models[${index}]'`, `must be a model name without '/', got ${describe(model)}`, `the model's name, e.g. "policy" (the host grants the topic 'infer/policy')`);
    }
    if (!modelNamePattern.test(model)) {
      fail(
        `field 'capabilities.models[${index}]'`,
        `must be 1..${modelNameCharsMax} letters, digits, '.', '_' or '-' (the rule for the inference actor's model names), got ${describe(model)}`,
        `the model's name as the system's inference config registers it, e.g. "policy"`,
      );
    }
  }

  const limits = top.limits;
  if (!isPlainObject(limits)) {
    fail("field 'limits'", `must be an object, got ${describe(limits)}`, '"limits": { "fuelPerStep": 1000000, "memoryPages": 16 }');
  }
  const limitRecord = limits as Record<string, unknown>;
  refuseUnknownKeys(limitRecord, limitKeys, 'limits.', fail);
  const fuelPerStep = limitRecord.fuelPerStep;
  if (typeof fuelPerStep !== 'number' || !Number.isSafeInteger(fuelPerStep) || fuelPerStep < 1) {
    fail("field 'limits.fuelPerStep'", `must be a positive integer, got ${describe(fuelPerStep)}`, '"fuelPerStep": 1000000');
  }
  const memoryPages = limitRecord.memoryPages;
  if (typeof memoryPages !== 'number' || !Number.isInteger(memoryPages) || memoryPages < 1 || memoryPages > memoryPagesLimitMax) {
    fail(
      "field 'limits.memoryPages'",
      `must be an integer in 1..${memoryPagesLimitMax} (pages of 64 KiB), got ${describe(memoryPages)}`,
      '"memoryPages": 16',
    );
  }

  return {
    name: name as string,
    version: version as string,
    abi: abi as PluginAbiVersion,
    capabilities: { publish, subscribe, models },
    limits: { fuelPerStep: fuelPerStep as number, memoryPages: memoryPages as number },
  };
}

/**
 * Takes a manifest. Returns its canonical JSON: object keys sorted (by UTF-16 code unit, as
 * Array.prototype.sort does), no whitespace, arrays in their written order. This is the text
 * whose sha256 the signature covers, so it must not depend on how the file was formatted.
 * Throws nothing.
 */
export function canonicalManifestJson(manifest: PluginManifest): string {
  return canonicalJson(manifest);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isPlainObject(value)) {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function nameList(value: unknown, field: string, write: string, fail: (field: string, problem: string, write: string) => never): string[] {
  if (!Array.isArray(value)) return fail(`field '${field}'`, `must be an array of names, got ${describe(value)}`, write);
  if (value.length > capabilityEntriesMax) {
    return fail(`field '${field}'`, `lists ${value.length} names, more than ${capabilityEntriesMax}`, 'only the names the agent uses');
  }
  const seen = new Set<string>();
  const names: string[] = [];
  for (const [index, entry] of value.entries()) {
    if (typeof entry !== 'string' || entry.length === 0 || entry.length > capabilityNameCharsMax) {
      fail(`field '${field}[${index}]'`, `must be a name of 1..${capabilityNameCharsMax} characters, got ${describe(entry)}`, write);
    }
    const name = entry as string;
    // A duplicate grants nothing more but would make two manifests that mean the same thing
    // sign differently; refusing it keeps one meaning, one canonical text.
    if (seen.has(name)) fail(`field '${field}'`, `lists '${name}' twice`, 'each name once');
    seen.add(name);
    names.push(name);
  }
  return names;
}

function refuseUnknownKeys(
  record: Record<string, unknown>,
  known: readonly string[],
  prefix: string,
  fail: (field: string, problem: string, write: string) => never,
): void {
  for (const key of Object.keys(record).sort()) {
    if (!known.includes(key)) {
      fail(`field '${prefix}${key}'`, `is not part of the manifest (ABI ${pluginAbiVersionsText()}; it would not be covered by the signature)`, `only ${known.map((k) => `'${prefix}${k}'`).join(', ')}`);
    }
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing (the field is missing)';
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}
