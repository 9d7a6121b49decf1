/**
 * Random actor systems for the determinism properties. A system is generated as a plain,
 * JSON-serialisable spec (topologies, subscriptions, message patterns, priorities, inputs)
 * so the same spec can be rebuilt in another process.
 */
import fc from 'fast-check';
import { MailboxFullError, createRuntime, defineActor, defineSystem, type SystemDefinition } from '../src/index.ts';

export interface ActorPlan {
  priority: number;
  mailboxCapacity: number;
  /** Topic indices this actor subscribes to. */
  subscribe: number[];
  /** On each message: publish to this topic index (or -1: send to actor `sendTo`). */
  forwardTopic: number;
  /** 1-based actor index to send to when forwardTopic is -1. */
  sendTo: number;
  forwardPriority: number;
  /** Most messages it forwards per tick (bounds traffic). */
  budget: number;
  /** Chance, in 1/256, of emitting a fresh message from step. */
  emitChance: number;
  emitTopic: number;
}

export interface InputPlan {
  tick: number;
  topic: number;
  priority: number;
  payload: number[];
}

export interface SystemPlan {
  topics: number;
  actors: ActorPlan[];
  inputs: InputPlan[];
  ticks: number;
  seed: number;
  tickTasksMax: number;
}

export interface Mutation {
  /** 1-based actor index whose behaviour changes. */
  actor: number;
  /** From this tick on, it publishes different bytes. */
  fromTick: number;
}

export const topicName = (index: number) => `t${index}`;
export const actorName = (index: number) => `a${index}`;

export function systemPlans(options: { ticksMax?: number; actorsMax?: number } = {}): fc.Arbitrary<SystemPlan> {
  return fc
    .record({
      topics: fc.integer({ min: 1, max: 6 }),
      actorCount: fc.integer({ min: 1, max: options.actorsMax ?? 12 }),
      ticks: fc.integer({ min: 1, max: options.ticksMax ?? 30 }),
      seed: fc.integer({ min: 0, max: 0xffff_ffff }),
      tickTasksMax: fc.oneof(fc.constant(4096), fc.integer({ min: 1, max: 8 })),
    })
    .chain(({ topics, actorCount, ticks, seed, tickTasksMax }) => {
      const topic = fc.integer({ min: 0, max: topics - 1 });
      const actor = fc.record({
        priority: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 })),
        mailboxCapacity: fc.oneof(fc.constant(1024), fc.integer({ min: 1, max: 6 })),
        subscribe: fc.uniqueArray(topic, { maxLength: topics }),
        forwardTopic: fc.oneof(topic, fc.constant(-1)),
        sendTo: fc.integer({ min: 1, max: actorCount }),
        forwardPriority: fc.integer({ min: 0, max: 255 }),
        budget: fc.integer({ min: 0, max: 4 }),
        emitChance: fc.integer({ min: 0, max: 255 }),
        emitTopic: topic,
      });
      const input = fc.record({
        tick: fc.integer({ min: 1, max: ticks }),
        topic,
        priority: fc.integer({ min: 0, max: 255 }),
        payload: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 8 }),
      });
      return fc.record({
        topics: fc.constant(topics),
        actors: fc.array(actor, { minLength: actorCount, maxLength: actorCount }),
        inputs: fc.array(input, { maxLength: 20 }).map((inputs) => [...inputs].sort((a, b) => a.tick - b.tick)),
        ticks: fc.constant(ticks),
        seed: fc.constant(seed),
        tickTasksMax: fc.constant(tickTasksMax),
      });
    });
}

interface GenericArgs {
  plan: ActorPlan;
  mutateFrom: number | null;
}

