/**
 * Random mixed systems for the WASM determinism properties: a few signed WASM agents from
 * actors/agents/build (counter, hasher, sieve, ping, pong, spinner) among JS feeders that
 * publish to the agents' topics and JS listeners that fold what the agents publish. A
 * system is generated as a plain, JSON-serialisable plan so the same plan can be rebuilt
 * in another process (run-wasm-plans.ts) and run with any worker count.
 *
 * Topics, and who uses them:
 *
 *   feeders ──numbers──▶ counter ──counts──▶ listeners ──numbers (reports)──▶ counter
 *   feeders ──jobs─────▶ hasher  ──results─▶ listeners, reacting feeders
 *   feeders ──config───▶ sieve   ──results─▶ (sieve publishes every step)
 *   ping ──ping──▶ pong ──pong──▶ ping      (at most one of each: see wasmKindsOf)
 *   spinner: subscribes to nothing, runs out of fuel in its first step
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  MailboxFullError,
  createRuntime,
  defineActor,
  defineSystem,
  loadWasmAgent,
  type ChildSpec,
  type SystemDefinition,
  type WasmAgentDefinition,
} from '../src/index.ts';
import { readLog } from '../src/log/index.ts';
import { actorDigestsOf } from '../src/log/types.ts';
import { MeteredModuleCache } from '../src/wasm/metering.ts';

export const wasmKinds = ['counter', 'hasher', 'sieve', 'ping', 'pong', 'spinner'] as const;
export type WasmKind = (typeof wasmKinds)[number];

/** Topics feeders publish to and inputs are injected on (the agents' inbound topics). */
export const feedTopics = ['numbers', 'jobs', 'config'] as const;
export type FeedTopic = (typeof feedTopics)[number];
/** Topics listeners and reacting feeders subscribe to (the agents' outbound topics). */
export const listenTopics = ['counts', 'results', 'ping', 'pong'] as const;
export type ListenTopic = (typeof listenTopics)[number];
/** Declared up front so every agent's `topic()` lookups succeed whoever else is spawned. */
export const allTopics = [...feedTopics, ...listenTopics] as const;

/** Bounds that keep one run well under a second on a 2-core machine. */
export const wasm_plan_actors_max = 8;
export const wasm_plan_agents_max = 4;
export const wasm_plan_ticks_max = 25;
export const wasm_plan_inputs_max = 12;
export const wasm_plan_payload_bytes_max = 8;
/** Hasher rounds a feeder asks for (the agent caps at 100000; fewer keeps runs fast). */
export const feeder_rounds_max = 2000;
/** Sieve bound a feeder asks for (the agent clamps to 2..100000; lower keeps runs fast). */
export const feeder_sieve_bound_max = 30000;
/** Small mailboxes exercise backpressure; 1024 is the runtime default. */
const mailbox_capacity_small_max = 4;
const mailbox_capacity_large = 1024;

export interface WasmAgentPlan {
  role: 'agent';
  kind: WasmKind;
  name: string;
  priority: number;
  mailboxCapacity: number;
}

export interface FeederPlan {
  role: 'feeder';
  name: string;
  priority: number;
  mailboxCapacity: number;
  topic: FeedTopic;
  /** Chance, in 1/256, of publishing a burst from step. */
  emitChance: number;
  /** Messages per burst. */
  burst: number;
  publishPriority: number;
  /** Topic whose messages this feeder answers with one message of its own (bounded by `budget`), or null. */
  reactTo: ListenTopic | null;
  /** Most answers per tick. */
  budget: number;
}

export interface ListenerPlan {
  role: 'listener';
  name: string;
  priority: number;
  mailboxCapacity: number;
  subscribe: ListenTopic[];
  /** Every this many ticks, publishes its fold to `numbers` when it saw something new (0: never). */
  reportEvery: number;
}

export type MixedActorPlan = WasmAgentPlan | FeederPlan | ListenerPlan;

export interface WasmInputPlan {
  tick: number;
  topic: FeedTopic;
  priority: number;
  payload: number[];
}

export interface WasmSystemPlan {
  seed: number;
  ticks: number;
  /** In spawn order: an actor's id (and so its worker, id % workers) follows from its place. */
  actors: MixedActorPlan[];
  /** Sorted by tick. */
  inputs: WasmInputPlan[];
}

/** Ping and pong multiply balls by (pings × pongs) per rally, so at most one of each. */
function wasmKindsOf(picks: readonly WasmKind[]): WasmKind[] {
  const kinds: WasmKind[] = [];
  for (const kind of picks) {
    if ((kind === 'ping' || kind === 'pong') && kinds.includes(kind)) continue;
    kinds.push(kind);
  }
  return kinds;
}

const priority = () => fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 }));
const mailboxCapacity = () => fc.oneof(fc.constant(mailbox_capacity_large), fc.integer({ min: 1, max: mailbox_capacity_small_max }));

