/**
 * The supervision engine: OTP supervisor semantics (erlang.org/doc/man/supervisor) on
 * logical ticks.
 *
 * Supervisors are actors: each has an id, a name, an xstate lifecycle in the log and a
 * place in `snapshot()`. They watch their children's lifecycles. An exit seen during tick
 * t (a crash in init, receive or step, a WASM trap, spent fuel, a dead worker, a stop) is
 * acted on at the boundary of tick t+1, before delivery, in the order the exits happened:
 * the restarted child takes tick t+1's mail and runs init in that tick. Nothing here reads
 * a clock, so the same exits give the same restarts, and replay reproduces them.
 *
 *   exit of child C (not one its supervisor S was stopping)
 *     temporary, or transient after a normal exit  → not restarted
 *     otherwise, one more restart within `period`  → more than `intensity`? S terminates its
 *                                                    children (reverse start order) and exits
 *                                                    abnormally: its parent decides (escalation)
 *     one_for_one, simple_one_for_one              → restart C
 *     one_for_all                                  → stop the others (reverse order), restart all in order
 *     rest_for_one                                 → stop those after C (reverse), restart C and them in order
 *
 * A restart waits until every child of its group is down (a WASM agent stops at its
 * barrier), then the optional backoff; then children restart in start order. A child that
 * crashes in init while its supervisor is starting makes the supervisor's start fail, as
 * OTP's does: the supervisor stops what it started and exits abnormally.
 *
 * The decisions in the table above (restart or not, the intensity window, the group, the
 * backoff) are the pure functions of `policy.ts`; this file is the machinery that carries
 * them out: stopping, waiting for the barrier, restarting, the verbs, the views.
 */
import type { ActorDefinition } from '../actors/js-actor.ts';
import { ActorCell } from '../actors/cell.ts';
import type { LifecycleState, TransitionWatcher } from '../actors/lifecycle.ts';
import type { WasmAgentDefinition } from '../actors/wasm-agent.ts';
import { jsonDecode, jsonEncode } from '../src/codec.ts';
import type { Envelope } from '../src/envelope.ts';
import { SupervisorError } from '../src/errors.ts';
import { ActorStatus, type ActorStatusCode, type Kernel, type KernelActor } from '../src/kernel.ts';
import { addRestart, backoffDelay, forgetsWhenDown, restartGroup, restartsInWindow, shouldRestart } from './policy.ts';
import {
  isSupervisorSpec,
  resolveChildSpec,
  specContains,
  type ChildSpec,
  type ChildStart,
  type ResolvedChildSpec,
  type SupervisorSpec,
} from './spec.ts';

/** What the engine needs of a worker child (a JS actor or a WASM agent). */
export interface SupervisedActor {
  readonly self: number;
  readonly name: string;
  readonly lifecycleState: LifecycleState;
  readonly status: ActorStatusCode;
  watcher: TransitionWatcher | null;
  restart(detail: string): void;
  kill(reason: string): void;
}

/** What the runtime lends the engine: creating worker actors (trust checks and all), and who hears of decisions. */
export interface SupervisionHost {
  /** Creates and admits a JS actor or WASM agent named `name`. Throws ConfigError. */
  spawnWorker(start: ActorDefinition<any, any> | WasmAgentDefinition, name: string, spec: ResolvedChildSpec): SupervisedActor;
  /** Told of each decision as it is made (for the event bus; it changes nothing). */
  decided?(decision: SupervisionDecision): void;
}

/** A supervisor's decision, as the event bus reports it. */
export interface SupervisionDecision {
  supervisor: string;
  /** restart: the group is stopped and restarted; give_up: the supervisor stops its children and exits. */
  decision: 'restart' | 'give_up';
  /** The children concerned: for a restart, the group in start order; for a give-up, the children it stops, in stop order. */
  children: string[];
  reason: string;
}

/** The control channel that carries supervision verbs (a number in every log that holds one: it never changes). */
export const supervisionChannel = 7;

/** A supervisor as the kernel sees it. It runs no user code and takes no messages. */
export class SupervisorActor extends ActorCell {
  readonly kind = 'supervisor' as const;
  readonly hasStep = false;

  start(): void {
    this.lifecycle.send('INIT');
    this.lifecycle.send('READY');
  }

  /** Messages to a supervisor are dropped at delivery with this reason (it never activates). */
  readonly refusesMail = 'supervisors take no messages; use the supervision verbs (startChild, terminateChild, ...)';

