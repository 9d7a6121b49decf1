/**
 * Asks, replies and timers over generated systems: actors that ask each other, reply now,
 * later or never, crash (and are restarted by a supervisor), set and cancel timers; and asks
 * from outside at generated ticks. Every run is deterministic, replays bit for bit, and
 * answers every ask at most once.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MessageKind, createRuntime, defineActor, defineSystem, replay, supervisor, type Message, type Reply, type SystemDefinition } from '../src/index.ts';

interface ActorPlan {
  /** Out of 256 per step: ask a peer, start a timer, start a repeating timer, cancel one. */
  askChance: number;
  timerChance: number;
  everyChance: number;
  cancelChance: number;
  /** What it does with an ask (drawn per ask): reply now, reply on a timer, ignore, crash. */
  replyWeights: [number, number, number, number];
}

interface Plan {
  seed: number;
  ticks: number;
  actors: ActorPlan[];
  /** Asks from outside: (tick, actor index, timeoutTicks). */
  outside: { tick: number; actor: number; timeoutTicks: number }[];
  level: 'digest' | 'full';
}

const actorPlan: fc.Arbitrary<ActorPlan> = fc.record({
  askChance: fc.integer({ min: 0, max: 200 }),
  timerChance: fc.integer({ min: 0, max: 120 }),
  everyChance: fc.integer({ min: 0, max: 40 }),
  cancelChance: fc.integer({ min: 0, max: 80 }),
  replyWeights: fc.tuple(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 1 })),
});

const plans: fc.Arbitrary<Plan> = fc
  .record({
    seed: fc.integer({ min: 0, max: 0xffff_ffff }),
    ticks: fc.integer({ min: 5, max: 40 }),
    actors: fc.array(actorPlan, { minLength: 2, maxLength: 5 }),
    level: fc.constantFrom('digest' as const, 'full' as const),
  })
  .chain((base) =>
    fc.record({
      seed: fc.constant(base.seed),
      ticks: fc.constant(base.ticks),
      actors: fc.constant(base.actors),
      level: fc.constant(base.level),
      outside: fc.array(
        fc.record({
          tick: fc.integer({ min: 1, max: base.ticks }),
          actor: fc.integer({ min: 0, max: base.actors.length - 1 }),
          timeoutTicks: fc.integer({ min: 1, max: 6 }),
        }),
        { maxLength: 8 },
      ),
    }),
  );

interface PeerState {
  timers: number[];
  /** Cancelled timers, with the tick they were cancelled in. */
  cancelled: Record<string, number>;
  /** Ask ids of this incarnation: how many answers each got, and the tick its answer is due by. */
  answers: Record<string, { count: number; dueBy: number }>;
  /** Asks held for a later reply, by the timer that will answer them. */
  held: Record<string, Message>;
  log: string[];
}

/** What actors saw that they must never see (collected outside the run; it decides nothing). */
const violations: string[] = [];

function peer(plan: ActorPlan, peers: number) {
  const weightTotal = plan.replyWeights.reduce((a, b) => a + b, 0);
  return defineActor({
    name: 'peer',
    init: (): PeerState => ({ timers: [], cancelled: {}, answers: {}, held: {}, log: [] }),
    receive: (state: PeerState, message: Message, ctx) => {
      switch (message.kind) {
        case MessageKind.ask: {
          let pick = weightTotal === 0 ? 0 : ctx.randomInt(weightTotal);
          let choice = 0;
          while (choice < 3 && pick >= plan.replyWeights[choice]!) pick -= plan.replyWeights[choice++]!;
          if (choice === 0) ctx.replyJson(message, { from: ctx.name, tick: ctx.tick });
          else if (choice === 1) state.held[String(ctx.afterJson(1 + ctx.randomInt(3), 'answer'))] = message;
          else if (choice === 3) throw new Error(`asked to crash at tick ${ctx.tick}`);
          break;
        }
        case MessageKind.timer: {
          const held = state.held[String(message.correlation)];
          // A firing already in the mailbox when the timer is cancelled still arrives, in
          // that tick (as with erlang:cancel_timer); none arrives after it.
          const cancelledAt = state.cancelled[String(message.correlation)];
          if (held === undefined && !state.timers.includes(message.correlation) && cancelledAt !== ctx.tick) {
            violations.push(`${ctx.name}: timer ${message.correlation} at tick ${ctx.tick}, which this incarnation did not start or cancelled at ${cancelledAt}`);
          }
          if (held !== undefined) {
            delete state.held[String(message.correlation)];
            const result = ctx.replyJson(held, { from: ctx.name, late: true });
            state.log.push(`${ctx.tick}:late:${result.ok ? 'ok' : result.reason}`);
          } else {
            state.log.push(`${ctx.tick}:timer:${message.correlation}`);
          }
          break;
        }
        case MessageKind.reply:
        case MessageKind.askTimeout:
        case MessageKind.askFailed: {
          const id = String(message.correlation);
          if (!(id in state.answers)) violations.push(`${ctx.name}: an answer to ask ${id}, which this incarnation never made`);
          else if (++state.answers[id]!.count > 1) violations.push(`${ctx.name}: a second answer to ask ${id}`);
          else if (ctx.tick > state.answers[id]!.dueBy) violations.push(`${ctx.name}: ask ${id} answered at ${ctx.tick}, after ${state.answers[id]!.dueBy}`);
          state.log.push(`${ctx.tick}:${message.kind}:${id}`);
          break;
        }
        default:
          state.log.push(`${ctx.tick}:msg:${message.sender}`);
      }
      return state;
    },
    step: (state: PeerState, ctx) => {
      if (ctx.randomInt(256) < plan.askChance) {
        const target = 2 + ctx.randomInt(peers); // the supervisor is actor 1
        const timeoutTicks = 1 + ctx.randomInt(5);
        const result = ctx.askJson(target, { tick: ctx.tick }, { timeoutTicks });
        // Delivered next tick; the target has timeoutTicks from there; the notice comes the tick after.
        if (result.ok) state.answers[String(result.id)] = { count: 0, dueBy: ctx.tick + timeoutTicks + 1 };
      }
      if (ctx.randomInt(256) < plan.timerChance) state.timers.push(ctx.afterJson(1 + ctx.randomInt(6), 'once'));
      if (ctx.randomInt(256) < plan.everyChance) state.timers.push(ctx.everyJson(1 + ctx.randomInt(4), 'every'));
      if (state.timers.length > 0 && ctx.randomInt(256) < plan.cancelChance) {
        const [id] = state.timers.splice(ctx.randomInt(state.timers.length), 1);
        ctx.cancelTimer(id!);
        state.cancelled[String(id)] = ctx.tick;
      }
      return state;
    },
  });
}