/** What each agent kind takes in and puts out, so feeders and listeners can aim at it. */
const consumedBy: Partial<Record<WasmKind, FeedTopic>> = { counter: 'numbers', hasher: 'jobs', sieve: 'config' };
const producedBy: Partial<Record<WasmKind, ListenTopic>> = { counter: 'counts', hasher: 'results', sieve: 'results', ping: 'ping', pong: 'pong' };

/** Mostly one of `aimed` (when there are any), sometimes any of `all`: most plans make traffic, some miss. */
function aimedAt<T>(aimed: readonly T[], all: readonly T[]): fc.Arbitrary<T> {
  const any = fc.constantFrom(...all);
  return aimed.length === 0 ? any : fc.oneof({ arbitrary: fc.constantFrom(...aimed), weight: 4 }, { arbitrary: any, weight: 1 });
}

/**
 * Plans of mixed systems: 1..4 WASM agents (at least one counter, hasher or sieve), 1..2
 * feeders, 1..2 listeners (at most 8 actors), 3..25 ticks, up to 12 injected inputs.
 * `withSpinner` puts a spinner among the agents in every plan.
 */
export function wasmSystemPlans(options: { withSpinner?: boolean; ticksMax?: number } = {}): fc.Arbitrary<WasmSystemPlan> {
  const ticksMax = options.ticksMax ?? wasm_plan_ticks_max;
  // One agent that feeders can feed, so that nearly every plan makes WASM traffic; the rest any kind.
  const others = wasm_plan_agents_max - 1 - (options.withSpinner ? 1 : 0);
  const kindPicks = fc
    .tuple(fc.constantFrom<WasmKind>('counter', 'hasher', 'sieve'), fc.array(fc.constantFrom(...wasmKinds), { maxLength: others }))
    .map(([fed, picks]) => wasmKindsOf([fed, ...picks, ...(options.withSpinner ? ['spinner' as const] : [])]));
  return fc
    .record({
      seed: fc.integer({ min: 0, max: 0xffff_ffff }),
      ticks: fc.integer({ min: 3, max: ticksMax }),
      kinds: kindPicks,
      feeders: fc.integer({ min: 1, max: 2 }),
      listeners: fc.integer({ min: 1, max: 2 }),
    })
    .chain(({ seed, ticks, kinds, feeders, listeners }) => {
      const consumed = [...new Set(kinds.flatMap((kind) => consumedBy[kind] ?? []))];
      const produced = [...new Set(kinds.flatMap((kind) => producedBy[kind] ?? []))];
      const agents = fc.tuple(
        ...kinds.map((kind, i) =>
          fc.record({
            role: fc.constant('agent' as const),
            kind: fc.constant(kind),
            name: fc.constant(`${kind}-${i + 1}`),
            priority: priority(),
            mailboxCapacity: mailboxCapacity(),
          }),
        ),
      );
      const feeder = (i: number) =>
        fc.record({
          role: fc.constant('feeder' as const),
          name: fc.constant(`feeder-${i + 1}`),
          priority: priority(),
          mailboxCapacity: mailboxCapacity(),
          // The first feeder always feeds an agent that is there; others mostly do.
          topic: i === 0 ? fc.constantFrom(...consumed) : aimedAt(consumed, feedTopics),
          emitChance: fc.oneof(fc.integer({ min: 128, max: 255 }), fc.integer({ min: 0, max: 255 })),
          burst: fc.integer({ min: 1, max: 3 }),
          publishPriority: fc.integer({ min: 0, max: 255 }),
          reactTo: fc.option(aimedAt(produced, listenTopics), { nil: null }),
          budget: fc.integer({ min: 0, max: 3 }),
        });
      const listener = (i: number) =>
        fc.record({
          role: fc.constant('listener' as const),
          name: fc.constant(`listener-${i + 1}`),
          priority: priority(),
          mailboxCapacity: mailboxCapacity(),
          subscribe: fc.uniqueArray(aimedAt(produced, listenTopics), { minLength: 1, maxLength: listenTopics.length }),
          reportEvery: fc.integer({ min: 0, max: 5 }),
        });
      const input = fc.record({
        tick: fc.integer({ min: 1, max: ticks }),
        topic: aimedAt(consumed, feedTopics),
        priority: fc.integer({ min: 0, max: 255 }),
        payload: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: wasm_plan_payload_bytes_max }),
      });
      const actors = fc
        .tuple(
          agents,
          fc.tuple(...Array.from({ length: feeders }, (_, i) => feeder(i))),
          fc.tuple(...Array.from({ length: listeners }, (_, i) => listener(i))),
        )
        .chain(([a, f, l]) => {
          const all: MixedActorPlan[] = [...a, ...f, ...l];
          // A permutation: where an agent sits decides its id and so its worker.
          return fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length });
        });
      return fc.record({
        seed: fc.constant(seed),
        ticks: fc.constant(ticks),
        actors,
        inputs: fc.array(input, { maxLength: wasm_plan_inputs_max }).map((inputs) => [...inputs].sort((x, y) => x.tick - y.tick)),
      });
    })
    .map((plan) => {
      if (plan.actors.length > wasm_plan_actors_max) throw new Error(`assertion failed: ${plan.actors.length} actors in a plan`);
      return plan;
    });
}