  activate(batch: readonly Envelope[]): number {
    return batch.length;
  }

  stop(reason: string): void {
    if (!this.sendIfAllowed('STOP', reason)) return;
    if (this.lifecycle.state === 'stopping') this.lifecycle.send('STOPPED');
  }

  restart(detail: string): void {
    this.lifecycle.send('RESTART', detail);
  }

  /** The supervisor exits abnormally (gave up, failed to start, or an injected crash). */
  crash(reason: string): void {
    this.lastCrash = { tick: this.kernel.tick, message: reason };
    this.sendIfAllowed('CRASH', reason);
    this.kernel.actorWentDown(this.self);
  }

  /** A root supervisor that crashed has nobody to restart it: it has failed. */
  fail(reason: string): void {
    this.sendIfAllowed('FAIL', reason);
  }
}

/** Why a child is starting: decides what a crash in its init means. */
type StartKind =
  /** Part of its supervisor's (re)start: a failure fails the supervisor's start. */
  | 'supervisor-start'
  /** Restarted by the strategy: a failure is a crash like any other. */
  | 'restart'
  /** startChild: a failure removes the child. */
  | 'start-verb'
  /** restartChild: a failure leaves the spec, terminated. */
  | 'restart-verb';

class Child {
  /** Set while its supervisor stops it: the exit that follows is expected, not a restart trigger. */
  terminating = false;
  /** Set from a (re)start until it first runs; null once running. */
  startKind: StartKind | null;
  pending: PendingRestart | null = null;
  removed = false;
  /** Restart ticks of this child within its supervisor's period (for backoff). */
  restartTicks: number[] = [];

  constructor(
    readonly spec: ResolvedChildSpec,
    readonly name: string,
    readonly actorId: number,
    readonly parent: Node,
    readonly worker: SupervisedActor | null,
    readonly node: Node | null,
    startKind: StartKind,
    readonly dynamic: boolean,
  ) {
    this.startKind = startKind;
  }

  get status(): ActorStatusCode {
    return this.worker !== null ? this.worker.status : this.node!.actor.status;
  }

  get lifecycleState(): LifecycleState {
    return this.worker !== null ? this.worker.lifecycleState : this.node!.actor.lifecycleState;
  }
}

interface PendingRestart {
  node: Node;
  /** In start order. */
  children: readonly Child[];
  /** First tick the restart may happen at (backoff). */
  at: number;
}

class Node {
  children: Child[] = [];
  /** Ticks of the restarts within the period. */
  restarts: number[] = [];
  state: 'running' | 'terminating' | 'down' = 'running';
  /** True from a (re)start until every static child has run once. */
  starting = true;
  /** The child record this supervisor is in its parent, or null for a root. */
  asChild: Child | null = null;
  serial = 0;

  constructor(
    readonly spec: SupervisorSpec,
    readonly actor: SupervisorActor,
    readonly parent: Node | null,
  ) {}

  get name(): string {
    return this.actor.name;
  }

  get id(): number {
    return this.actor.self;
  }

  childById(id: string): Child | undefined {
    return this.children.find((child) => !child.removed && (child.spec.id === id || child.name === id));
  }
}

interface Exit {
  child: Child;
  /** The tick the exit happened in. */
  tick: number;
  abnormal: boolean;
  /** The child crashed before it first ran (in init, or a supervisor in its own start). */
  failedStart: boolean;
  reason: string;
}

/** One child as `whichChildren` reports it (OTP: {Id, Child, Type, Modules}). */
export interface ChildInfo {
  id: string;
  /** The actor's name (`<supervisor>/<id>`); null when it was deleted. */
  name: string;
  actorId: number;
  type: 'worker' | 'supervisor';
  /** The child's lifecycle state; 'restarting' while a restart waits (backoff, siblings stopping). */
  state: LifecycleState;
  restart: ResolvedChildSpec['restart'];
}

/** OTP's count_children. */
export interface ChildCounts {
  specs: number;
  /** Children running (or starting). */
  active: number;
  supervisors: number;
  workers: number;
}

export interface SupervisorView {
  name: string;
  id: number;
  strategy: SupervisorSpec['flags']['strategy'];
  state: LifecycleState;
  /** Restarts within the current period. */
  restarts: number;
  children: (ChildInfo & { supervisor?: SupervisorView })[];
}

