/**
 * The WASM agent ABI's names and numbers (docs/abi.md), defined once: admission checks
 * modules against them, the metering pass adds the globals, the agent host calls and reads
 * them, and the tests use the same constants.
 */

/**
 * The ABI versions this host speaks (docs/abi.md); a module declares one, in its manifest's
 * `abi` and as the constant body of `lockstep_abi_version`, and the two must agree. They
 * differ only in the inbound message: v1 a 16-byte header (topic, sender, seq low 32 bits,
 * priority), v2 an Envelope FlatBuffer in one fixed layout (src/wasm/envelope-layout.ts).
 */
export const pluginAbiVersions = [1, 2] as const;

export type PluginAbiVersion = (typeof pluginAbiVersions)[number];

/** The newest version: what the SDK builds and what docs and messages suggest to write. */
export const pluginAbiVersionLatest: PluginAbiVersion = 2;

/** Whether `value` is one of pluginAbiVersions. */
export function isPluginAbiVersion(value: unknown): value is PluginAbiVersion {
  return (pluginAbiVersions as readonly unknown[]).includes(value);
}

/** The versions as messages list them: 'v1 and v2'. */
export function pluginAbiVersionsText(): string {
  const named = pluginAbiVersions.map((version) => `v${version}`);
  return named.length === 1 ? (named[0] as string) : `${named.slice(0, -1).join(', ')} and ${named[named.length - 1] as string}`;
}

/** The one module agents may import from. */
export const hostModule = 'lockstep';

/**
 * docs/abi.md "Imports": the whole host interface, each with its exact type, the same in
 * every version. Every import is optional: a module imports the ones it calls (an agent
 * built before `backpressure` existed simply does not import it). `backpressure` returns how
 * many of the agent's publishes the barrier of its previous scheduled tick refused because a
 * subscriber's mailbox was full (0 when none).
 */
export const abiImports: ReadonlyMap<string, string> = new Map([
  ['publish', '(i32, i32, i32, i32) -> i32'],
  ['topic', '(i32, i32) -> i32'],
  ['log', '(i32, i32, i32) -> ()'],
  ['random', '() -> i32'],
  ['backpressure', '() -> i32'],
]);

/** docs/abi.md "Exports": every one required, functions with exactly these types. */
export const abiExports: ReadonlyMap<string, string> = new Map([
  ['memory', 'memory'],
  ['lockstep_abi_version', '() -> i32'],
  ['agent_alloc', '(i32) -> i32'],
  ['agent_init', '() -> i32'],
  ['agent_receive', '(i32, i32) -> i32'],
  ['agent_step', '(i32) -> i32'],
  ['agent_shutdown', '() -> i32'],
]);

/** The optional static initialiser the host calls before agent_init (docs/abi.md). */
export const initializeExport = '_initialize';

/** Export names starting with this are the host's (the metering globals below). */
export const reservedExportPrefix = 'lockstep_';

/** The metering pass's globals: fuel left this tick (i64) and call depth (i32). */
export const fuelGlobalExport = 'lockstep_fuel';
export const depthGlobalExport = 'lockstep_depth';

/** What agent_init, agent_receive, agent_step and agent_shutdown return; negative is an agent error. */
export const AgentStatus = { ok: 0, stop: 1 } as const;

/** What the `publish` import returns (docs/abi.md). */
export const PublishStatus = { accepted: 0, notAllowed: -1, tooLarge: -2, outOfBounds: -3, badPriority: -4 } as const;

/**
 * Inference topics (ARCHITECTURE.md, "Inference"): a request for model m goes to
 * `infer/<m>`; `infer` takes requests that name their model inside. A WASM agent may
 * publish to `infer/<m>` exactly for each m in its capabilities.models, and never to `infer`.
 */
export const inferTopicName = 'infer';
export const inferTopicPrefix = 'infer/';

/** The topic requests for `model` go to. */
export function inferTopicOf(model: string): string {
  return `${inferTopicPrefix}${model}`;
}
