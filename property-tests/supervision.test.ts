/**
 * The supervision stress property (ADR-011): 1,000 ticks of a random supervision tree
 * under a random, seeded fault plan (crashes of workers and supervisors, malformed
 * payloads). For every run:
 *
 *   - the tree reacts exactly as its strategies say: an independent model reads each
 *     spontaneous exit from the log and predicts, for the next tick, the restart group or
 *     the escalation, which must be what the log shows;
 *   - the log verifies on replay (without the plan: the faults are logged inputs);
 *   - every message is accounted for: published or injected = delivered + undelivered at
 *     shutdown, and delivered = processed + dropped with a logged reason.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createRuntime,
  defineActor,
  defineSystem,
  jsonDecode,
  randomFaultPlan,
  replay,
  supervisor,
  type ChildSpec,
  type RestartType,
  type Strategy,
  type SupervisorSpec,
  type TickRecord,
} from '../src/index.ts';
import { ACTOR_DIGEST_STRIDE } from '../src/log/types.ts';

/** Each step, maybe sends a JSON note to a random peer; decoding a malformed payload crashes it. */
const chatterWithPeers = defineActor<{ count: number; peers: string[] }, { peers: string[] }>({
  name: 'chatter',
  init: (_ctx, args) => ({ count: 0, peers: args.peers }),
  receive: (state, message) => {
    jsonDecode(message.payload);
    return { ...state, count: state.count + 1 };
  },
  step: (state, ctx) => {
    if (ctx.random() < 0.5) {
      const peer = state.peers[ctx.randomInt(state.peers.length)]!;
      ctx.sendJson(peer, { from: ctx.name, n: state.count });
    }
    return undefined;
  },
});

interface TreePlan {
  strategy: Exclude<Strategy, 'simple_one_for_one'>;
  intensity: number;
  period: number;
  children: { id: string; restart: RestartType; nested: TreePlan | null }[];
}

const treePlan = (depth: number): fc.Arbitrary<TreePlan> =>
  fc.record({
    strategy: fc.constantFrom('one_for_one', 'one_for_all', 'rest_for_one') as fc.Arbitrary<TreePlan['strategy']>,
    intensity: fc.integer({ min: 0, max: 4 }),
    period: fc.integer({ min: 1, max: 12 }),
    children: fc
      .array(
        fc.record({
          restart: fc.constantFrom<RestartType>('permanent', 'permanent', 'transient', 'temporary'),
          nested: depth > 0 ? fc.option(treePlan(depth - 1), { freq: 3 }) : fc.constant(null),
        }),
        { minLength: 1, maxLength: 4 },
      )
      .map((children) => children.map((child, i) => ({ ...child, id: `c${i}` }))),
  });

/** Names of every worker in the tree, for the chatter peers and the fault plan. */
function workerNames(plan: TreePlan, prefix: string): string[] {
  return plan.children.flatMap((child) => (child.nested !== null ? workerNames(child.nested, `${prefix}/${child.id}`) : [`${prefix}/${child.id}`]));
}

function supervisorNames(plan: TreePlan, prefix: string): string[] {
  return [prefix, ...plan.children.flatMap((child) => (child.nested !== null ? supervisorNames(child.nested, `${prefix}/${child.id}`) : []))];
}

function buildTree(plan: TreePlan, peers: string[]): SupervisorSpec {
  const children: ChildSpec[] = plan.children.map((child) =>
    child.nested !== null
      ? { id: child.id, start: buildTree(child.nested, peers), restart: child.restart }
      : { id: child.id, start: chatterWithPeers, args: { peers }, restart: child.restart },
  );
  return supervisor({ strategy: plan.strategy, intensity: plan.intensity, period: plan.period }, children);
}

// ── the model ────────────────────────────────────────────────────────────────────────

interface ModelChild {
  id: string;
  name: string;
  restart: RestartType;
  node: ModelNode | null;
  removed: boolean;
}

interface ModelNode {
  name: string;
  plan: TreePlan;
  children: ModelChild[];
  restarts: number[];
  running: boolean;
}

function modelNode(plan: TreePlan, name: string): ModelNode {
  return {
    name,
    plan,
    running: true,
    restarts: [],
    children: plan.children.map((child) => ({
      id: child.id,
      name: `${name}/${child.id}`,
      restart: child.restart,
      node: child.nested !== null ? modelNode(child.nested, `${name}/${child.id}`) : null,
      removed: false,
    })),
  };
}

/**
 * Walks the log tick by tick. Worker crashes are the model's inputs (faults); everything a
 * supervisor does about them is predicted and must appear in the log: the restart group of
 * the strategy at the next tick's boundary, or the supervisor giving up when that restart
 * is one more than `intensity` within `period`. A supervisor that gives up is an exit its
 * parent acts on in the same boundary, predicted the same way.
 */