/** A supervision verb, as logged in a control request's payload (JSON). */
type Verb =
  | { verb: 'startChild'; name: string; spec: LoggedChildSpec }
  | { verb: 'terminateChild' | 'restartChild' | 'deleteChild'; id: string };

interface LoggedChildSpec {
  id: string;
  start: string;
  args?: unknown;
  priority: number;
  mailboxCapacity?: number;
  restart: ResolvedChildSpec['restart'];
  shutdown: ResolvedChildSpec['shutdown'];
}

export class Supervision {
  private readonly nodes = new Map<number, Node>();
  private readonly nodeByName = new Map<string, Node>();
  private readonly roots: Node[] = [];
  private exits: Exit[] = [];
  private pending: PendingRestart[] = [];
  private tickNow = 0;
  /** Set when the runtime shuts down: exits then are expected. */
  closing = false;
  /** Child starts by key, so a logged startChild names what it starts (replay resolves it). */
  private readonly startKeys = new Map<object, string>();
  private readonly starts = new Map<string, ChildStart>();

  constructor(
    private readonly kernel: Kernel,
    private readonly host: SupervisionHost,
  ) {}

  get size(): number {
    return this.nodes.size;
  }

  isSupervisor(actorId: number): boolean {
    return this.nodes.has(actorId);
  }

  /** The last time a supervisor crashed (gave up, failed to start, or a fault), for snapshots. */
  lastCrashOf(actorId: number): { tick: number; message: string } | null {
    return this.nodes.get(actorId)?.actor.lastCrash ?? null;
  }

  // ── registry of what children run ───────────────────────────────────────────────

  /**
   * Registers what a dynamic child may run. Everything a tree's specs name is registered
   * when the tree starts; a definition only ever started by startChild must be registered
   * in the system's setup, so that replay finds it by the same key.
   */
  register(start: ChildStart): string {
    const known = this.startKeys.get(start);
    if (known !== undefined) return known;
    const base = start.kind === 'supervisor' ? 'supervisor' : `${start.kind}:${start.name}`;
    let key = base;
    for (let n = 2; this.starts.has(key); n++) key = `${base}#${n}`;
    this.startKeys.set(start, key);
    this.starts.set(key, start);
    if (start.kind === 'supervisor') for (const child of start.children) this.register(child.start);
    return key;
  }

  // ── starting trees ──────────────────────────────────────────────────────────────

  /** Starts a root supervisor named `name`; its children start in order. Returns its actor id. */
  startTree(spec: SupervisorSpec, name: string, priority: number): number {
    if (!isSupervisorSpec(spec)) throw new SupervisorError('supervisor_invalid_spec', 'spawn: this supervisor spec was not made by supervisor(flags, children)');
    this.register(spec);
    const node = this.createNode(spec, name, priority, null);
    this.roots.push(node);
    return node.id;
  }

  private createNode(spec: SupervisorSpec, name: string, priority: number, parent: Node | null): Node {
    const actor = new SupervisorActor(name, priority, this.kernel);
    const id = this.kernel.admit(actor, []);
    actor.admitted(id, `${name} (supervisor, ${spec.flags.strategy})`);
    const node = new Node(spec, actor, parent);
    this.nodes.set(id, node);
    this.nodeByName.set(name, node);
    if (spec.flags.strategy !== 'simple_one_for_one') {
      for (const childSpec of spec.children) this.addChild(node, childSpec, `${name}/${childSpec.id}`, 'supervisor-start', false);
    }
    this.checkStarted(node);
    return node;
  }

  /** Creates a child's actor (admitted: init runs at the next step 2) and watches it. */
  private addChild(node: Node, spec: ResolvedChildSpec, name: string, kind: StartKind, dynamic: boolean): Child {
    let child: Child;
    if (spec.start.kind === 'supervisor') {
      const nested = this.createNode(spec.start, name, spec.priority, node);
      child = new Child(spec, name, nested.id, node, null, nested, kind, dynamic);
      nested.asChild = child;
      nested.actor.watcher = (from, to, detail) => this.watch(child, from, to, detail);
    } else {
      const worker = this.host.spawnWorker(spec.start, name, spec);
      child = new Child(spec, name, worker.self, node, worker, null, kind, dynamic);
      worker.watcher = (from, to, detail) => this.watch(child, from, to, detail);
    }
    node.children.push(child);
    return child;
  }

