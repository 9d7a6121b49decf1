/**
 * Peer benchmark: lockstep's `routed_msgs_per_s` ring, run on xstate v5 actors.
 *
 * Pattern (same as lockstep's ring): N actors in a ring, each seeded with
 * `tokensPerActor` tokens (K = N * tokensPerActor in flight). A token is a
 * `{ type: 'msg', payload }` event whose payload is a 16-byte Uint8Array. An actor that
 * receives a token forwards it to the next actor in the ring, until `deliveries` (M)
 * tokens have been received in total. Each actor is its own `createActor(machine)` from
 * `setup(...).createMachine(...)`; it learns its successor from a `setNext` event carrying
 * the ActorRef (stored in context with `assign`). Every delivery is a full xstate event:
 * `actor.send` -> system relay -> mailbox -> machine transition (guard + actions).
 * The received event object is forwarded as is (payload passed by reference, no copy, as
 * an in-process actor runtime does).
 *
 * Why a trampoline (the default, `benchXstate`):
 * xstate v5 delivers synchronously. After a transition the sender runs its deferred
 * `sendTo`s, and the target processes the event on the same stack unless its mailbox is
 * already busy, in which case the event is queued there. Forwarding with `sendTo` around a
 * ring therefore recurses down the ring until the token meets the one actor already on the
 * stack: the stack is N actors deep (~7 frames each) in steady state, and it overflows
 * between N = 1024 and N = 4096 ("Maximum call stack size exceeded"). Seeding is also
 * impossible to do fairly with `sendTo`: a token sent to an idle started actor runs at once
 * (so seeding serializes), and parking tokens in unstarted actors means a T*N^2/2-delivery
 * startup sweep. So the actor's forward action hands `(next, event)` to a synchronous,
 * microtask-free trampoline (a FIFO drained by a plain loop), and the loop calls
 * `next.send(event)`: one xstate delivery per hop, constant stack depth for any N, every
 * actor really starts with its own tokens, and the K tokens circulate round-robin, like a
 * run queue in an actor scheduler. The loop adds one array push and one indexed read per
 * hop, which is noise next to xstate's per-event cost.
 *
 * `benchXstateSendTo` is the idiomatic-`sendTo` variant, kept for comparison: actors
 * 1..N-1 are started, all K tokens are parked in the mailbox of actor 0 (not yet started,
 * so xstate queues them), and the timed region is `ring[0].start()`, which runs the ring to
 * completion synchronously (actor 0 is the one busy actor that absorbs each token after a
 * lap). At N = 64 it measured within noise of the trampoline (0.13-0.32M/s vs
 * 0.12-0.28M/s on a loaded 2-core box), at N = 1024 it was ~half as fast (deep stacks), and
 * above a few thousand actors it throws RangeError (refused up front above
 * SENDTO_MAX_ACTORS). Run it with `npx tsx bench/xstate-peer.ts --sendto`.
 *
 * Counting: a shared counter; a guard stops forwarding once M deliveries are counted (the
 * trampoline loop also stops there), so `deliveries` is exactly M. The whole run is
 * synchronous, so the time between the two `performance.now()` calls is pure xstate work
 * (no event-loop idle time). Setup (creating and starting actors, seeding) is not timed.
 */
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { assign, createActor, sendTo, setup, type AnyActorRef } from 'xstate';

export interface XstateBenchOptions {
  actors?: number;
  tokensPerActor?: number;
  deliveries?: number;
}

export interface XstateBenchResult {
  msgsPerS: number;
  deliveries: number;
}

const PAYLOAD_BYTES = 16;

/** Above this ring size the recursive `sendTo` variant overflows the stack. */
const SENDTO_MAX_ACTORS = 1024;

/**
 * Deliveries for a direct `npx tsx bench/xstate-peer.ts` run. xstate does ~0.15-0.25M
 * deliveries/s on the 2-core dev machine, so the suite's default of 2M takes ~10 s; this
 * keeps a run under ~5 s. `benchXstate` itself defaults to the suite's 2M.
 */