function checkAgainstModel(plan: TreePlan, records: TickRecord[], nameOf: (id: number) => string): { escalated: boolean; decisions: number } {
  const root = modelNode(plan, 'root');
  const parentOf = new Map<string, { node: ModelNode; child: ModelChild }>();
  const nodeByName = new Map<string, ModelNode>();
  const index = (node: ModelNode) => {
    nodeByName.set(node.name, node);
    for (const child of node.children) {
      parentOf.set(child.name, { node, child });
      if (child.node !== null) index(child.node);
    }
  };
  index(root);

  let decisions = 0;
  let escalated = false;
  const stopSubtree = (node: ModelNode): void => {
    node.running = false;
    for (const child of node.children) if (child.node !== null) stopSubtree(child.node);
  };
  /** Applies OTP's rule to one exit; returns what the log must show (restarts, or who gives up). */
  const decide = (child: ModelChild, node: ModelNode, tick: number): { restarting: string[]; givesUp: string | null } => {
    if (!node.running || child.removed) return { restarting: [], givesUp: null };
    if (child.restart === 'temporary') {
      child.removed = true;
      return { restarting: [], givesUp: null };
    }
    decisions++;
    node.restarts = node.restarts.filter((at) => tick - at < node.plan.period);
    node.restarts.push(tick);
    if (node.restarts.length > node.plan.intensity) {
      stopSubtree(node);
      escalated = true;
      return { restarting: [], givesUp: node.name };
    }
    const live = node.children.filter((c) => !c.removed);
    const group = node.plan.strategy === 'one_for_one' ? [child] : node.plan.strategy === 'one_for_all' ? live : live.slice(live.indexOf(child));
    // Siblings stopped for the group restart take their subtrees down: exits from there are moot.
    for (const member of group) if (member !== child && member.node !== null) stopSubtree(member.node);
    for (const member of group) if (member !== child && member.restart === 'temporary') member.removed = true;
    return { restarting: group.filter((member) => !member.removed).map((member) => member.name), givesUp: null };
  };

  let workerExits: { child: ModelChild; node: ModelNode }[] = [];
  /** Restarts decided at delivery (after an injected supervisor crash): they happen at the next boundary. */
  let deferred: string[] = [];
  for (const record of records) {
    if (record.lifecycle.some((event) => event.actor === 0)) break; // the shutdown record
    const tick = record.tick;
    const events = record.lifecycle.map((event) => ({ actor: nameOf(event.actor), to: event.to, detail: event.detail }));
    const restarting = new Set(events.filter((e) => e.to === 'restarting').map((e) => e.actor));
    const gaveUp = new Set(events.filter((e) => e.to === 'crashed' && nodeByName.has(e.actor) && /restart intensity/.test(e.detail)).map((e) => e.actor));
    // Restarts are carried out after all the boundary's exits are handled: a supervisor that
    // gives up over a later exit of the same boundary cancels the restarts it had decided.
    // So restarts are checked at the end of the tick, give-ups at once.
    const restartChecks: { node: ModelNode; names: string[] }[] = [];
    const gaveUpAtBoundary = new Set<ModelNode>();
    let atDelivery = false;
    const expectOutcome = (outcome: { restarting: string[]; givesUp: string | null }, node?: ModelNode) => {
      if (node !== undefined) restartChecks.push({ node, names: outcome.restarting });
      else for (const name of outcome.restarting) expect(restarting.has(name), `tick ${tick}: ${name} should restart`).toBe(true);
      if (outcome.givesUp !== null) {
        expect(gaveUp.has(outcome.givesUp), `tick ${tick}: ${outcome.givesUp} should give up`).toBe(true);
        if (!atDelivery) gaveUpAtBoundary.add(nodeByName.get(outcome.givesUp)!);
      }
    };
    // The boundary: restarts decided during the last tick, then its worker exits, in order.
    expectOutcome({ restarting: deferred, givesUp: null });
    deferred = [];
    for (const { child, node } of workerExits) expectOutcome(decide(child, node, tick), node);
    workerExits = [];
    // Then follow the log: supervisors that went down (gave up, or an injected crash) are
    // exits their parents act on now; restarted supervisors start over; workers that crash
    // are next tick's inputs.
    // Events come in tick order: the boundary's first, then delivery's (where injected
    // crashes land). A restart decided at delivery waits for the next boundary.
    for (const event of events) {
      if (event.detail.startsWith('fault injected')) atDelivery = true;
      const node = nodeByName.get(event.actor);
      const link = parentOf.get(event.actor);
      if (node !== undefined) {
        if (event.to === 'restarting') {
          node.running = true;
          node.restarts = [];
          for (const child of node.children) child.removed = false;
        } else if (event.to === 'crashed') {
          const injected = event.detail.startsWith('fault injected');
          if (injected) node.running = false;
          if (link !== undefined) {
            const outcome = decide(link.child, link.node, tick);
            // A supervisor that gave up at the boundary is restarted in that boundary; one
            // that went down at delivery (a fault, or giving up over one), at the next.
            if (atDelivery) {
              deferred.push(...outcome.restarting);
              expectOutcome({ restarting: [], givesUp: outcome.givesUp });
            } else {
              expectOutcome(outcome, link.node);
            }
          }
        } else if (event.to === 'stopped' || event.to === 'failed') {
          node.running = false;
        }
      } else if (link !== undefined && event.to === 'crashed') {
        workerExits.push(link);
      }
    }
    // A supervisor stopped at the boundary (it gave up, or an ancestor did) restarts nothing.
    const stoppedAtBoundary = (node: ModelNode): boolean => {
      for (let at: ModelNode | undefined = node; at !== undefined; at = parentOf.get(at.name)?.node) if (gaveUpAtBoundary.has(at)) return true;
      return false;
    };
    for (const { node, names } of restartChecks) {
      if (stoppedAtBoundary(node)) continue;
      for (const name of names) expect(restarting.has(name), `tick ${tick}: ${name} should restart`).toBe(true);
    }
  }
  return { escalated, decisions };
}