  private watch(child: Child, from: LifecycleState, to: LifecycleState, detail: string): void {
    if (to === 'running' && child.worker !== null) this.childStarted(child);
    if (to !== 'crashed' && to !== 'stopped') return;
    if (child.removed) {
      this.kernel.retireName(child.name);
      return;
    }
    if (this.closing) return;
    const failedStart =
      to === 'crashed' && (child.worker !== null ? from === 'initializing' : child.node!.starting) && child.startKind !== null;
    this.exits.push({ child, tick: this.kernel.tick, abnormal: to === 'crashed', failedStart, reason: detail });
  }

  private childStarted(child: Child): void {
    child.startKind = null;
    this.checkStarted(child.parent);
  }

  /** A supervisor has started once each of its start-time children has run. */
  private checkStarted(node: Node): void {
    if (!node.starting) return;
    if (node.children.some((child) => !child.removed && child.startKind === 'supervisor-start')) return;
    node.starting = false;
    if (node.asChild !== null && node.asChild.startKind !== null) this.childStarted(node.asChild);
  }

  // ── the boundary ────────────────────────────────────────────────────────────────

  /** Runs at every tick boundary, before delivery: acts on last tick's exits, then on due restarts. */
  atBoundary(tick: number): void {
    this.tickNow = tick;
    if (this.closing) return;
    this.drainExits();
    if (this.pending.length === 0) return;
    const waiting: PendingRestart[] = [];
    for (const restart of this.pending.splice(0)) {
      if (restart.node.state !== 'running' || restart.children.every((child) => child.pending !== restart)) continue;
      if (restart.at > tick || !restart.children.every((child) => this.subtreeDown(child))) {
        waiting.push(restart);
        continue;
      }
      for (const child of restart.children) {
        if (child.pending !== restart || child.removed) continue;
        child.pending = null;
        this.restartChild(child, 'restart', `restarted by ${restart.node.name}`);
      }
    }
    this.pending.push(...waiting);
    // Restarting a supervisor can fail its start at once (nothing to start): act on that too.
    this.drainExits();
  }

  private drainExits(): void {
    while (this.exits.length > 0) {
      const exit = this.exits.shift()!;
      this.handleExit(exit);
    }
  }

  private handleExit(exit: Exit): void {
    const { child } = exit;
    const node = child.parent;
    if (child.terminating) {
      child.terminating = false;
      return;
    }
    if (node.state !== 'running' || child.removed) return;
    if (exit.failedStart) {
      const kind = child.startKind;
      child.startKind = null;
      if (kind === 'supervisor-start') {
        this.giveUp(node, `failed to start child '${child.spec.id}': ${exit.reason}`);
        return;
      }
      if (kind === 'start-verb') {
        this.removeChild(child);
        return;
      }
      if (kind === 'restart-verb') return;
    }
    const { strategy, intensity, period } = node.spec.flags;
    if (!shouldRestart(child.spec.restart, exit.abnormal)) {
      if (forgetsWhenDown(strategy, child.spec.restart)) this.removeChild(child);
      return;
    }
    const counted = addRestart(node.restarts, this.tickNow, node.spec.flags);
    node.restarts = counted.restarts;
    if (counted.giveUp) {
      this.giveUp(node, `shutdown: reached max restart intensity (more than ${intensity} restarts in ${period} ticks); last exit: ${child.spec.id}: ${exit.reason}`);
      return;
    }
    const group = restartGroup(strategy, node.children.filter((c) => !c.removed), child, (c) => c.spec.restart);
    this.host.decided?.({ supervisor: node.name, decision: 'restart', children: group.restart.map((c) => c.name), reason: `${child.spec.id}: ${exit.reason}` });
    for (const sibling of group.stop) {
      this.terminate(sibling, `shutdown: restarting with ${child.spec.id} (${strategy})`);
      if (group.forget.includes(sibling)) this.removeChild(sibling);
    }
    this.schedule(node, group.restart, exit.tick);
  }

  /**
   * Queues a group restart. Without backoff it is due at once (the boundary after the
   * exit); with backoff, `delay` ticks after the exit's tick, so `initial: 1` is no delay.
   */
  private schedule(node: Node, group: readonly Child[], exitTick: number): void {
    let at = this.tickNow;
    const backoff = node.spec.flags.backoff;
    const first = group[0];
    if (backoff !== null && first !== undefined) {
      const trigger = group.find((c) => c.status === ActorStatus.down && c.pending === null) ?? first;
      // The child's own count, in the supervisor's window; only the supervisor's count can give up.
      trigger.restartTicks = addRestart(trigger.restartTicks, this.tickNow, node.spec.flags).restarts;
      at = Math.max(this.tickNow, exitTick + backoffDelay(backoff, trigger.restartTicks.length));
    }
    const restart: PendingRestart = { node, children: group, at };
    for (const child of group) child.pending = restart;
    this.pending.push(restart);
  }

