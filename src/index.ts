/**
 * lockstep: a local-first, deterministic actor runtime. This entry holds what a system is
 * written and run with:
 *
 *   defineActor  → an actor kind (init, receive, step, stop)
 *   supervisor(flags, children) → a supervision tree (OTP strategies on logical ticks)
 *   loadWasmAgent(path) → a WASM agent (checked and metered; the runtime checks trust)
 *   defineSystem → the actors a run starts with
 *   createRuntime(system, options) → await start(), step(), run(n), close(); inject,
 *                  actor(name), supervisor(name), snapshot(), events
 *   createHost(system, options) → a runtime in a service: start(), ask, tell, stop();
 *                  ticks paced in real time, acknowledgements once the log is durable
 *   replay(log, system) → re-execute a recorded run and check it tick by tick
 *
 * Beside it: `lockstep/log` (the log file format: reader, writer, sinks), `lockstep/tensor`
 * (the inference actor's tensor codec) and `lockstep/testing` (determinism properties).
 */
export { defineActor, type ActorContext, type ActorDefinition, type ActorSpec, type AskOptions, type PublishOptions, type TimerId } from '../actors/js-actor.ts';
export type { LifecycleState } from '../actors/lifecycle.ts';
export { loadWasmAgent, wasmAgentFromParts, type LoadWasmAgentOptions, type WasmAgentDefinition } from '../actors/wasm-agent.ts';
export type { PluginManifest } from './wasm/manifest.ts';
export type { PluginSignature } from './wasm/signing.ts';
export { generateKeyPair, publicKeyId, signPlugin } from './wasm/signing.ts';
export { MeteredModuleCache } from './wasm/metering.ts';
export { defineSystem, type InputRequest, type SpawnOptions, type SystemBuilder, type SystemDefinition } from './system.ts';
export {
  supervisor,
  type Backoff,
  type ChildSpec,
  type RestartType,
  type Shutdown,
  type Strategy,
  type SupervisorFlags,
  type SupervisorSpec,
} from '../supervisors/spec.ts';
export type { ChildCounts, ChildInfo, SupervisorView } from '../supervisors/supervision.ts';
export { checkFaultPlan, loadFaultPlan, randomFaultPlan, type Fault, type FaultKind, type FaultPlan, type RandomFaultOptions } from './faults.ts';
export {
  createRuntime,
  Reply,
  type AskFromOutsideOptions,
  type ActorHandle,
  type Runtime,
  type InferenceView,
  type ModelsHandle,
  type SupervisorHandle,
  type InjectOptions,
  type RunOptions,
  type RunSummary,
  type RuntimeOptions,
  type RuntimeSnapshot,
} from './runtime.ts';
export { createHost, type Durability, type Host, type HostOptions } from './host.ts';
export type {
  RuntimeEvent,
  RuntimeEventKind,
  RuntimeEventOf,
  RuntimeEvents,
  TickEvent,
  LifecycleTransitionEvent,
  DropEvent,
  SupervisionEvent,
  FaultEvent,
  WorkerEvent,
  InferenceBatchEvent,
} from './events.ts';
export { replay, type ReplayOptions, type ReplayReport } from './replay.ts';
export { configDefaults, type RuntimeConfig } from './config.ts';
export { MessageKind, type Message, type MessageKindCode, type Topic } from './envelope.ts';
export type { AskResult, PublishResult, ReplyResult } from './kernel.ts';
export type { LogLevel, TickRecord } from './log/types.ts';
export type { LogSink } from './log/writer.ts';
export { jsonEncode, jsonDecode, utf8Encode, utf8Decode } from './codec.ts';
/** The seeded stream a system's embedded `inputs(tick, random)` draws from. */
export type { Random } from './prng.ts';
export * from './errors.ts';
export { lockstepVersion } from './version.ts';
export { agentSdkPath, sampleAgentPath, sampleKeyPath, sampleKeyPem, sampleModelPath } from './samples.ts';
export type { InferenceConfig, ModelSpec, ModelStateSpec, ModelCacheStats, ModelVersion } from './inference/models.ts';
// The logger lockstep takes (`logger` option, `ctx.log`), re-exported so that an app makes
// one with the same pino lockstep uses.
export { pino, type Logger } from 'pino';