function buildSystem(plan: Plan): SystemDefinition {
  const tree = supervisor(
    { strategy: 'one_for_one', intensity: 1000, period: 10 },
    plan.actors.map((actor, i) => ({ id: `p${i}`, start: peer(actor, plan.actors.length) })),
  );
  return defineSystem({ name: 'asks-timers', setup: (s) => s.spawn(tree, { name: 'root' }) });
}

async function runPlan(plan: Plan): Promise<{ bytes: Uint8Array; chainHex: string; outcomes: string[]; states: (PeerState | undefined)[]; late: string[] }> {
  const runtime = createRuntime(buildSystem(plan), { seed: plan.seed, level: plan.level });
  const outcomes: string[] = [];
  const late: string[] = [];
  const settled: Promise<void>[] = [];
  for (let tick = 1; tick <= plan.ticks; tick++) {
    for (const [n, ask] of plan.outside.entries()) {
      if (ask.tick !== tick) continue;
      const name = `root/p${ask.actor}`;
      // Taken in by this tick: settled by the end of tick + timeoutTicks - 1, when the run gets there.
      const dueBy = tick + ask.timeoutTicks - 1;
      const check = () => {
        if (dueBy <= plan.ticks && runtime.tick > dueBy) late.push(`outside ask ${n} settled at ${runtime.tick}, after ${dueBy}`);
      };
      settled.push(
        runtime.askJson(name, { outside: n }, { timeoutTicks: ask.timeoutTicks }).then(
          (reply: Reply) => void (check(), outcomes.push(`${n}:reply:${reply.tick}:${reply.text()}`)),
          (error: Error) => void (check(), outcomes.push(`${n}:${error.name}`)),
        ),
      );
    }
    await runtime.step();
  }
  // A crashed actor's state is its last one, asks and all: only a running one's counts.
  const states = plan.actors.map((_, i) => {
    const actor = runtime.actor(`root/p${i}`);
    return actor.lifecycle() === 'running' ? (actor.state() as PeerState) : undefined;
  });
  const chainHex = await runtime.close();
  await Promise.all(settled);
  for (const [i, state] of states.entries()) {
    for (const [id, answer] of Object.entries(state?.answers ?? {})) {
      if (answer.count === 0 && answer.dueBy <= plan.ticks) late.push(`p${i}: ask ${id} never answered, due by ${answer.dueBy}`);
    }
  }
  return { bytes: runtime.logBytes(), chainHex, outcomes: outcomes.sort(), states, late };
}

describe('asks, replies and timers over generated systems', () => {
  it('are deterministic, replay bit for bit, and answer every ask at most once', async () => {
    await fc.assert(
      fc.asyncProperty(plans, async (plan) => {
        violations.length = 0;
        const first = await runPlan(plan);
        const second = await runPlan(plan);
        expect(Buffer.compare(first.bytes, second.bytes)).toBe(0);
        expect(second.outcomes).toEqual(first.outcomes);
        // Every ask from outside settled exactly once (close fails those still waiting).
        expect(first.outcomes).toHaveLength(plan.outside.length);
        expect(violations).toEqual([]);
        // Every ask settled in time: replied, timed out at its deadline, or failed sooner.
        expect(first.late).toEqual([]);
        const report = await replay(first.bytes, buildSystem(plan));
        expect(report.bitExact).toBe(true);
        expect(report.chainHex).toBe(first.chainHex);
      }),
      { numRuns: 40 },
    );
  });
});