  /** Starts a down child again: a worker's next incarnation, or a supervisor with its static children. */
  private restartChild(child: Child, kind: StartKind, detail: string): void {
    child.startKind = kind;
    child.terminating = false;
    if (child.worker !== null) {
      child.worker.restart(detail);
      this.kernel.readmit(child.actorId);
      return;
    }
    const node = child.node!;
    node.actor.restart(detail);
    this.kernel.readmit(node.id);
    node.state = 'running';
    node.restarts = [];
    node.starting = true;
    // As OTP: a restarted supervisor has the children of its spec, none added since.
    const previous = node.children;
    node.children = [];
    for (const old of previous) {
      if (!old.removed && (old.dynamic || node.spec.flags.strategy === 'simple_one_for_one')) this.retire(old);
    }
    if (node.spec.flags.strategy !== 'simple_one_for_one') {
      for (const spec of node.spec.children) {
        const old = previous.find((c) => !c.removed && !c.dynamic && c.spec.id === spec.id);
        if (old !== undefined) {
          node.children.push(old);
          old.pending = null;
          this.restartChild(old, 'supervisor-start', `started by ${node.name} (restarted)`);
        } else {
          this.addChild(node, spec, `${node.name}/${spec.id}`, 'supervisor-start', false);
        }
      }
    }
    this.checkStarted(node);
  }

  /** Stops a child on its supervisor's behalf, as its shutdown spec says; its exit is then expected. */
  private terminate(child: Child, reason: string): void {
    child.pending = null;
    if (child.status === ActorStatus.down && (child.node === null || child.node.state === 'down')) return;
    child.terminating = child.status !== ActorStatus.down;
    if (child.worker !== null) {
      if (child.spec.shutdown === 'brutal_kill') child.worker.kill(reason);
      else this.kernel.stopActor(child.actorId, reason);
      return;
    }
    this.terminateNode(child.node!, reason);
  }

  private terminateNode(node: Node, reason: string): void {
    node.state = 'terminating';
    for (let i = node.children.length - 1; i >= 0; i--) {
      const child = node.children[i]!;
      if (!child.removed) this.terminate(child, reason);
    }
    this.kernel.stopActor(node.id, reason);
    node.state = 'down';
  }

  /** Too many restarts, or a failed start: stop every child (reverse order), exit abnormally. */
  private giveUp(node: Node, reason: string): void {
    const stopping = node.children.filter((child) => !child.removed).reverse();
    this.host.decided?.({ supervisor: node.name, decision: 'give_up', children: stopping.map((child) => child.name), reason });
    node.state = 'terminating';
    for (let i = node.children.length - 1; i >= 0; i--) {
      const child = node.children[i]!;
      if (!child.removed) this.terminate(child, 'shutdown: supervisor giving up');
    }
    node.state = 'down';
    node.actor.crash(reason);
    if (node.parent === null) node.actor.fail(`root supervisor gave up: ${reason}`);
  }

  private subtreeDown(child: Child): boolean {
    if (child.worker !== null) return child.worker.status === ActorStatus.down;
    const node = child.node!;
    return node.actor.status === ActorStatus.down && node.children.every((c) => c.removed || this.subtreeDown(c));
  }

  private removeChild(child: Child): void {
    child.pending = null;
    this.retire(child);
  }

  private retire(child: Child): void {
    child.removed = true;
    const node = child.parent;
    node.children = node.children.filter((c) => c !== child);
    // A child still stopping (a WASM agent until its barrier) gives its name up once down.
    if (child.status === ActorStatus.down) this.kernel.retireName(child.name);
  }

  // ── verbs ───────────────────────────────────────────────────────────────────────

  /** The running supervisor named `name`, or a SupervisorError. */
  supervisorNamed(name: string): Node {
    const node = this.nodeByName.get(name);
    if (node === undefined) throw new SupervisorError('supervisor_not_found', `no supervisor named '${name}'; supervisors: ${[...this.nodeByName.keys()].join(', ') || 'none'}`);
    return node;
  }