const DIRECT_RUN_DELIVERIES = 400_000;

type MsgEvent = { type: 'msg'; payload: Uint8Array };
type RingEvent = MsgEvent | { type: 'setNext'; next: AnyActorRef };

/** Shared by all actors of one run: the delivery budget and how much of it is used. */
interface Budget {
  limit: number;
  delivered: number;
}

/** Synchronous FIFO of pending hops, drained by a plain loop (no microtasks, no timers). */
class Trampoline {
  private targets: AnyActorRef[] = [];
  private events: MsgEvent[] = [];
  private spareTargets: AnyActorRef[] = [];
  private spareEvents: MsgEvent[] = [];

  post(target: AnyActorRef, event: MsgEvent): void {
    this.targets.push(target);
    this.events.push(event);
  }

  /** Delivers pending hops (and the hops they cause) until none are left or the budget is spent. */
  run(budget: Budget): void {
    while (this.targets.length > 0) {
      // Swap in the spare buffers so forwards made during this round go to the next round.
      const targets = this.targets;
      const events = this.events;
      this.targets = this.spareTargets;
      this.events = this.spareEvents;
      for (let i = 0; i < targets.length; i++) {
        if (budget.delivered >= budget.limit) {
          this.targets.length = 0;
          this.events.length = 0;
          break;
        }
        targets[i]!.send(events[i]!);
      }
      targets.length = 0;
      events.length = 0;
      this.spareTargets = targets;
      this.spareEvents = events;
    }
  }
}

type Delivery = { kind: 'trampoline'; trampoline: Trampoline } | { kind: 'sendTo' };

function makeRingMachine(budget: Budget, delivery: Delivery) {
  return setup({
    types: {
      context: {} as { next: AnyActorRef | null },
      events: {} as RingEvent,
    },
    guards: {
      hasBudget: () => budget.delivered < budget.limit,
    },
    actions: {
      countDelivery: () => {
        budget.delivered++;
      },
      // Default: hand the hop to the trampoline, whose loop calls `next.send(event)`.
      forwardViaTrampoline: ({ context, event }) => {
        if (context.next === null) throw new Error('ring node has no successor');
        if (delivery.kind !== 'trampoline' || event.type !== 'msg') throw new Error('bad forward');
        delivery.trampoline.post(context.next, event);
      },
      // Comparison variant: xstate's own (synchronous, recursive) actor-to-actor send.
      forwardViaSendTo: sendTo(
        ({ context }) => {
          if (context.next === null) throw new Error('ring node has no successor');
          return context.next;
        },
        ({ event }) => event,
      ),
    },
  }).createMachine({
    id: 'ringNode',
    context: { next: null },
    on: {
      setNext: {
        actions: assign({
          next: ({ event }) => event.next,
        }),
      },
      msg: [
        {
          guard: 'hasBudget',
          actions: [
            'countDelivery',
            delivery.kind === 'sendTo' ? 'forwardViaSendTo' : 'forwardViaTrampoline',
          ],
        },
        // Budget spent: drop the token (not counted, not forwarded).
        {},
      ],
    },
  });
}

function checkOptions(opts: XstateBenchOptions): { n: number; tokensPerActor: number; m: number } {
  const n = opts.actors ?? 64;
  const tokensPerActor = opts.tokensPerActor ?? 16;
  const m = opts.deliveries ?? 2_000_000;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`actors must be an integer >= 1, got ${n}`);
  if (!Number.isInteger(tokensPerActor) || tokensPerActor < 1) {
    throw new RangeError(`tokensPerActor must be an integer >= 1, got ${tokensPerActor}`);
  }
  if (!Number.isInteger(m) || m < 1) throw new RangeError(`deliveries must be an integer >= 1, got ${m}`);
  return { n, tokensPerActor, m };
}