/** Published + injected = delivered + undelivered; delivered = processed + dropped. */
function checkAccounting(records: TickRecord[]): void {
  let sent = 0;
  let received = 0;
  let injected = 0;
  let delivered = 0;
  let control = 0;
  let undelivered = 0;
  let droppedAtMailbox = 0;
  for (const record of records) {
    for (let at = 0; at < record.actorDigests.length; at += ACTOR_DIGEST_STRIDE) {
      received += record.actorDigests[at + 1]!;
      sent += record.actorDigests[at + 2]!;
    }
    for (const input of record.injected) {
      if (input.topic === 0) control++;
      else injected++;
    }
    delivered += record.deliveredCount;
    for (const drop of record.drops) {
      if (drop.reason.startsWith('refused')) continue; // a refused publish never became a message
      if (drop.topic === 0) continue; // a refused control request
      if (drop.reason === 'undelivered at shutdown') undelivered++;
      else droppedAtMailbox++;
    }
  }
  // Control requests are applied at delivery, not put in mailboxes.
  expect(sent + injected + control).toBe(delivered + undelivered);
  expect(delivered - control).toBe(received + droppedAtMailbox);
}

describe('supervision under random faults', () => {
  it('1,000 ticks of a random tree under random faults: reacts as its strategies say, replays, and accounts for every message', async () => {
    await fc.assert(
      fc.asyncProperty(treePlan(2), fc.integer({ min: 0, max: 0xffff_ffff }), async (plan, seed) => {
        const workers = workerNames(plan, 'root');
        const supervisors = supervisorNames(plan, 'root');
        const tree = buildTree(plan, workers);
        const system = defineSystem({ name: 'supervision-stress', setup: (builder) => void builder.spawn(tree, { name: 'root' }) });
        const faults = randomFaultPlan({ seed, ticks: 1000, rate: 0.03, actors: [...workers, ...workers, ...supervisors.slice(1)], kinds: ['crash', 'malformed'] });
        const records: TickRecord[] = [];
        const runtime = createRuntime(system, { seed, faults });
        runtime.events.on('tick', (event) => records.push(event.record));
        await runtime.run(1000);
        const snapshot = runtime.snapshot();
        await runtime.close();

        const { escalated } = checkAgainstModel(plan, records, (id) => runtime.actorName(id));
        const root = snapshot.supervisors[0]!;
        // Recovered, or escalated to the top exactly when some level ran out of restarts.
        if (root.state === 'running') {
          const down = snapshot.actors.filter((a) => a.lifecycle !== 'running' && !/stopped|crashed/.test(a.lifecycle));
          expect(down.filter((a) => a.lifecycle === 'failed')).toEqual([]);
        } else {
          expect(root.state).toBe('failed');
          expect(escalated).toBe(true);
        }
        checkAccounting(records);
        const report = await replay(runtime.logBytes(), system);
        expect(report.ticks).toBe(1000);
        expect(report.bitExact).toBe(true);
      }),
      { numRuns: 25, seed: 0x5afe },
    );
  }, 240_000);
});
