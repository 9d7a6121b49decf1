/**
 * lockstep: a local-first, deterministic actor runtime.
 *
 *   defineActor  → an actor kind (init, receive, step, stop)
 *   defineSystem → the actors a run starts with
 *   createRuntime(system, options) → step/run ticks, inject inputs, snapshot, close
 *   supervisor(flags, children) → a supervision tree (OTP strategies on logical ticks)
 *   replay(log, system) → re-execute a recorded run and check it tick by tick
 */
export { defineActor, type ActorContext, type ActorDefinition, type ActorSpec, type PublishOptions } from '../actors/js-actor.ts';
export type { LifecycleState } from '../actors/lifecycle.ts';
export { loadWasmAgent, wasmAgentFromParts, type LoadWasmAgentOptions, type WasmAgentDefinition } from '../actors/wasm-agent.ts';
export type { PluginManifest } from './wasm/manifest.ts';
export { generateKeyPair, publicKeyId, signPlugin } from './wasm/signing.ts';
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
export type { Message, Topic } from './envelope.ts';
export type { PublishResult } from './kernel.ts';
export { Random } from './prng.ts';
export { jsonEncode, jsonDecode, utf8Encode, utf8Decode } from './codec.ts';
export * from './errors.ts';
export { readLog, repairLog } from './log/reader.ts';
export { LogWriter, FileSink, MemorySink, type LogSink } from './log/writer.ts';
export type { LogHeader, LogLevel, TickRecord, EndRecord, InferenceRecord, InferenceProvider } from './log/types.ts';
export { lockstepVersion } from './version.ts';
export { agentSdkPath, sampleAgentPath, sampleKeyPath, sampleKeyPem, sampleModelPath } from './samples.ts';
export { MeteredModuleCache } from './wasm/metering.ts';
// The logger lockstep takes (`logger` option, `ctx.log`), re-exported so that an app makes
// one with the same pino lockstep uses.
export { pino, type Logger } from 'pino';
export {
  tensor,
  tensorValues,
  encodeInferRequest,
  decodeInferRequest,
  encodeInferResponse,
  decodeInferResponse,
  outputNamed,
  TensorFormatError,
  type DTypeName,
  type TensorValue,
  type InferRequestValue,
  type InferResponseValue,
  type InferErrorCode,
} from './inference/tensor.ts';
export {
  loadModelRegistry,
  resolveInferenceConfig,
  sessionOptionsDefault,
  type InferenceConfig,
  type ModelSpec,
  type ModelStateSpec,
  type ModelCacheStats,
  type ModelVersion,
} from './inference/models.ts';
export { inferTopic, inferTopicOf } from '../actors/inference.ts';