function makeToken(actor: number, token: number): MsgEvent {
  const payload = new Uint8Array(PAYLOAD_BYTES);
  payload[0] = actor & 0xff;
  payload[1] = token & 0xff;
  return { type: 'msg', payload };
}

function finish(ring: AnyActorRef[], budget: Budget, elapsedMs: number): XstateBenchResult {
  for (const actor of ring) {
    const snap = actor.getSnapshot() as { status: string; error?: unknown };
    if (snap.status === 'error') throw snap.error;
    actor.stop();
  }
  if (budget.delivered !== budget.limit) {
    throw new Error(`xstate ring stopped after ${budget.delivered} of ${budget.limit} deliveries`);
  }
  return { msgsPerS: (budget.delivered / elapsedMs) * 1000, deliveries: budget.delivered };
}

/** The ring on xstate actors, each hop via the synchronous trampoline (see the header). */
export async function benchXstate(
  opts: { actors?: number; tokensPerActor?: number; deliveries?: number } = {},
): Promise<{ msgsPerS: number; deliveries: number }> {
  const { n, tokensPerActor, m } = checkOptions(opts);
  const budget: Budget = { limit: m, delivered: 0 };
  const trampoline = new Trampoline();
  const machine = makeRingMachine(budget, { kind: 'trampoline', trampoline });
  const ring = Array.from({ length: n }, () => createActor(machine).start());
  for (let i = 0; i < n; i++) ring[i]!.send({ type: 'setNext', next: ring[(i + 1) % n]! });
  // Seed: every actor's own tokens, queued for delivery to that actor.
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < tokensPerActor; t++) trampoline.post(ring[i]!, makeToken(i, t));
  }

  const t0 = performance.now();
  trampoline.run(budget);
  const elapsedMs = performance.now() - t0;
  return finish(ring, budget, elapsedMs);
}

/** Comparison variant: idiomatic recursive `sendTo` forwarding (N <= SENDTO_MAX_ACTORS). */
export async function benchXstateSendTo(opts: XstateBenchOptions = {}): Promise<XstateBenchResult> {
  const { n, tokensPerActor, m } = checkOptions(opts);
  if (n > SENDTO_MAX_ACTORS) {
    throw new RangeError(
      `sendTo variant recurses N actors deep; N = ${n} > ${SENDTO_MAX_ACTORS} overflows the stack`,
    );
  }
  const budget: Budget = { limit: m, delivered: 0 };
  const machine = makeRingMachine(budget, { kind: 'sendTo' });
  const ring = Array.from({ length: n }, () => createActor(machine));
  const gate = ring[0]!;
  for (let i = 0; i < n; i++) ring[i]!.send({ type: 'setNext', next: ring[(i + 1) % n]! });
  for (let i = 1; i < n; i++) ring[i]!.start();
  // The gate is not started yet, so xstate queues these in its mailbox.
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < tokensPerActor; t++) gate.send(makeToken(i, t));
  }

  const t0 = performance.now();
  gate.start();
  const elapsedMs = performance.now() - t0;
  return finish(ring, budget, elapsedMs);
}

async function main(): Promise<void> {
  const variant = process.argv.includes('--sendto') ? 'sendTo' : 'trampoline';
  const actors = 64;
  const tokensPerActor = 16;
  const opts = { actors, tokensPerActor, deliveries: DIRECT_RUN_DELIVERIES };
  const result = variant === 'sendTo' ? await benchXstateSendTo(opts) : await benchXstate(opts);
  console.log(
    JSON.stringify({
      peer: 'xstate',
      xstate: '5.33',
      variant,
      actors,
      tokens: actors * tokensPerActor,
      deliveries: result.deliveries,
      routed_msgs_per_s: Math.round(result.msgsPerS),
    }),
  );
}

// No top-level await, so the module also loads under CJS-mode loaders (e.g. `tsx -e`).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