/** The WASM agent definitions of every kind, signed by the dev key. */
export type WasmDefinitions = Record<WasmKind, WasmAgentDefinition>;

export const devPublicKeyPem = readFileSync(fileURLToPath(new URL('../examples/keys/dev.pub.pem', import.meta.url)), 'utf8');
const agentPath = (kind: WasmKind) => fileURLToPath(new URL(`../actors/agents/build/${kind}.wasm`, import.meta.url));

const definitionsLoading = new Map<string, Promise<WasmDefinitions>>();

/**
 * Loads (admits and meters) each agent kind once per process and cache folder; later calls
 * share the result. Metering runs binaryen, which is slow, and a definition can be spawned
 * any number of times. With `meteredCacheDirectory`, metered modules are also written to
 * (or read from) that folder, so another process can skip binaryen.
 */
export function loadWasmDefinitions(options: { meteredCacheDirectory?: string } = {}): Promise<WasmDefinitions> {
  const directory = options.meteredCacheDirectory ?? '';
  let loading = definitionsLoading.get(directory);
  if (loading === undefined) {
    const cache = directory === '' ? undefined : new MeteredModuleCache({ directory });
    loading = Promise.all(wasmKinds.map((kind) => loadWasmAgent(agentPath(kind), { cache }))).then(
      (loaded) => Object.fromEntries(wasmKinds.map((kind, i) => [kind, loaded[i]!])) as WasmDefinitions,
    );
    definitionsLoading.set(directory, loading);
  }
  return loading;
}

const u32 = (value: number) => new Uint8Array(new Uint32Array([value >>> 0]).buffer);

interface FeederState {
  plan: FeederPlan;
  budget: number;
  fold: number;
}

/** A payload for `topic` drawn from the actor's seeded stream, sized to keep the agents cheap. */
function feedPayload(topic: FeedTopic, random: (bound: number) => number, fold: number): Uint8Array {
  switch (topic) {
    case 'numbers':
      return u32(random(0x1_0000) ^ fold);
    case 'jobs': {
      const extra = random(wasm_plan_payload_bytes_max + 1);
      const bytes = new Uint8Array(4 + extra);
      bytes.set(u32(random(feeder_rounds_max + 1)));
      for (let i = 0; i < extra; i++) bytes[4 + i] = (random(256) ^ fold) & 0xff;
      return bytes;
    }
    case 'config':
      return u32(2 + random(feeder_sieve_bound_max));
  }
}

const feeder = defineActor({
  name: 'feeder',
  subscribe: (plan: FeederPlan) => (plan.reactTo === null ? [] : [plan.reactTo]),
  init: (ctx, plan: FeederPlan): FeederState => ({ plan, budget: plan.budget, fold: ctx.self }),
  receive: (state, message, ctx) => {
    state.fold = (Math.imul(state.fold ^ (message.payload[0] ?? 0), 31) + message.sender + message.seq) | 0;
    if (state.budget > 0) {
      state.budget--;
      ctx.publish(state.plan.topic, feedPayload(state.plan.topic, (bound) => ctx.randomInt(bound), state.fold), { priority: state.plan.publishPriority });
    }
    return state;
  },
  step: (state, ctx) => {
    state.budget = state.plan.budget;
    if (ctx.randomInt(256) < state.plan.emitChance) {
      for (let i = 0; i < state.plan.burst; i++) {
        ctx.publish(state.plan.topic, feedPayload(state.plan.topic, (bound) => ctx.randomInt(bound), state.fold), { priority: state.plan.publishPriority });
      }
    }
    return state;
  },
});

interface ListenerState {
  plan: ListenerPlan;
  fold: number;
  received: number;
  reported: number;
}

const listener = defineActor({
  name: 'listener',
  subscribe: (plan: ListenerPlan) => plan.subscribe,
  init: (ctx, plan: ListenerPlan): ListenerState => ({ plan, fold: ctx.self, received: 0, reported: 0 }),
  receive: (state, message) => {
    let fold = state.fold ^ message.sender;
    for (const byte of message.payload) fold = Math.imul(fold ^ byte, 0x0100_0193);
    state.fold = (fold + message.seq) | 0;
    state.received++;
    return state;
  },
  step: (state, ctx) => {
    const every = state.plan.reportEvery;
    if (every > 0 && ctx.tick % every === 0 && state.received > state.reported) {
      // Makes the fold visible in the log: it reaches the counter (if any) as a number.
      const sent = ctx.publish('numbers', u32(state.fold));
      if (sent.ok) state.reported = state.received;
    }
    return state;
  },
});

