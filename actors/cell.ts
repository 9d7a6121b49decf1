/**
 * The cell every actor kind is built on (JS actors, WASM agents, supervisors, the
 * inference actor): its id and name in the kernel, its lifecycle machine and the kernel
 * status that follows it, the watcher its supervisor sets, its incarnation and its last
 * crash. A kind adds what it runs (`start`, `activate`, `stop`) and the capabilities that
 * mean something for it: `state` (a JS actor's value), `exhaustFuel` (a WASM agent's fuel),
 * `restart`, `kill` and `injectCrash` (what a supervisor and a fault plan need).
 *
 * Every transition goes the same way: the machine moves, the kernel status follows, the
 * kernel records the transition (it lands in the tick's facts, and so in the log), then the
 * watcher hears of it.
 */
import type { Envelope } from '../src/envelope.ts';
import { ActorStatus, type ActorStatusCode, type Kernel, type KernelActor } from '../src/kernel.ts';
import { Lifecycle, kernelStatusOf, type LifecycleEventType, type LifecycleState, type TransitionWatcher } from './lifecycle.ts';

export interface CrashInfo {
  tick: number;
  message: string;
}

export abstract class ActorCell implements KernelActor {
  status: ActorStatusCode = ActorStatus.starting;
  self = 0;
  /** How many times the actor has been started before (0 for the first run). */
  incarnation = 0;
  /** Told of every lifecycle transition after it is recorded; the actor's supervisor listens. */
  watcher: TransitionWatcher | null = null;
  lastCrash: CrashInfo | null = null;
  abstract readonly hasStep: boolean;
  /** The kind's name in handles and snapshots. */
  abstract readonly kind: 'js' | 'wasm' | 'supervisor' | 'inference';
  protected readonly lifecycle: Lifecycle;

  constructor(
    readonly name: string,
    readonly priority: number,
    protected readonly kernel: Kernel,
  ) {
    this.lifecycle = new Lifecycle((from, to, detail) => {
      this.status = kernelStatusOf[to];
      this.kernel.recordLifecycle(this.self, from, to, detail);
      this.watcher?.(from, to, detail);
    });
  }

  get lifecycleState(): LifecycleState {
    return this.lifecycle.state;
  }

  /** Takes the id the kernel gave the actor and records its creation (`detail`: what it is). */
  admitted(id: number, detail: string): void {
    this.self = id;
    this.kernel.recordLifecycle(id, 'none', 'created', detail);
  }

  /** Moves the machine when the current state takes `event`; returns whether it moved. */
  protected sendIfAllowed(event: LifecycleEventType, detail = ''): boolean {
    if (!this.lifecycle.can(event)) return false;
    this.lifecycle.send(event, detail);
    return true;
  }

  /** Keeps taking mail, is not scheduled. A no-op unless running. */
  suspend(): void {
    this.sendIfAllowed('SUSPEND');
  }

  /** Scheduled again. A no-op unless suspended. */
  resume(): void {
    this.sendIfAllowed('RESUME');
  }

  abstract start(): void;
  abstract activate(batch: readonly Envelope[]): number;
  abstract stop(reason: string): void;
}
