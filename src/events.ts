/**
 * The runtime's event bus: what each tick did, for whoever watches (the service host, the
 * observatory, federation, a test). One typed event per thing that happened:
 *
 *   tick         a tick closed: its log record and the record's bytes
 *   lifecycle    an actor moved (created, running, crashed, restarting, stopped, failed...)
 *   drop         a message that did not reach an actor, with the reason
 *   supervision  a supervisor's decision: restart, give-up (it stops its children and exits)
 *   fault        a fault of the fault plan taken in (or refused)
 *   worker       a WASM worker thread died, or one took its place
 *   inference    the inference actor ran a batch of one model's requests
 *
 * Events are gathered while a tick runs and handed out after the tick's record is
 * complete and logged, in the order they happened: a listener sees a finished tick and
 * cannot change it. Listeners run synchronously, one after another; one that throws is
 * reported (on the runtime's logger, or on stderr when that logger is silent) and counted,
 * the others still run, and the run goes on. Nothing here reads the clock.
 */
import type { Logger } from 'pino';
import type { TickRecord } from './log/types.ts';
import { eventsPerTickMax } from './limits.ts';

export interface TickEvent {
  kind: 'tick';
  tick: number;
  record: TickRecord;
  /** The record as written to the log (its FlatBuffers body). */
  bytes: Uint8Array;
}

export interface LifecycleTransitionEvent {
  kind: 'lifecycle';
  tick: number;
  actorId: number;
  actor: string;
  from: string;
  to: string;
  /** The actor's name when created, the error text of a crash, who restarted it... */
  detail: string;
}

export interface DropEvent {
  kind: 'drop';
  tick: number;
  /** The actor that did not get the message; null when nobody was subscribed (or for an input refused before it entered). */
  actor: string | null;
  topic: string;
  sender: string;
  seq: number;
  reason: string;
}

export interface SupervisionEvent {
  kind: 'supervision';
  tick: number;
  supervisor: string;
  /** restart: children restarted; give_up: too many restarts, or a failed start: it stops its children and exits. */
  decision: 'restart' | 'give_up';
  /** The children the decision is about, in the order it acts on them. */
  children: string[];
  reason: string;
}

export interface FaultEvent {
  kind: 'fault';
  tick: number;
  fault: 'crash' | 'exhaustFuel' | 'killWorker' | 'malformed';
  /** The actor, topic or worker it names. */
  target: string;
  /** False when the fault was refused (it names nothing there is); `reason` says why. */
  applied: boolean;
  reason: string;
}

export interface WorkerEvent {
  kind: 'worker';
  tick: number;
  worker: number;
  change: 'died' | 'replaced';
  /** The agents that were on it (for `died`: all of them crashed). */
  agents: string[];
  reason: string;
}

export interface InferenceBatchEvent {
  kind: 'inference';
  tick: number;
  model: string;
  requests: number;
  provider: string;
  /** The worker's own run time, in microseconds (a measurement: it decides nothing). */
  micros: number;
}

export type RuntimeEvent = TickEvent | LifecycleTransitionEvent | DropEvent | SupervisionEvent | FaultEvent | WorkerEvent | InferenceBatchEvent;
export type RuntimeEventKind = RuntimeEvent['kind'];
export type RuntimeEventOf<Kind extends RuntimeEventKind> = Extract<RuntimeEvent, { kind: Kind }>;
export type Listener<Kind extends RuntimeEventKind> = (event: RuntimeEventOf<Kind>) => void;

/** The subscribing side of the bus, as `runtime.events` offers it. */
export interface RuntimeEvents {
  /** Calls `listener` with every event of `kind`, after each tick. Returns a function that unsubscribes. */
  on<Kind extends RuntimeEventKind>(kind: Kind, listener: Listener<Kind>): () => void;
  /** Calls `listener` with every event of every kind, in the order they happened. */
  onAny(listener: (event: RuntimeEvent) => void): () => void;
  /** Listener calls that threw (each reported on the runtime's logger). */
  readonly listenerErrors: number;
}


const kinds: readonly RuntimeEventKind[] = ['tick', 'lifecycle', 'drop', 'supervision', 'fault', 'worker', 'inference'];

export class EventBus implements RuntimeEvents {
  private readonly listeners = new Map<RuntimeEventKind, ((event: RuntimeEvent) => void)[]>();
  private readonly anyListeners: ((event: RuntimeEvent) => void)[] = [];
  private pending: RuntimeEvent[] = [];
  private overflow = 0;
  private errors = 0;

  constructor(private readonly logger: Logger) {}

  on<Kind extends RuntimeEventKind>(kind: Kind, listener: Listener<Kind>): () => void {
    if (!kinds.includes(kind)) throw new TypeError(`events.on: unknown event kind ${JSON.stringify(kind)}; kinds: ${kinds.join(', ')}`);
    if (typeof listener !== 'function') throw new TypeError(`events.on('${kind}', listener): listener must be a function`);
    const list = this.listeners.get(kind) ?? [];
    const wrapped = listener as (event: RuntimeEvent) => void;
    list.push(wrapped);
    this.listeners.set(kind, list);
    return () => {
      const at = list.indexOf(wrapped);
      if (at >= 0) list.splice(at, 1);
    };
  }

  onAny(listener: (event: RuntimeEvent) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('events.onAny(listener): listener must be a function');
    this.anyListeners.push(listener);
    return () => {
      const at = this.anyListeners.indexOf(listener);
      if (at >= 0) this.anyListeners.splice(at, 1);
    };
  }

  get listenerErrors(): number {
    return this.errors;
  }

  /** True when someone listens to `kind`: lets the runtime skip building events nobody reads. */
  wants(kind: RuntimeEventKind): boolean {
    return this.anyListeners.length > 0 || (this.listeners.get(kind)?.length ?? 0) > 0;
  }

  /** Gathers an event of the tick under way; it goes out with `flush`. */
  queue(event: RuntimeEvent): void {
    if (!this.wants(event.kind)) return;
    if (this.pending.length >= eventsPerTickMax) {
      this.overflow++;
      return;
    }
    this.pending.push(event);
  }

  /** Hands out what was gathered, then `last` (the tick event). Called once the tick's record is logged. */
  flush(last: RuntimeEvent | null): void {
    const events = this.pending;
    this.pending = [];
    if (last !== null && this.wants(last.kind)) events.push(last);
    if (this.overflow > 0) {
      this.logger.warn({ dropped: this.overflow }, `event bus: more than ${eventsPerTickMax} events in one tick; the rest were not delivered`);
      this.overflow = 0;
    }
    for (const event of events) {
      const list = this.listeners.get(event.kind);
      if (list !== undefined) for (const listener of [...list]) this.call(listener, event);
      for (const listener of [...this.anyListeners]) this.call(listener, event);
    }
  }

  private call(listener: (event: RuntimeEvent) => void, event: RuntimeEvent): void {
    try {
      listener(event);
    } catch (error) {
      this.errors++;
      const text = `an event listener threw on the '${event.kind}' event of tick ${event.tick}; the run goes on`;
      if (this.logger.isLevelEnabled('error')) this.logger.error({ err: error }, text);
      else process.stderr.write(`lockstep: ${text}: ${(error as Error)?.stack ?? String(error)}\n`);
    }
  }
}