/** Builds the system a plan describes, with the given (already loaded) agent definitions. */
export function buildWasmSystem(plan: WasmSystemPlan, definitions: WasmDefinitions): SystemDefinition {
  return defineSystem({
    name: 'generated-wasm',
    topics: allTopics,
    setup(system) {
      for (const actor of plan.actors) {
        const common = { name: actor.name, priority: actor.priority, mailboxCapacity: actor.mailboxCapacity };
        if (actor.role === 'agent') system.spawn(definitions[actor.kind], common);
        else if (actor.role === 'feeder') system.spawn(feeder, { ...common, args: actor });
        else system.spawn(listener, { ...common, args: actor });
      }
    },
  });
}

/**
 * The plan's actors as child specs of a supervisor (each named `<supervisor>/<name>`), in
 * spawn order, for systems that supervise them; the same actors `buildWasmSystem` spawns.
 */
export function wasmChildSpecs(plan: WasmSystemPlan, definitions: WasmDefinitions): ChildSpec[] {
  return plan.actors.map((actor) => {
    const common = { id: actor.name, priority: actor.priority, mailboxCapacity: actor.mailboxCapacity };
    if (actor.role === 'agent') return { ...common, start: definitions[actor.kind] };
    return { ...common, start: actor.role === 'feeder' ? feeder : listener, args: actor };
  });
}

export interface WasmPlanRun {
  bytes: Uint8Array;
  chainHex: string;
}

/**
 * Runs a plan on `workers` worker threads at the `full` level: injects each input before
 * its tick (an input refused by a full mailbox is part of the deterministic run), runs
 * `plan.ticks` ticks, closes. Returns the in-memory log and its final chain. `definitions`
 * defaults to `loadWasmDefinitions()`.
 */
export async function runWasmPlan(plan: WasmSystemPlan, options: { workers: number; definitions?: WasmDefinitions }): Promise<WasmPlanRun> {
  const definitions = options.definitions ?? (await loadWasmDefinitions());
  const runtime = createRuntime(buildWasmSystem(plan, definitions), {
    seed: plan.seed,
    level: 'full',
    workers: options.workers,
    trustedKeys: [devPublicKeyPem],
  });
  try {
    let next = 0;
    for (let tick = 1; tick <= plan.ticks; tick++) {
      while (next < plan.inputs.length && plan.inputs[next]!.tick <= tick) {
        const input = plan.inputs[next++]!;
        try {
          runtime.inject(input.topic, new Uint8Array(input.payload), { priority: input.priority });
        } catch (error) {
          if (!(error instanceof MailboxFullError)) throw error;
        }
      }
      await runtime.step();
    }
    const chainHex = await runtime.close();
    return { bytes: runtime.logBytes(), chainHex };
  } catch (error) {
    await runtime.abandon();
    throw error;
  }
}

export interface WasmTraffic {
  /** Envelopes delivered over the run. */
  delivered: number;
  /** Delivered envelopes that a WASM agent published. */
  fromAgents: number;
  /** Messages WASM agents processed (from their per-actor digests). */
  agentsReceived: number;
  /** Crashes, as `name@tick: reason`, in log order. */
  crashes: { name: string; tick: number; reason: string }[];
}

/** What a recorded run of a plan did with its WASM agents, read back from the log. */
export function wasmTrafficOf(bytes: Uint8Array, plan: WasmSystemPlan): WasmTraffic {
  const log = readLog(bytes);
  const agentNames = new Set(plan.actors.filter((actor) => actor.role === 'agent').map((actor) => actor.name));
  const names = new Map<number, string>();
  const traffic: WasmTraffic = { delivered: 0, fromAgents: 0, agentsReceived: 0, crashes: [] };
  for (const record of log.ticks) {
    for (const event of record.lifecycle) {
      if (event.to === 'created') names.set(event.actor, event.detail.split(' ')[0]!);
      if (event.to === 'crashed') traffic.crashes.push({ name: names.get(event.actor) ?? `#${event.actor}`, tick: record.tick, reason: event.detail });
    }
    traffic.delivered += record.deliveredCount;
    for (const envelope of record.envelopes ?? []) {
      if (agentNames.has(names.get(envelope.sender) ?? '')) traffic.fromAgents++;
    }
    for (const digest of actorDigestsOf(record.actorDigests)) {
      if (agentNames.has(names.get(digest.actor) ?? '')) traffic.agentsReceived += digest.received;
    }
  }
  return traffic;
}