/** Builds the system a plan describes; `mutation` changes one actor's output from a tick on. */
export function buildSystem(plan: SystemPlan, mutation: Mutation | null = null): SystemDefinition {
  const actor = defineActor({
    name: 'generic',
    subscribe: (args: GenericArgs) => args.plan.subscribe.map(topicName),
    init: (ctx, args: GenericArgs) => ({ hash: ctx.self, budget: args.plan.budget, seen: [] as string[], args }),
    receive: (state, message, ctx) => {
      state.hash = (Math.imul(state.hash ^ (message.payload[0] ?? 0), 31) + message.seq + message.sender) | 0;
      state.seen.push(`${message.topicName}:${message.sender}:${message.seq}`);
      const { plan: p } = state.args;
      if (state.budget > 0) {
        state.budget--;
        const payload = outgoing(state.hash, ctx.randomInt(256), ctx.tick, state.args.mutateFrom);
        if (p.forwardTopic >= 0) ctx.publish(topicName(p.forwardTopic), payload, { priority: p.forwardPriority });
        else ctx.send(actorName(p.sendTo), payload, { priority: p.forwardPriority });
      }
      return state;
    },
    step: (state, ctx) => {
      const { plan: p } = state.args;
      state.budget = p.budget;
      if (ctx.randomInt(256) < p.emitChance) {
        ctx.publish(topicName(p.emitTopic), outgoing(state.hash, ctx.randomInt(256), ctx.tick, state.args.mutateFrom));
      }
      return state;
    },
  });
  return defineSystem({
    name: 'generated',
    topics: Array.from({ length: plan.topics }, (_, i) => topicName(i)),
    config: { tickTasksMax: plan.tickTasksMax },
    setup(system) {
      plan.actors.forEach((actorPlan, i) => {
        const index = i + 1;
        system.spawn(actor, {
          name: actorName(index),
          priority: actorPlan.priority,
          mailboxCapacity: actorPlan.mailboxCapacity,
          args: { plan: actorPlan, mutateFrom: mutation !== null && mutation.actor === index ? mutation.fromTick : null },
        });
      });
    },
  });
}

function outgoing(hash: number, random: number, tick: number, mutateFrom: number | null): Uint8Array {
  const mutated = mutateFrom !== null && tick >= mutateFrom;
  return new Uint8Array([hash & 0xff, random, (hash >>> 8) & 0xff, mutated ? 0xee : 0x11]);
}

export interface PlanRun {
  bytes: Uint8Array;
  chainHex: string;
  /** Per actor name, the `topic:sender:seq` list it received. */
  seen: Map<string, string[]>;
  subscribers: Map<string, string[]>;
}

/** Runs a plan with its inputs (refused inputs are part of the deterministic run). */
export async function runPlan(plan: SystemPlan, options: { level?: 'digest' | 'full'; log?: string; mutation?: Mutation | null } = {}): Promise<PlanRun> {
  const system = buildSystem(plan, options.mutation ?? null);
  const runtime = createRuntime(system, { seed: plan.seed, level: options.level ?? 'full', ...(options.log === undefined ? {} : { log: options.log }) });
  let next = 0;
  for (let tick = 1; tick <= plan.ticks; tick++) {
    while (next < plan.inputs.length && plan.inputs[next]!.tick <= tick) {
      const input = plan.inputs[next++]!;
      try {
        runtime.inject(topicName(input.topic), new Uint8Array(input.payload), { priority: input.priority });
      } catch (error) {
        if (!(error instanceof MailboxFullError)) throw error;
      }
    }
    await runtime.step();
  }
  const seen = new Map<string, string[]>();
  const subscribers = new Map<string, string[]>();
  plan.actors.forEach((actorPlan, i) => {
    const name = actorName(i + 1);
    seen.set(name, runtime.actor(name).state<{ seen: string[] }>()?.seen ?? []);
    for (const t of actorPlan.subscribe) {
      const list = subscribers.get(topicName(t)) ?? [];
      list.push(name);
      subscribers.set(topicName(t), list);
    }
  });
  const chainHex = await runtime.close();
  return { bytes: options.log === undefined ? runtime.logBytes() : new Uint8Array(), chainHex, seen, subscribers };
}
