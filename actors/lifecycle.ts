/**
 * The lifecycle of every actor, as an xstate v5 machine (ARCHITECTURE.md, "Actors"):
 *
 *   created → initializing → running ⇄ suspended → stopping → stopped
 *                  │            │          │                        │
 *                  └────────────┴──────────┴──▶ crashed → restarting → initializing
 *                                                  └─────▶ failed
 *
 * A supervisor restarts a crashed child, and also one it stopped itself (the siblings of
 * a one_for_all or rest_for_one restart, a permanent child that exited normally), so
 * `stopped` leads on to `restarting`. `failed` is final: nobody restarts it.
 *
 * Only lifecycle events go through xstate (about 200k events/s); per-message traffic never
 * does. Every transition is reported to `onTransition`, which the runtime writes to the log.
 */
import { createActor, setup, type Actor } from 'xstate';
import { ActorStatus, type ActorStatusCode } from '../src/kernel.ts';

export type LifecycleEventType =
  | 'INIT'
  | 'READY'
  | 'SUSPEND'
  | 'RESUME'
  | 'STOP'
  | 'STOPPED'
  | 'CRASH'
  | 'RESTART'
  | 'FAIL';

export type LifecycleState =
  | 'created'
  | 'initializing'
  | 'running'
  | 'suspended'
  | 'stopping'
  | 'stopped'
  | 'crashed'
  | 'restarting'
  | 'failed';

// Not exported: its inferred type is xstate's, and the public types must not depend on xstate's
// (they fail a consumer's `tsc` under exactOptionalPropertyTypes without skipLibCheck).
const lifecycleMachine = setup({
  types: { events: {} as { type: LifecycleEventType } },
}).createMachine({
  id: 'lifecycle',
  initial: 'created',
  states: {
    created: { on: { INIT: 'initializing', STOP: 'stopped' } },
    initializing: { on: { READY: 'running', CRASH: 'crashed', STOP: 'stopping' } },
    running: { on: { SUSPEND: 'suspended', STOP: 'stopping', CRASH: 'crashed' } },
    suspended: { on: { RESUME: 'running', STOP: 'stopping', CRASH: 'crashed' } },
    stopping: { on: { STOPPED: 'stopped', CRASH: 'crashed' } },
    stopped: { on: { RESTART: 'restarting' } },
    crashed: { on: { RESTART: 'restarting', FAIL: 'failed' } },
    // Restarted at a boundary, init not run yet: a stop or crash then (its supervisor giving
    // up, an injected fault at delivery) takes it straight down, as from `created`.
    restarting: { on: { INIT: 'initializing', FAIL: 'failed', STOP: 'stopped', CRASH: 'crashed' } },
    failed: { type: 'final' },
  },
});

/** What the kernel needs to know of each lifecycle state: takes mail, is scheduled, or is down. */
export const kernelStatusOf: Readonly<Record<LifecycleState, ActorStatusCode>> = {
  created: ActorStatus.starting,
  initializing: ActorStatus.starting,
  running: ActorStatus.running,
  suspended: ActorStatus.suspended,
  stopping: ActorStatus.suspended,
  stopped: ActorStatus.down,
  crashed: ActorStatus.down,
  restarting: ActorStatus.starting,
  failed: ActorStatus.down,
};

/** Told of a transition after it is logged (a supervisor watching its child). */
export type TransitionWatcher = (from: LifecycleState, to: LifecycleState, detail: string) => void;

export type TransitionListener = (from: LifecycleState, to: LifecycleState, detail: string) => void;

/** One actor's lifecycle: an xstate actor plus the transition report. */
export class Lifecycle {
  private readonly machine: Actor<typeof lifecycleMachine>;
  private current: LifecycleState = 'created';

  constructor(private readonly onTransition: TransitionListener) {
    this.machine = createActor(lifecycleMachine);
    this.machine.start();
  }

  get state(): LifecycleState {
    return this.current;
  }

  /** True when `event` is allowed in the current state. */
  can(event: LifecycleEventType): boolean {
    return this.machine.getSnapshot().can({ type: event });
  }

  /**
   * Moves the machine; `detail` goes into the log with the transition. Sending an event the
   * current state does not take is a bug in lockstep, so it throws.
   */
  send(event: LifecycleEventType, detail = ''): void {
    const from = this.current;
    if (!this.can(event)) throw new Error(`lifecycle: event ${event} is not allowed in state '${from}'`);
    this.machine.send({ type: event });
    const to = this.machine.getSnapshot().value as LifecycleState;
    this.current = to;
    if (to !== from) this.onTransition(from, to, detail);
  }
}
