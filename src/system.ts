/**
 * A system: the actors a run starts with, the topics it declares, optional embedded inputs
 * and config defaults. The same definition drives `lockstep run`, `replay` and the testing
 * kit, so `setup` must build the same system every time it is called (it may read
 * `builder.seed`, never the clock).
 */
import type { ActorDefinition } from '../actors/js-actor.ts';
import type { WasmAgentDefinition } from '../actors/wasm-agent.ts';
import type { SupervisorSpec } from '../supervisors/spec.ts';
import type { InferenceConfig } from './inference/models.ts';
import { ConfigError } from './errors.ts';
import { checkKeys } from './options.ts';
import type { Random } from './prng.ts';
import type { RuntimeConfig } from './config.ts';

export interface SpawnOptions<Args> {
  /** Unique instance name; defaults to `<kind>-<n>`. */
  name?: string;
  args?: Args;
  /** 0..255, higher runs first. Defaults to 0. */
  priority?: number;
  /** Overrides the runtime's mailboxCapacity for this actor. */
  mailboxCapacity?: number;
}

export interface SystemBuilder {
  readonly seed: number;
  /** Adds an actor (JS, or a WASM agent from loadWasmAgent); returns its id. It starts at the next tick boundary. */
  spawn<State, Args>(definition: ActorDefinition<State, Args> | WasmAgentDefinition | SupervisorSpec, options?: SpawnOptions<Args>): number;
  /** Declares a topic nobody subscribes to yet (so actors may publish to it). */
  declareTopic(name: string): number;
  /**
   * Registers what a supervisor's startChild may start later (what the tree's specs name
   * is registered already): replay finds it by the same key.
   */
  register(definition: ActorDefinition<any, any> | WasmAgentDefinition | SupervisorSpec): void;
}

/** One external input produced by a system's embedded input generator. */
export interface InputRequest {
  topic: string;
  payload: Uint8Array;
  priority?: number;
}

export interface SystemDefinition {
  name: string;
  /** Topics to declare up front, beyond those actors subscribe to. */
  topics?: readonly string[];
  /** Config defaults for this system; run options override them. */
  config?: Partial<RuntimeConfig>;
  /** Ticks `lockstep run` runs when --ticks is not given. */
  ticks?: number;
  /**
   * The models of the system's inference actor: a config, or the path of a registry file
   * (JSON; model files resolve against its folder). With it the runtime starts an inference
   * actor that answers requests on `infer/<model>`.
   */
  inference?: InferenceConfig | string;
  setup(builder: SystemBuilder): void;
  /**
   * Embedded inputs for tick `tick`, drawn from the runtime's seeded stream. What it returns
   * is injected and logged like any external input; replay takes inputs from the log instead.
   */
  inputs?(tick: number, random: Random): readonly InputRequest[] | void;
}

const systemKeys: readonly string[] = ['name', 'topics', 'config', 'ticks', 'inference', 'setup', 'inputs'];

/** Checks a system definition's shape; throws ConfigError naming the problem. */
export function defineSystem(definition: SystemDefinition): SystemDefinition {
  if (definition === null || typeof definition !== 'object') {
    throw new ConfigError('defineSystem takes an object { name, setup, ... }');
  }
  if (typeof definition.name !== 'string' || definition.name.length === 0) {
    throw new ConfigError('defineSystem: `name` must be a non-empty string');
  }
  checkKeys(definition, systemKeys, `defineSystem '${definition.name}'`);
  if (typeof definition.setup !== 'function') {
    throw new ConfigError(`system '${definition.name}': \`setup(builder)\` must be a function that spawns the actors`);
  }
  if (definition.inputs !== undefined && typeof definition.inputs !== 'function') {
    throw new ConfigError(`system '${definition.name}': \`inputs\` must be a function (tick, random) => inputs`);
  }
  if (definition.topics !== undefined && !Array.isArray(definition.topics)) {
    throw new ConfigError(`system '${definition.name}': \`topics\` must be an array of names`);
  }
  return definition;
}

/** True when `value` looks like a system definition (for loading user modules). */
export function isSystemDefinition(value: unknown): value is SystemDefinition {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as SystemDefinition).name === 'string' &&
    typeof (value as SystemDefinition).setup === 'function'
  );
}