  /**
   * Checks a startChild now and encodes it for the control request. For simple_one_for_one
   * `specOrArgs` is the args of a new child from the template; otherwise a child spec.
   * Returns the new child's actor name and the payload.
   */
  prepareStartChild(supervisorName: string, specOrArgs: unknown): { name: string; payload: Uint8Array } {
    const node = this.supervisorNamed(supervisorName);
    let spec: ResolvedChildSpec;
    let name: string;
    if (node.spec.flags.strategy === 'simple_one_for_one') {
      const template = node.spec.children[0]!;
      node.serial++;
      spec = { ...template, id: `${template.id}-${node.serial}`, args: specOrArgs };
      name = `${node.name}/${spec.id}`;
      while (this.nodeByName.has(name) || this.kernelHasName(name)) {
        node.serial++;
        spec = { ...spec, id: `${template.id}-${node.serial}` };
        name = `${node.name}/${spec.id}`;
      }
    } else {
      spec = resolveChildSpec(specOrArgs as ChildSpec);
      if (spec.start.kind === 'supervisor' && specContains(spec.start, node.spec)) {
        throw new SupervisorError('supervisor_invalid_spec', `startChild on '${node.name}': a supervisor cannot be nested in itself`);
      }
      const existing = node.childById(spec.id);
      if (existing !== undefined) {
        throw existing.status === ActorStatus.down
          ? new SupervisorError('supervisor_already_present', `startChild on '${node.name}': child '${spec.id}' is already present (terminated); restartChild or deleteChild it`)
          : new SupervisorError('supervisor_already_started', `startChild on '${node.name}': child '${spec.id}' is already started as '${existing.name}'`);
      }
      name = `${node.name}/${spec.id}`;
    }
    const key = this.startKeys.get(spec.start);
    if (key === undefined) {
      throw new SupervisorError(
        'supervisor_invalid_spec',
        `startChild on '${node.name}': what child '${spec.id}' starts is not registered; call builder.register(definition) in the system's setup so that replay can start it too`,
      );
    }
    const logged: LoggedChildSpec = { id: spec.id, start: key, priority: spec.priority, restart: spec.restart, shutdown: spec.shutdown };
    if (spec.args !== undefined) logged.args = spec.args;
    if (spec.mailboxCapacity !== undefined) logged.mailboxCapacity = spec.mailboxCapacity;
    return { name, payload: jsonEncode({ verb: 'startChild', name, spec: logged } satisfies Verb) };
  }

  private kernelHasName(name: string): boolean {
    try {
      this.kernel.actorId(name);
      return true;
    } catch {
      return false;
    }
  }

  /** Checks terminateChild / restartChild / deleteChild now (as OTP's errors) and encodes it. */
  prepareVerb(supervisorName: string, verb: 'terminateChild' | 'restartChild' | 'deleteChild', id: string): Uint8Array {
    const node = this.supervisorNamed(supervisorName);
    const refused = this.checkVerb(node, verb, id);
    if (refused !== null) throw refused;
    return jsonEncode({ verb, id } satisfies Verb);
  }

  private checkVerb(node: Node, verb: 'terminateChild' | 'restartChild' | 'deleteChild', id: string): SupervisorError | null {
    const simple = node.spec.flags.strategy === 'simple_one_for_one';
    if (simple && verb !== 'terminateChild') {
      return new SupervisorError('supervisor_simple_one_for_one', `${verb} on '${node.name}': a simple_one_for_one supervisor takes only startChild and terminateChild`);
    }
    const child = node.childById(id);
    if (child === undefined) return new SupervisorError('supervisor_not_found', `${verb} on '${node.name}': no child '${id}'`);
    if (verb !== 'terminateChild') {
      if (child.pending !== null) return new SupervisorError('supervisor_running', `${verb} on '${node.name}': child '${id}' is restarting`);
      if (!this.subtreeDown(child)) return new SupervisorError('supervisor_running', `${verb} on '${node.name}': child '${id}' is running; terminateChild it first`);
    }
    return null;
  }

  /** Carries out a logged verb at the tick boundary; returns null, or why it was refused. */
  applyVerb(supervisorId: number, payload: Uint8Array): string | null {
    const node = this.nodes.get(supervisorId);
    if (node === undefined) return `actor #${supervisorId} is not a supervisor`;
    if (node.state !== 'running') return `supervisor '${node.name}' is ${node.actor.lifecycleState}`;
    let verb: Verb;
    try {
      verb = jsonDecode(payload) as Verb;
    } catch (error) {
      return `malformed supervision verb: ${(error as Error).message}`;
    }
    if (verb.verb === 'startChild') return this.applyStartChild(node, verb.name, verb.spec);
    if (verb.verb !== 'terminateChild' && verb.verb !== 'restartChild' && verb.verb !== 'deleteChild') return `unknown supervision verb ${JSON.stringify((verb as { verb?: unknown }).verb)}`;
    const refused = this.checkVerb(node, verb.verb, verb.id);
    if (refused !== null) return refused.message;
    const child = node.childById(verb.id)!;
    if (verb.verb === 'terminateChild') {
      this.terminate(child, 'terminated by request (terminateChild)');
      if (forgetsWhenDown(node.spec.flags.strategy, child.spec.restart)) this.removeChild(child);
    } else if (verb.verb === 'restartChild') {
      this.restartChild(child, 'restart-verb', 'restarted by request (restartChild)');
    } else {
      this.removeChild(child);
    }
    return null;
  }

  private applyStartChild(node: Node, name: string, logged: LoggedChildSpec): string | null {
    const start = this.starts.get(logged.start);
    if (start === undefined) return `startChild on '${node.name}': nothing is registered as '${logged.start}'; register it in the system's setup`;
    if (node.childById(logged.id) !== undefined) return `startChild on '${node.name}': child '${logged.id}' already exists`;
    const spec: ResolvedChildSpec = {
      id: logged.id,
      start,
      args: logged.args,
      priority: logged.priority,
      mailboxCapacity: logged.mailboxCapacity,
      restart: logged.restart,
      shutdown: logged.shutdown,
    };
    try {
      this.addChild(node, spec, name, 'start-verb', true);
    } catch (error) {
      return `startChild on '${node.name}': ${(error as Error).message}`;
    }
    return null;
  }

  /** Crashes a supervisor (fault injection): it stops its children and exits abnormally. */
  crashSupervisor(supervisorId: number, reason: string): string | null {
    const node = this.nodes.get(supervisorId);
    if (node === undefined) return `actor #${supervisorId} is not a supervisor`;
    if (node.state !== 'running') return `supervisor '${node.name}' is ${node.actor.lifecycleState}`;
    this.giveUp(node, `fault injected: ${reason}`);
    this.drainExits();
    return null;
  }

  whichChildren(supervisorName: string): ChildInfo[] {
    const node = this.supervisorNamed(supervisorName);
    return node.children.filter((c) => !c.removed).map((child) => this.childInfo(child));
  }

  countChildren(supervisorName: string): ChildCounts {
    const children = this.supervisorNamed(supervisorName).children.filter((c) => !c.removed);
    return {
      specs: children.length,
      active: children.filter((c) => c.status !== ActorStatus.down).length,
      supervisors: children.filter((c) => c.node !== null).length,
      workers: children.filter((c) => c.worker !== null).length,
    };
  }

  private childInfo(child: Child): ChildInfo {
    return {
      id: child.spec.id,
      name: child.name,
      actorId: child.actorId,
      type: child.node !== null ? 'supervisor' : 'worker',
      state: child.pending !== null ? 'restarting' : child.lifecycleState,
      restart: child.spec.restart,
    };
  }

  /** The trees, for `snapshot()`. */
  views(): SupervisorView[] {
    const view = (node: Node): SupervisorView => ({
      name: node.name,
      id: node.id,
      strategy: node.spec.flags.strategy,
      state: node.actor.lifecycleState,
      restarts: restartsInWindow(node.restarts, this.tickNow, node.spec.flags.period).length,
      children: node.children
        .filter((c) => !c.removed)
        .map((child) => (child.node !== null ? { ...this.childInfo(child), supervisor: view(child.node) } : this.childInfo(child))),
    });
    return this.roots.map(view);
  }

  /**
   * The order a shutdown stops supervised actors in (OTP): trees in reverse order of start,
   * each supervisor's children in reverse start order, each supervisor after its children.
   */
  shutdownOrder(): number[] {
    const order: number[] = [];
    const visit = (node: Node) => {
      for (let i = node.children.length - 1; i >= 0; i--) {
        const child = node.children[i]!;
        if (child.node !== null) visit(child.node);
        else order.push(child.actorId);
      }
      order.push(node.id);
    };
    for (let i = this.roots.length - 1; i >= 0; i--) visit(this.roots[i]!);
    return order;
  }
}
