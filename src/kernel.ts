/**
 * The tick kernel: topics, bounded mailboxes, the canonical delivery order and the tick
 * loop, nothing else. It sees an actor only through `KernelActor`, work off the
 * orchestrator thread only through `Executor`, and a control request only as a channel
 * number and opaque bytes; it knows nothing of xstate, supervision, faults, inference or
 * the log format. The runtime facade wires those in.
 *
 * One tick t, as ARCHITECTURE.md lays out:
 *
 *   outbox(t-1) + injections ──sort (priority desc, topic, sender, seq)──▶ delivered(t)
 *        delivered(t) ──fan-out to subscribers (ascending actor id)──▶ mailboxes
 *        admitted actors run init, then runnable actors (priority desc, actor id,
 *        at most tickTasksMax) run their mailbox and step ──publish──▶ outbox(t)
 *        executors settle (the barrier) ──▶ TickFacts(t) to the runtime (recorder, events)
 *
 * Backpressure is decided at publish time from logical state only: a subscriber's
 * mailbox depth plus the messages already reserved for it in this tick. A publish that
 * would overflow any subscriber is refused whole, the sender is told, and the sender is
 * not scheduled again until that mailbox has room. Nothing is ever dropped silently: every
 * message that does not reach a subscriber produces a DropRecord with its reason.
 */
import { utf8Encode } from './codec.ts';
import { Envelope, MessageKind, inSlab, type Topic } from './envelope.ts';
import { ActorContractError, ArgumentError, ConfigError, MailboxFullError, PayloadTooLargeError, TickInProgressError, UnknownTopicError, describeValue } from './errors.ts';
import { digestSeedHi, digestSeedLo, foldLane, foldMessageKind, hashEnvelope } from './hash.ts';
import { envelopeHeaderBytes, envelopeSlotBytes, writeEnvelopeHeader, writeEnvelopeSeq } from './envelope-layout.ts';
import type { MailboxSlabs, Slab } from './slabs.ts';
import {
  ACTOR_DIGEST_STRIDE,
  type AskFailureFact,
  type DropRecord,
  type EnvelopeRecord,
  type InjectedInput,
  type LifecycleEvent,
  type ReplyFact,
  type TickFacts,
  type TopicDeclaration,
} from './tick-facts.ts';

/** What the kernel needs to know about an actor's lifecycle, nothing more. */
export const ActorStatus = {
  /** Admitted; init runs at the next tick boundary. Takes mail. */
  starting: 0,
  /** Takes mail and is scheduled. */
  running: 1,
  /** Takes mail, not scheduled. */
  suspended: 2,
  /** Crashed, failed or stopped: takes no mail (messages to it are dropped with a reason). */
  down: 3,
} as const;
export type ActorStatusCode = (typeof ActorStatus)[keyof typeof ActorStatus];

/** The kernel's whole view of an actor. Implemented by the actor kinds in `actors/`. */
export interface KernelActor {
  readonly name: string;
  readonly priority: number;
  /** True when the actor runs every tick it is scheduled, mail or not. */
  readonly hasStep: boolean;
  /** Set by the actor layer as its lifecycle moves; read by the kernel on every decision. */
  status: ActorStatusCode;
  /** Lifecycle state name, for drop reasons and snapshots. */
  readonly lifecycleState: string;
  /** Set for an actor that takes no messages (a supervisor): why; what reaches it is dropped with it. */
  readonly refusesMail?: string;
  /**
   * True for an actor whose executor reads its mail from shared mailbox slabs (a WASM
   * agent): what is published to its topics is placed there (src/slabs.ts).
   */
  readonly readsSharedMailbox?: boolean;
  /** The actor's last crash, if any: the reason an ask it did not answer fails with. */
  readonly lastCrash?: { readonly message: string } | null;
  /** Runs init. Must not throw: a failing init is a crash the actor records itself. */
  start(): void;
  /**
   * Processes `batch` in order, then steps. Must not throw. Returns how many messages of
   * the batch it consumed: fewer than `batch.length` means it crashed part way.
   */
  activate(batch: readonly Envelope[]): number;
  /** Runs the stop hook. Must not throw. */
  stop(reason: string): void;
}

/**
 * Where actor work that does not run in `KernelActor.activate` itself goes: WASM agents
 * (on worker threads, or in this thread with `workers: 0`) and the inference actor (its
 * ONNX Runtime worker). An actor hands its batch to its executor during its activation;
 * the tick then waits, at the barrier, for every executor with work, in the order they
 * were added. `settle` applies the results through the kernel in a deterministic order of
 * its own, so the facts never depend on which thread finished first. JS actors need no
 * executor: they run in `activate`, on the orchestrator thread.
 */
export interface Executor {
  hasWork(): boolean;
  settle(tick: number): Promise<void>;
}

interface OpenTick {
  tick: number;
  deliveredCount: number;
  deliveredHi: number;
  deliveredLo: number;
  envelopes: EnvelopeRecord[] | null;
}

export interface KernelConfig {
  /** Most actors activated in one tick (ADR-003). */
  tickTasksMax: number;
  /** Default mailbox bound, in messages. */
  mailboxCapacity: number;
  /** Largest payload accepted, in bytes. */
  payloadBytesMax: number;
  /** Keep every delivered envelope in the tick's facts (the log's `full` level). */
  keepEnvelopes: boolean;
}

export type PublishResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly reason: 'mailbox_full';
      /** The subscriber whose mailbox is full. */
      readonly actor: string;
      readonly capacity: number;
    };

/** Shared so the accepted path allocates nothing. */
export const publishAccepted: PublishResult = Object.freeze({ ok: true });

/** What `ask` returns: accepted with the ask's id (the `correlation` of its reply), or refused as a publish is. */
export type AskResult = { readonly ok: true; readonly id: number } | Exclude<PublishResult, { ok: true }>;

/**
 * What `reply` returns: a publish result, or `ask_settled` when the ask no longer waits (it
 * timed out, failed, or was answered already); that reply is logged as a drop.
 */
export type ReplyResult = PublishResult | { readonly ok: false; readonly reason: 'ask_settled' };
const askSettled: ReplyResult = Object.freeze({ ok: false, reason: 'ask_settled' });

/** An ask waiting for its reply (see `Kernel.ask`). */
interface PendingAsk {
  /** The asking actor, or 0 for an ask from outside. */
  readonly asker: number;
  /** The asker's seq of the ask: its id, and the reply's `correlation`. */
  readonly seq: number;
  readonly target: number;
  /** The last tick a reply may be published in; the ask times out at its end. */
  readonly deadline: number;
  settled: boolean;
}

/** A timer of one actor (see `Kernel.startTimer`). */
interface Timer {
  readonly id: number;
  readonly actor: number;
  /** The tick its message is delivered in. */
  due: number;
  /** Ticks between firings; 0 for a one-shot timer. */
  readonly every: number;
  readonly payload: Uint8Array;
  cancelled: boolean;
}

/** A message the kernel sends an actor on its own behalf (a timeout, a failed ask). */
interface Notice {
  readonly actor: number;
  readonly kind: number;
  readonly correlation: number;
  readonly payload: Uint8Array;
}

const noPayload = new Uint8Array(0);

/**
 * Requests from outside (suspend, stop, a fault, a supervision verb...) are inputs on this
 * reserved topic, taken in at a tick boundary like any input, so the log records them and
 * replay applies them at the same point. A request's payload is
 *
 *   channel (u8) | target (u32, little endian) | the channel's own bytes
 *
 * Channels belong to the layers that define them (the runtime, the fault plan, the
 * supervisors); the kernel only routes them and owns one, `refusalChannel`.
 */
export const controlTopicName = 'lockstep/control';
const controlTopicId = 0;
/** The kernel's own channel: an input refused before it entered, logged as a drop (see refuseInput). */
export const refusalChannel = 8;
const controlHeaderBytes = 5;

/**
 * Carries out one control request; returns null, or why it was refused (logged as a drop).
 * `target` is an actor id when the channel was opened with `targetsActor` (the kernel has
 * checked that the actor exists), else a number of the channel's own meaning.
 */
export type ControlHandler = (target: number, bytes: Uint8Array) => string | null;
/** Runs at every tick boundary, before delivery: where supervisors act (see `setBoundaryHandler`). */
export type BoundaryHandler = (tick: number) => void;

/** Sender id of external inputs. Actor ids start at 1. */
export const externalSender = 0;

/** True for the facts `Kernel.shutdown` reports (they open with the runtime's own stop). */
export function isShutdownRecord(record: Pick<TickFacts, 'lifecycle'>): boolean {
  // Anywhere in the list: events of a stop requested just before close come first.
  return record.lifecycle.some((event) => event.actor === externalSender && event.to === 'stopping');
}

const priorityMax = 255;
/** Bucket keys order (priority desc, topic asc); topic ids stay below 2^32, so keys below 2^40. */
const topicIdSpan = 0x1_0000_0000;

/** Envelopes published in one tick for one (priority, topic) pair, in publish order. */
class Bucket {
  readonly envelopes: Envelope[] = [];
  lastSender = -1;
  /** Set when a sender with a lower id published after a higher one: needs a stable sort. */
  outOfOrder = false;

  constructor(readonly key: number) {}
}

class TopicState implements Topic {
  /** Subscribed actor ids, ascending: fan-out order is part of the deterministic contract. */
  readonly subscribers: number[] = [];
  /** Subscribers that read shared mailboxes: while any, envelopes are placed in a slab. */
  sharedReaders = 0;
  private readonly buckets: (Bucket | undefined)[] = [];

  constructor(
    readonly id: number,
    readonly name: string,
  ) {}

  bucket(priority: number): Bucket {
    let bucket = this.buckets[priority];
    if (bucket === undefined) {
      bucket = new Bucket((priorityMax - priority) * topicIdSpan + this.id);
      this.buckets[priority] = bucket;
    }
    return bucket;
  }
}

class Slot {
  mailbox: Envelope[] = [];
  /** The emptied array of the last activation, reused as the next mailbox. */
  spareMailbox: Envelope[] = [];
  /** Messages accepted for this actor in the current tick, delivered at the next. */
  reserved = 0;
  seq = 0;
  /** Actor id whose full mailbox refused this actor's last publish; 0 when not blocked. */
  blockedOn = 0;
  /** Tick in which this slot last entered the per-tick digest list. */
  touchedTick = -1;
  received = 0;
  receivedHi = digestSeedHi;
  receivedLo = digestSeedLo;
  sent = 0;
  sentHi = digestSeedHi;
  sentLo = digestSeedLo;
  receivedTotal = 0;
  sentTotal = 0;
  refusedTotal = 0;
  droppedTotal = 0;
  readonly subscriptions: number[] = [];
  inboxTopic = -1;
  /** Asks this actor made that wait for a reply, by seq; null while none ever did. */
  asks: Map<number, PendingAsk> | null = null;
  /** Asks waiting for this actor's reply. */
  asked: Set<PendingAsk> | null = null;
  timers: Set<Timer> | null = null;
  /**
   * The first ask seq and timer id of the current incarnation: an answer or a timer below
   * them, delivered after a restart, was meant for an earlier one and is dropped.
   */
  askFloor = 0;
  timerFloor = 0;

  constructor(
    readonly id: number,
    readonly actor: KernelActor,
    readonly capacity: number,
  ) {}
}

export interface KernelCounters {
  published: number;
  /** Envelopes delivered (each counted once, however many subscribers it had). */
  delivered: number;
  /** Envelopes put into mailboxes (an envelope counts once per subscriber). */
  mailboxDeliveries: number;
  injected: number;
  refused: number;
  dropped: number;
}

export interface ActorView {
  id: number;
  name: string;
  priority: number;
  lifecycle: string;
  mailboxDepth: number;
  mailboxCapacity: number;
  blockedOn: string | null;
  received: number;
  sent: number;
  refused: number;
  dropped: number;
}

export class Kernel {
  private tickNow = 0;
  private readonly topics: TopicState[] = [];
  private readonly topicByName = new Map<string, TopicState>();
  /** Slot per actor id; index 0 is the external sender and stays empty. */
  private readonly slots: (Slot | undefined)[] = [undefined];
  private readonly slotByName = new Map<string, Slot>();
  /** Slots in scheduling order: priority desc, id asc. Rebuilt at the tick after actors are added. */
  private runOrder: Slot[] = [];
  private runOrderStale = false;
  private readonly admitted: Slot[] = [];
  private current: Slot | null = null;
  private inTick = false;
  /** Set while publishing a payload the kernel already owns (see publishAs). */
  private payloadOwned = false;
  /** Where envelopes for shared-mailbox readers go (the WASM host lends it); null without any. */
  private slabs: MailboxSlabs | null = null;
  /** Work ticks wait for, settled in this order (the WASM host, then the inference actor). */
  private readonly executors: Executor[] = [];
  private readonly controlChannels: ({ targetsActor: boolean; handle: ControlHandler } | undefined)[] = [];
  private boundaryHandler: BoundaryHandler | null = null;
  private readonly lifecycleListeners: ((event: LifecycleEvent) => void)[] = [];
  private dropListener: ((drop: DropRecord) => void) | null = null;
  private controlApplied = 0;
  private externalSeq = 0;

  private touchedBuckets: Bucket[] = [];
  private touchedSlots: Slot[] = [];
  private pendingTopics: TopicDeclaration[] = [];
  private pendingInjected: InjectedInput[] = [];
  private pendingLifecycle: LifecycleEvent[] = [];
  private pendingDrops: DropRecord[] = [];
  private pendingReplies: ReplyFact[] = [];
  private pendingAskFailures: AskFailureFact[] = [];
  private readonly hashScratch = new Uint32Array(2);

  /** Asks from outside that wait for a reply, by the seq of their input. */
  private readonly externalAsks = new Map<number, PendingAsk>();
  /** Asks by the tick they time out at the end of (settled ones are skipped there). */
  private readonly askDeadlines = new Map<number, PendingAsk[]>();
  /** Timers by the tick they are delivered in. */
  private readonly timersDue = new Map<number, Timer[]>();
  private readonly timerById = new Map<number, Timer>();
  private timerSeq = 0;
  /** Timeouts and failures for asking actors, sent at the end of the tick. */
  private pendingNotices: Notice[] = [];

  readonly counters: KernelCounters = { published: 0, delivered: 0, mailboxDeliveries: 0, injected: 0, refused: 0, dropped: 0 };

  constructor(readonly config: KernelConfig) {
    // Topic 0 is reserved for control requests (see `control`).
    this.declareTopic(controlTopicName);
    if (!(Number.isInteger(config.tickTasksMax) && config.tickTasksMax >= 1)) {
      throw new ConfigError(`tickTasksMax must be an integer >= 1, got ${config.tickTasksMax}`);
    }
    if (!(Number.isInteger(config.mailboxCapacity) && config.mailboxCapacity >= 1)) {
      throw new ConfigError(`mailboxCapacity must be an integer >= 1, got ${config.mailboxCapacity}`);
    }
    if (!(Number.isInteger(config.payloadBytesMax) && config.payloadBytesMax >= 0)) {
      throw new ConfigError(`payloadBytesMax must be an integer >= 0, got ${config.payloadBytesMax}`);
    }
  }

  /** The tick most recently completed (0 before the first). Inside a tick, the tick running. */
  get tick(): number {
    return this.tickNow;
  }

  // ── topics ────────────────────────────────────────────────────────────────────────

  /** Interns `name`, returning its id; ids are handed out in order of first declaration. */
  declareTopic(name: string): number {
    const existing = this.topicByName.get(name);
    if (existing !== undefined) return existing.id;
    if (typeof name !== 'string' || name.length === 0) {
      throw new ConfigError(`topic names must be non-empty strings, got ${JSON.stringify(name)}`);
    }
    const topic = new TopicState(this.topics.length, name);
    this.topics.push(topic);
    this.topicByName.set(name, topic);
    this.pendingTopics.push({ id: topic.id, name });
    return topic.id;
  }

  /** The id of a declared topic; throws UnknownTopicError naming what to do otherwise. */
  topicId(name: string): number {
    const topic = this.topicByName.get(name);
    if (topic === undefined) {
      throw new UnknownTopicError(
        name,
        "no actor subscribes to it and the system does not declare it; add it to the system's `topics` or subscribe an actor to it",
      );
    }
    return topic.id;
  }

  topicName(id: number): string {
    const topic = this.topics[id];
    if (topic === undefined) throw new UnknownTopicError(`#${id}`, 'no topic has this id');
    return topic.name;
  }

  topicList(): readonly Topic[] {
    return this.topics;
  }

  inboxTopicName(actorId: number): string {
    return `actor/${actorId}`;
  }

  // ── actors ────────────────────────────────────────────────────────────────────────

  /**
   * Adds an actor; it takes mail at once and runs init at the next tick boundary.
   * Returns its id (ids are dense, in order of admission). Throws ConfigError on a
   * duplicate name or bad capacity.
   */
  admit(actor: KernelActor, subscriptions: readonly string[], mailboxCapacity?: number): number {
    if (this.slotByName.has(actor.name)) {
      throw new ConfigError(`an actor named '${actor.name}' already exists; actor names must be unique`);
    }
    const capacity = mailboxCapacity ?? this.config.mailboxCapacity;
    if (!(Number.isInteger(capacity) && capacity >= 1)) {
      throw new ConfigError(`actor '${actor.name}': mailboxCapacity must be an integer >= 1, got ${capacity}`);
    }
    if (!(Number.isInteger(actor.priority) && actor.priority >= 0 && actor.priority <= priorityMax)) {
      throw new ConfigError(`actor '${actor.name}': priority must be an integer in 0..255, got ${actor.priority}`);
    }
    const id = this.slots.length;
    const slot = new Slot(id, actor, capacity);
    this.slots.push(slot);
    this.slotByName.set(actor.name, slot);
    slot.inboxTopic = this.declareTopic(this.inboxTopicName(id));
    this.subscribe(id, slot.inboxTopic);
    for (const name of subscriptions) this.subscribe(id, this.declareTopic(name));
    this.admitted.push(slot);
    this.runOrderStale = true;
    return id;
  }

  private subscribe(actorId: number, topicId: number): void {
    const topic = this.topics[topicId]!;
    const slot = this.slots[actorId]!;
    const subscribers = topic.subscribers;
    // Ids are admitted in ascending order, so this is almost always an append.
    let at = subscribers.length;
    while (at > 0 && subscribers[at - 1]! > actorId) at--;
    if (subscribers[at - 1] === actorId) return;
    subscribers.splice(at, 0, actorId);
    slot.subscriptions.push(topicId);
    if (slot.actor.readsSharedMailbox === true) topic.sharedReaders++;
  }

  private rebuildRunOrder(): void {
    const order: Slot[] = [];
    for (const slot of this.slots) if (slot !== undefined) order.push(slot);
    order.sort((a, b) => b.actor.priority - a.actor.priority || a.id - b.id);
    this.runOrder = order;
    this.runOrderStale = false;
  }

  actorId(name: string): number {
    const slot = this.slotByName.get(name);
    if (slot === undefined) {
      throw new ConfigError(`no actor named '${name}'; actors: ${[...this.slotByName.keys()].slice(0, 20).join(', ')}`);
    }
    return slot.id;
  }

  /** The id of the inbox topic `actor/<id>` of an actor; throws ConfigError for an unknown actor. */
  inboxTopicOf(actorId: number): number {
    const slot = this.slots[actorId];
    if (slot === undefined) throw new ConfigError(`no actor has id ${actorId}`);
    return slot.inboxTopic;
  }

  actorName(id: number): string {
    return id === externalSender ? '(external)' : (this.slots[id]?.actor.name ?? `#${id}`);
  }

  actorCount(): number {
    return this.slots.length - 1;
  }

  /** Called by actors as their lifecycle moves; lands in the facts of the tick under way (or the next). */
  recordLifecycle(actorId: number, from: string, to: string, detail: string): void {
    const event: LifecycleEvent = { actor: actorId, from, to, detail };
    this.pendingLifecycle.push(event);
    for (const listener of this.lifecycleListeners) listener(event);
  }

  /**
   * Tells `listener` of every lifecycle transition as it is recorded, inside the tick (the
   * inference actor drops a restarted requester's state at that point). Event-bus
   * listeners, which must not change the run, hear of it after the tick instead.
   */
  onLifecycle(listener: (event: LifecycleEvent) => void): void {
    this.lifecycleListeners.push(listener);
  }

  /** Tells `listener` of every drop as it is recorded (for the event bus; it must not change the run). */
  onDrop(listener: (drop: DropRecord) => void): void {
    this.dropListener = listener;
  }

  private recordDrop(drop: DropRecord): void {
    this.pendingDrops.push(drop);
    this.dropListener?.(drop);
  }

  /** The tick whose facts what happens now lands in: the one running, or (between ticks) the next. */
  get recordTick(): number {
    return this.inTick ? this.tickNow : this.tickNow + 1;
  }

  /** The actor with id `id` (the runtime's registry is this table); undefined for none. */
  actorAt(id: number): KernelActor | undefined {
    return this.slots[id]?.actor;
  }

  /** Stops an actor: runs its stop hook, then drops its mail with a reason. */
  stopActor(actorId: number, reason: string): void {
    const slot = this.slots[actorId];
    if (slot === undefined || slot.actor.status === ActorStatus.down) return;
    // runAs takes the actor down if it stopped at once (a JS actor); a WASM agent stays
    // `stopping`, taking mail, until its agent_shutdown has run at the barrier.
    this.runAs(slot, () => slot.actor.stop(reason));
  }

  // ── messages ──────────────────────────────────────────────────────────────────────

  /**
   * Publishes from the actor now running. Returns `publishAccepted`, or a refusal when a
   * subscriber's mailbox is full (the sender is then not scheduled until it has room).
   * Throws ActorContractError outside an activation, UnknownTopicError, PayloadTooLargeError.
   */
  publish(topicId: number, payload: Uint8Array, priority: number): PublishResult {
    const slot = this.current;
    if (slot === null) {
      throw new ActorContractError(
        'publish was called outside an actor activation (from a timer or a promise?); ' +
          'receive, step and init are synchronous: bring asynchronous results in with runtime.inject',
      );
    }
    const topic = this.checkPublish(slot, topicId, payload.length, priority);
    const full = this.fullSubscriber(topic);
    if (full !== null) return this.refuse(slot, full, topic, 'refused: mailbox full, sender told');
    // A copy, so a sender that reuses its buffer cannot change a message in flight.
    const envelope = this.envelopeOf(topic, slot.id, ++slot.seq, priority, payload, !this.payloadOwned);
    this.accept(slot, topic, envelope);
    return publishAccepted;
  }

  /** The topic of a publish by `slot`, checked. Throws UnknownTopicError, PayloadTooLargeError, ConfigError. */
  private checkPublish(slot: Slot, topicId: number, length: number, priority: number): TopicState {
    const topic = this.topics[topicId];
    if (topic === undefined) throw new UnknownTopicError(`#${topicId}`, 'no topic has this id; use ctx.topic(name)');
    if (length > this.config.payloadBytesMax) {
      throw new PayloadTooLargeError(length, this.config.payloadBytesMax, `actor '${slot.actor.name}' publishing to '${topic.name}'`);
    }
    if (!(priority >= 0 && priority <= priorityMax && (priority | 0) === priority)) {
      throw new ConfigError(`actor '${slot.actor.name}': message priority must be an integer in 0..255, got ${priority}`);
    }
    return topic;
  }

  /** Refuses a publish of `slot` because `full`'s mailbox is full: the sender waits for room. */
  private refuse(slot: Slot, full: Slot, topic: TopicState, reason: string): PublishResult {
    slot.blockedOn = full.id;
    slot.refusedTotal++;
    this.counters.refused++;
    this.recordDrop({ actor: full.id, topic: topic.id, sender: slot.id, seq: 0, reason });
    return { ok: false, reason: 'mailbox_full', actor: full.actor.name, capacity: full.capacity };
  }

  /** Counts an accepted publish in the sender's digests and queues it for the next tick. */
  private accept(slot: Slot, topic: TopicState, envelope: Envelope): void {
    this.touch(slot);
    slot.sent++;
    slot.sentTotal++;
    slot.sentHi = foldLane(slot.sentHi, envelope.hashHi);
    slot.sentLo = foldLane(slot.sentLo, envelope.hashLo);
    this.counters.published++;
    this.enqueue(topic, envelope);
  }

  /**
   * A new envelope with `payload` (copied when `copy`), hashed. On a topic a shared-mailbox
   * reader subscribes to, it is placed in a slab: the one copy, where the workers read it.
   */
  private envelopeOf(topic: TopicState, sender: number, seq: number, priority: number, payload: Uint8Array, copy: boolean): Envelope {
    const hash = this.hashScratch;
    const slabs = this.slabs;
    if (topic.sharedReaders > 0 && slabs !== null) {
      const length = payload.length;
      const at = slabs.allocate(envelopeSlotBytes(length));
      const slab = slabs.lastSlab!;
      writeEnvelopeHeader(slab.view, at, topic.id, sender, seq, this.tickNow, priority, length);
      slab.bytes.set(payload, at + envelopeHeaderBytes);
      hashEnvelope(topic.id, sender, seq, priority, payload, hash);
      return new Envelope(topic, sender, seq, this.tickNow, priority, inSlab, hash[0]!, hash[1]!, slab, at, length);
    }
    const bytes = copy ? payload.slice() : payload;
    hashEnvelope(topic.id, sender, seq, priority, bytes, hash);
    return new Envelope(topic, sender, seq, this.tickNow, priority, bytes, hash[0]!, hash[1]!);
  }

  /**
   * Queues an external input for the next tick boundary; it is written to that tick's
   * record. With `timeoutTicks`, the input is an ask of the actor whose inbox `topicId` is:
   * its reply (or its failure) is in the facts of a later tick, under the input's seq.
   * Returns the input's seq. Throws MailboxFullError (nothing enqueued) when a subscriber is
   * full, ArgumentError for an ask that names no actor's inbox, plus the errors of `publish`.
   */
  inject(topicId: number, payload: Uint8Array, priority: number, timeoutTicks = 0): number {
    const topic = this.topics[topicId];
    if (topic === undefined) throw new UnknownTopicError(`#${topicId}`, 'no topic has this id');
    if (payload.length > this.config.payloadBytesMax) {
      throw new PayloadTooLargeError(payload.length, this.config.payloadBytesMax, `inject into '${topic.name}'`);
    }
    if (!(priority >= 0 && priority <= priorityMax && (priority | 0) === priority)) {
      throw new ArgumentError(`inject into '${topic.name}': priority must be an integer in 0..255, got ${describeValue(priority)}`);
    }
    if (this.current !== null) {
      throw new ActorContractError(`actor '${this.current.actor.name}' called inject; actors publish, only the outside injects`);
    }
    if (this.inTick) {
      throw new TickInProgressError('inject (inputs enter at tick boundaries)');
    }
    const target = timeoutTicks === 0 ? null : this.askTargetOf(topic, timeoutTicks);
    const full = this.fullSubscriber(topic);
    if (full !== null) throw new MailboxFullError(full.actor.name, full.capacity, `inject into '${topic.name}'`);
    const seq = ++this.externalSeq;
    if (target !== null) {
      const envelope = this.messageEnvelope(topic, externalSender, seq, priority, payload.slice(), MessageKind.ask, 0);
      this.enqueue(topic, envelope);
      // Taken in (and delivered) at the next tick: its target has `timeoutTicks` from there.
      this.registerAsk(externalSender, seq, target, this.tickNow + timeoutTicks);
      this.pendingInjected.push({ topic: topic.id, seq, priority, payload: envelope.payload, kind: MessageKind.ask, timeoutTicks });
      this.counters.injected++;
      return seq;
    }
    const envelope = this.envelopeOf(topic, externalSender, seq, priority, payload, true);
    this.enqueue(topic, envelope);
    // A slab's payload bytes are written once and only read after: the log takes them there.
    const logged = envelope.slab === null ? envelope.payload : envelope.slab.bytes.subarray(envelope.slabAt + envelopeHeaderBytes, envelope.slabAt + envelopeHeaderBytes + payload.length);
    this.pendingInjected.push({ topic: topic.id, seq, priority, payload: logged });
    if (topic.id !== controlTopicId) this.counters.injected++;
    return seq;
  }

  /** The actor whose inbox `topic` is, for an ask from outside; throws ArgumentError otherwise. */
  private askTargetOf(topic: TopicState, timeoutTicks: number): Slot {
    if (!(Number.isInteger(timeoutTicks) && timeoutTicks >= 1)) {
      throw new ArgumentError(`ask: timeoutTicks must be an integer >= 1, got ${describeValue(timeoutTicks)}`);
    }
    const target = topic.subscribers.length === 1 ? this.slots[topic.subscribers[0]!]! : undefined;
    if (target === undefined || target.inboxTopic !== topic.id) {
      throw new ArgumentError(`ask: '${topic.name}' is not an actor's inbox; an ask goes to one actor (ask by its name)`);
    }
    if (topic.sharedReaders > 0) {
      throw new ArgumentError(`ask: '${target.actor.name}' is a WASM agent, and ABI v2 has no reply call; ask a JS actor, or tell the agent`);
    }
    return target;
  }

  /** The first accepting subscriber with no room left, or null; reserves room in all when null. */
  private fullSubscriber(topic: TopicState): Slot | null {
    const subscribers = topic.subscribers;
    for (let i = 0; i < subscribers.length; i++) {
      const target = this.slots[subscribers[i]!]!;
      if (target.actor.status !== ActorStatus.down && target.mailbox.length + target.reserved >= target.capacity && target.actor.refusesMail === undefined) {
        return target;
      }
    }
    for (let i = 0; i < subscribers.length; i++) {
      const target = this.slots[subscribers[i]!]!;
      if (target.actor.status !== ActorStatus.down && target.actor.refusesMail === undefined) target.reserved++;
    }
    return null;
  }

  private enqueue(topic: TopicState, envelope: Envelope): void {
    const bucket = topic.bucket(envelope.priority);
    if (bucket.envelopes.length === 0) this.touchedBuckets.push(bucket);
    else if (envelope.sender < bucket.lastSender) bucket.outOfOrder = true;
    bucket.lastSender = envelope.sender;
    bucket.envelopes.push(envelope);
  }

  private touch(slot: Slot): void {
    // Work done between ticks (a stop hook) belongs to the record of the next tick.
    const recordTick = this.recordTick;
    if (slot.touchedTick === recordTick) return;
    slot.touchedTick = recordTick;
    slot.received = 0;
    slot.receivedHi = digestSeedHi;
    slot.receivedLo = digestSeedLo;
    slot.sent = 0;
    slot.sentHi = digestSeedHi;
    slot.sentLo = digestSeedLo;
    this.touchedSlots.push(slot);
  }

  // ── the tick ──────────────────────────────────────────────────────────────────────

  /**
   * Registers an executor that ticks wait for (the WASM host, the inference actor).
   * Executors settle one after another in the order they were added, so what they apply
   * lands in the facts in that order, whichever finished first.
   */
  addExecutor(executor: Executor): void {
    this.executors.push(executor);
  }

  private executorsHaveWork(): boolean {
    for (const executor of this.executors) if (executor.hasWork()) return true;
    return false;
  }

  private async settleExecutors(tick: number): Promise<void> {
    for (const executor of this.executors) if (executor.hasWork()) await executor.settle(tick);
  }

  /**
   * Runs one tick and returns what it did. A tick whose executors have work (WASM agents,
   * inference) waits for them without blocking the event loop; one without finishes
   * synchronously, so the promise is already settled.
   */
  async runTick(): Promise<TickFacts> {
    const open = this.beginTick();
    if (this.executorsHaveWork()) await this.settleExecutors(open.tick);
    this.endOfTick(open.tick);
    return this.closeTick(open);
  }

  /** Steps 1-3 of a tick: delivery, init of admitted actors, activations. */
  private beginTick(): OpenTick {
    const tick = ++this.tickNow;
    this.inTick = true;
    const envelopes: EnvelopeRecord[] | null = this.config.keepEnvelopes ? [] : null;

    // 0. Supervisors act on the exits of the last tick: restarts go in before delivery, so
    //    a restarted actor takes this tick's mail and runs init in step 2.
    this.boundaryHandler?.(tick);

    // 1. Deliver what tick t-1 published plus the injections, in canonical order.
    const buckets = this.touchedBuckets;
    this.touchedBuckets = [];
    buckets.sort((a, b) => a.key - b.key);
    let deliveredCount = 0;
    let deliveredHi = digestSeedHi;
    let deliveredLo = digestSeedLo;
    for (const bucket of buckets) {
      const list = bucket.envelopes;
      // Array.prototype.sort is stable, so each sender's messages stay in seq order.
      if (bucket.outOfOrder) list.sort((a, b) => a.sender - b.sender);
      for (let i = 0; i < list.length; i++) {
        const envelope = list[i]!;
        deliveredCount++;
        deliveredHi = foldLane(deliveredHi, envelope.hashHi);
        deliveredLo = foldLane(deliveredLo, envelope.hashLo);
        // An Envelope is an EnvelopeRecord already: no copy for the full level.
        if (envelopes !== null) envelopes.push(envelope);
        this.fanOut(envelope);
      }
      list.length = 0;
      bucket.outOfOrder = false;
      bucket.lastSender = -1;
    }
    // Control requests are applied, not delivered: the counters count messages.
    this.counters.delivered += deliveredCount - this.controlApplied;
    this.controlApplied = 0;

    // 2. Actors admitted since the last tick run init (their messages go out next tick).
    if (this.admitted.length > 0) {
      const admitted = this.admitted.splice(0);
      // An actor stopped before its first tick never starts.
      for (const slot of admitted) if (slot.actor.status !== ActorStatus.down) this.runAs(slot, () => slot.actor.start());
    }

    // 3. Run the runnable actors.
    if (this.runOrderStale) this.rebuildRunOrder();
    let activations = 0;
    const tasksMax = this.config.tickTasksMax;
    for (const slot of this.runOrder) {
      if (activations >= tasksMax) break;
      const actor = slot.actor;
      if (actor.status !== ActorStatus.running) continue;
      if (slot.mailbox.length === 0 && !actor.hasStep) continue;
      if (slot.blockedOn !== 0 && !this.unblocked(slot)) continue;
      activations++;
      this.activate(slot);
    }

    return { tick, deliveredCount, deliveredHi, deliveredLo, envelopes };
  }

  /** Gathers what the tick under way accumulated into its facts and starts the next. */
  private closeTick(open: OpenTick): TickFacts {
    const { tick, deliveredCount, deliveredHi, deliveredLo, envelopes } = open;
    const touched = this.touchedSlots;
    this.touchedSlots = [];
    const actorDigests = new Uint32Array(touched.length * ACTOR_DIGEST_STRIDE);
    for (let i = 0, at = 0; i < touched.length; i++, at += ACTOR_DIGEST_STRIDE) {
      const slot = touched[i]!;
      actorDigests[at] = slot.id;
      actorDigests[at + 1] = slot.received;
      actorDigests[at + 2] = slot.sent;
      actorDigests[at + 3] = slot.receivedHi;
      actorDigests[at + 4] = slot.receivedLo;
      actorDigests[at + 5] = slot.sentHi;
      actorDigests[at + 6] = slot.sentLo;
    }
    const facts: TickFacts = {
      tick,
      newTopics: this.pendingTopics,
      injected: this.pendingInjected,
      lifecycle: this.pendingLifecycle,
      drops: this.pendingDrops,
      deliveredCount,
      deliveredDigest: { hi: deliveredHi, lo: deliveredLo },
      actorDigests,
      envelopes,
      replies: this.pendingReplies,
      askFailures: this.pendingAskFailures,
    };
    this.pendingTopics = [];
    this.pendingInjected = [];
    this.pendingLifecycle = [];
    this.pendingDrops = [];
    this.pendingReplies = [];
    this.pendingAskFailures = [];
    this.inTick = false;
    return facts;
  }

  /**
   * Ends the run: stops every actor in reverse order of admission (their stop hooks run;
   * WASM agents run agent_shutdown on their workers, awaited here), then drops whatever is
   * still queued or undelivered, each with a reason. Returns the final facts, numbered as
   * the tick after the last one; when envelopes are kept, they are the ones dropped
   * undelivered.
   */
  async shutdown(order?: readonly number[]): Promise<TickFacts> {
    const tick = this.beginShutdown(order);
    if (this.executorsHaveWork()) await this.settleExecutors(tick);
    return this.endShutdown(tick);
  }

  /**
   * `order` lists actor ids to stop first, in that order (the runtime passes its
   * supervision trees, each stopped top down with children in reverse start order); every
   * other actor then stops in reverse order of admission.
   */
  private beginShutdown(order: readonly number[] = []): number {
    const tick = ++this.tickNow;
    this.inTick = true;
    // The runtime's own transition (actor 0) marks this record as the shutdown record, so a
    // reader knows it even when the end marker after it was torn off.
    this.recordLifecycle(externalSender, 'running', 'stopping', 'shutdown');
    for (const id of order) {
      const slot = this.slots[id];
      if (slot !== undefined && slot.actor.status !== ActorStatus.down) this.stopActor(id, 'shutdown');
    }
    for (let id = this.slots.length - 1; id >= 1; id--) {
      const slot = this.slots[id]!;
      if (slot.actor.status !== ActorStatus.down) this.stopActor(id, 'shutdown');
    }
    return tick;
  }

  private endShutdown(tick: number): TickFacts {
    // At the full level the record lists what was dropped undelivered, so replay can name
    // a message that diverged in the last tick.
    const undelivered: EnvelopeRecord[] | null = this.config.keepEnvelopes ? [] : null;
    const buckets = this.touchedBuckets;
    this.touchedBuckets = [];
    buckets.sort((a, b) => a.key - b.key);
    for (const bucket of buckets) {
      if (bucket.outOfOrder) bucket.envelopes.sort((a, b) => a.sender - b.sender);
      for (const envelope of bucket.envelopes) {
        this.drop(0, envelope, 'undelivered at shutdown');
        undelivered?.push(envelope);
      }
      bucket.envelopes.length = 0;
      bucket.outOfOrder = false;
      bucket.lastSender = -1;
    }
    return this.closeTick({ tick, deliveredCount: 0, deliveredHi: digestSeedHi, deliveredLo: digestSeedLo, envelopes: undelivered });
  }

  private fanOut(envelope: Envelope): void {
    if (envelope.topicInfo.id === controlTopicId) {
      this.applyControl(envelope);
      return;
    }
    const subscribers = (envelope.topicInfo as TopicState).subscribers;
    if (subscribers.length === 0) {
      this.drop(0, envelope, 'no subscriber');
      return;
    }
    for (let s = 0; s < subscribers.length; s++) {
      const target = this.slots[subscribers[s]!]!;
      if (target.actor.status === ActorStatus.down || target.actor.refusesMail !== undefined) {
        this.drop(target.id, envelope, target.actor.refusesMail ?? `recipient ${target.actor.lifecycleState}`);
        target.droppedTotal++;
        continue;
      }
      if (envelope.kind >= MessageKind.reply && this.meantForEarlierIncarnation(target, envelope)) {
        if (target.reserved > 0) target.reserved--;
        this.drop(target.id, envelope, 'meant for an earlier incarnation of the recipient (it restarted)');
        target.droppedTotal++;
        continue;
      }
      if (target.reserved > 0) target.reserved--;
      else if (target.mailbox.length >= target.capacity) {
        // Published while the recipient was down (no room was reserved), and it came back
        // with a full mailbox: refused here rather than overfilling it.
        this.drop(target.id, envelope, 'mailbox full: published while the recipient was down');
        target.droppedTotal++;
        continue;
      }
      target.mailbox.push(envelope);
      this.counters.mailboxDeliveries++;
    }
  }

  private drop(actorId: number, envelope: Envelope, reason: string): void {
    this.counters.dropped++;
    this.recordDrop({ actor: actorId, topic: envelope.topic, sender: envelope.sender, seq: envelope.seq, reason });
    if (envelope.kind === MessageKind.ask) this.askNotDelivered(envelope, reason);
  }

  /** A blocked actor becomes runnable once the mailbox that refused it has room (or went down). */
  private unblocked(slot: Slot): boolean {
    const target = this.slots[slot.blockedOn]!;
    if (target.actor.status === ActorStatus.down || target.mailbox.length + target.reserved < target.capacity) {
      slot.blockedOn = 0;
      return true;
    }
    return false;
  }

  private activate(slot: Slot): void {
    const batch = slot.mailbox;
    // Swap mailboxes first: the batch is owned by this activation from here on.
    slot.mailbox = slot.spareMailbox;
    this.touch(slot);
    this.current = slot;
    let consumed: number;
    try {
      consumed = slot.actor.activate(batch);
    } finally {
      this.current = null;
    }
    let hi = slot.receivedHi;
    let lo = slot.receivedLo;
    for (let i = 0; i < consumed; i++) {
      const envelope = batch[i]!;
      hi = foldLane(hi, envelope.hashHi);
      lo = foldLane(lo, envelope.hashLo);
    }
    slot.receivedHi = hi;
    slot.receivedLo = lo;
    slot.received += consumed;
    slot.receivedTotal += consumed;
    if (consumed < batch.length) {
      for (let i = consumed; i < batch.length; i++) {
        this.drop(slot.id, batch[i]!, `recipient crashed before processing it`);
        slot.droppedTotal++;
      }
    }
    batch.length = 0;
    slot.spareMailbox = batch;
    if (slot.actor.status === ActorStatus.down) this.takeDown(slot);
  }

  private runAs(slot: Slot, body: () => void): void {
    this.touch(slot);
    const previous = this.current;
    this.current = slot;
    try {
      body();
    } finally {
      this.current = previous;
    }
    if (slot.actor.status === ActorStatus.down) this.takeDown(slot);
  }

  /** An actor that went down loses its queued mail (each with a drop record) and its reservations. */
  private takeDown(slot: Slot): void {
    const reason = `recipient ${slot.actor.lifecycleState}`;
    for (const envelope of slot.mailbox) {
      this.drop(slot.id, envelope, reason);
      slot.droppedTotal++;
    }
    slot.mailbox = [];
    slot.reserved = 0;
    slot.blockedOn = 0;
    slot.askFloor = slot.seq + 1;
    slot.timerFloor = this.timerSeq + 1;
    if (slot.asked !== null || slot.asks !== null || slot.timers !== null) this.endCorrespondence(slot);
  }

  /** True for a reply, a notice or a timer message whose ask or timer the recipient's current incarnation did not make. */
  private meantForEarlierIncarnation(target: Slot, envelope: Envelope): boolean {
    return envelope.kind === MessageKind.timer ? envelope.correlation < target.timerFloor : envelope.correlation < target.askFloor;
  }

  // ── asks, replies and timers ──────────────────────────────────────────────────────
  //
  // An ask is a message of kind `ask` to one actor's inbox, and a pending entry keyed by
  // the asker and the ask's seq (its id). `reply` answers it: into the asker's inbox (kind
  // `reply`, correlation = the ask's seq) or, for an ask from outside, out of the system as
  // a fact. At the end of the tick an ask's deadline falls in, it times out; when its
  // target goes down (or the ask is dropped on its way) it fails at once. A timer is
  // delivered to its actor, as a message from itself, in the tick it is due. Both belong to
  // the actor's incarnation: going down ends its asks and timers. Everything here is
  // decided by ticks and the canonical order, so replay repeats it.

  /**
   * Asks `targetId` from the actor now running: a message of kind `ask` to its inbox, whose
   * reply (kind `reply`) or failure (`askTimeout`, `askFailed`) comes back to the asker's
   * inbox with `correlation` set to the returned id. The target has until the end of tick
   * `now + timeoutTicks` to reply. Refused as a publish is when the target's mailbox is full.
   * Throws ActorContractError outside an activation, ArgumentError for a bad timeoutTicks or
   * a target that cannot reply (a WASM agent), plus the errors of `publish`.
   */
  ask(targetId: number, payload: Uint8Array, priority: number, timeoutTicks: number): AskResult {
    const slot = this.current;
    if (slot === null) throw outsideActivation('ask');
    const target = this.slots[targetId];
    if (target === undefined) throw new ConfigError(`actor '${slot.actor.name}' asked actor #${targetId}, which does not exist`);
    const topic = this.topics[target.inboxTopic]!;
    this.askTargetOf(topic, timeoutTicks);
    this.checkPublish(slot, topic.id, payload.length, priority);
    const result = this.publishMessage(slot, topic, payload.slice(), priority, MessageKind.ask, 0);
    if (!result.ok) return result;
    // Delivered next tick: the target has `timeoutTicks` from there.
    this.registerAsk(slot.id, slot.seq, target, this.tickNow + timeoutTicks);
    return { ok: true, id: slot.seq };
  }

  /**
   * Replies from the actor now running to `message`, an ask it received. Returns the publish
   * result of the reply, or `ask_settled` (logged as a drop) when the ask no longer waits.
   * Throws ActorContractError outside an activation or when `message` is not an ask.
   */
  reply(message: Envelope, payload: Uint8Array, priority: number): ReplyResult {
    const slot = this.current;
    if (slot === null) throw outsideActivation('reply');
    if (message.kind !== MessageKind.ask) {
      throw new ActorContractError(
        `actor '${slot.actor.name}' replied to ${message.topicName} #${message.seq} from ${this.actorName(message.sender)}, which is not an ask; ` +
          'reply answers messages sent with ask (message.kind === MessageKind.ask)',
      );
    }
    const pending = this.pendingAsk(message.sender, message.seq);
    if (pending === undefined || pending.target !== slot.id) {
      this.counters.dropped++;
      this.recordDrop({
        actor: message.sender,
        topic: slot.inboxTopic,
        sender: slot.id,
        seq: 0,
        reason: `reply to ask #${message.seq} of ${this.actorName(message.sender)} came too late: the ask timed out, failed or was answered`,
      });
      return askSettled;
    }
    if (message.sender === externalSender) {
      // Out of the system: in the replier's sent digest (so replay checks it), and a fact.
      this.checkPublish(slot, slot.inboxTopic, payload.length, priority);
      const bytes = payload.slice();
      const envelope = this.messageEnvelope(this.topics[slot.inboxTopic]!, slot.id, ++slot.seq, priority, bytes, MessageKind.reply, pending.seq);
      this.touch(slot);
      slot.sent++;
      slot.sentTotal++;
      slot.sentHi = foldLane(slot.sentHi, envelope.hashHi);
      slot.sentLo = foldLane(slot.sentLo, envelope.hashLo);
      this.settleAsk(pending);
      this.pendingReplies.push({ correlation: pending.seq, actor: slot.id, payload: bytes });
      return publishAccepted;
    }
    const asker = this.slots[pending.asker]!;
    this.checkPublish(slot, asker.inboxTopic, payload.length, priority);
    const result = this.publishMessage(slot, this.topics[asker.inboxTopic]!, payload.slice(), priority, MessageKind.reply, pending.seq);
    if (result.ok) this.settleAsk(pending);
    return result;
  }

  /**
   * Starts a timer of the actor now running: `payload` is delivered to it, as a message of
   * kind `timer` from itself with `correlation` = the returned id, `ticks` ticks from now
   * (1: the next tick), then every `every` ticks when `every` > 0. Throws
   * ActorContractError outside an activation, ArgumentError for bad tick counts,
   * PayloadTooLargeError.
   */
  startTimer(ticks: number, payload: Uint8Array, every: number): number {
    const slot = this.current;
    if (slot === null) throw outsideActivation('a timer');
    if (!(Number.isInteger(ticks) && ticks >= 1)) {
      throw new ArgumentError(`actor '${slot.actor.name}': a timer's ticks must be an integer >= 1, got ${describeValue(ticks)}`);
    }
    if (!(Number.isInteger(every) && every >= 0)) {
      throw new ArgumentError(`actor '${slot.actor.name}': every must be an integer >= 1, got ${describeValue(every)}`);
    }
    if (payload.length > this.config.payloadBytesMax) {
      throw new PayloadTooLargeError(payload.length, this.config.payloadBytesMax, `actor '${slot.actor.name}' starting a timer`);
    }
    const timer: Timer = { id: ++this.timerSeq, actor: slot.id, due: this.tickNow + ticks, every, payload: payload.slice(), cancelled: false };
    this.scheduleTimer(timer);
    (slot.timers ??= new Set()).add(timer);
    this.timerById.set(timer.id, timer);
    return timer.id;
  }

  /** Cancels a timer of the actor now running; returns false when it has no such timer (fired, cancelled, another's). */
  cancelTimer(id: number): boolean {
    const slot = this.current;
    if (slot === null) throw outsideActivation('cancelTimer');
    const timer = this.timerById.get(id);
    if (timer === undefined || timer.actor !== slot.id) return false;
    this.endTimer(slot, timer);
    return true;
  }

  /**
   * True when the next tick has something to deliver or start (a host runs it at once).
   * Timers due next tick are in the buckets already: the end of this tick sent them.
   */
  hasPendingWork(): boolean {
    return this.touchedBuckets.length > 0 || this.admitted.length > 0;
  }

  /** Asks from outside still waiting for a reply. */
  get externalAsksWaiting(): number {
    return this.externalAsks.size;
  }

  private scheduleTimer(timer: Timer): void {
    const list = this.timersDue.get(timer.due);
    if (list === undefined) this.timersDue.set(timer.due, [timer]);
    else list.push(timer);
  }

  private endTimer(slot: Slot, timer: Timer): void {
    timer.cancelled = true;
    this.timerById.delete(timer.id);
    slot.timers?.delete(timer);
  }

  private registerAsk(asker: number, seq: number, target: Slot, deadline: number): void {
    const pending: PendingAsk = { asker, seq, target: target.id, deadline, settled: false };
    if (asker === externalSender) this.externalAsks.set(seq, pending);
    else (this.slots[asker]!.asks ??= new Map()).set(seq, pending);
    (target.asked ??= new Set()).add(pending);
    const list = this.askDeadlines.get(deadline);
    if (list === undefined) this.askDeadlines.set(deadline, [pending]);
    else list.push(pending);
  }

  private pendingAsk(asker: number, seq: number): PendingAsk | undefined {
    return asker === externalSender ? this.externalAsks.get(seq) : this.slots[asker]?.asks?.get(seq);
  }

  private settleAsk(pending: PendingAsk): void {
    pending.settled = true;
    if (pending.asker === externalSender) this.externalAsks.delete(pending.seq);
    else this.slots[pending.asker]!.asks?.delete(pending.seq);
    this.slots[pending.target]!.asked?.delete(pending);
  }

  /** An ask that will get no reply: the asker hears of it (at the end of the tick, or as a fact). */
  private failAsk(pending: PendingAsk, timedOut: boolean, reason: string, received = true): void {
    this.settleAsk(pending);
    if (pending.asker === externalSender) {
      this.pendingAskFailures.push({ correlation: pending.seq, actor: pending.target, timedOut, reason, received });
      return;
    }
    this.pendingNotices.push({
      actor: pending.asker,
      kind: timedOut ? MessageKind.askTimeout : MessageKind.askFailed,
      correlation: pending.seq,
      payload: timedOut ? noPayload : utf8Encode(reason),
    });
  }

  private askNotDelivered(envelope: Envelope, reason: string): void {
    const pending = this.pendingAsk(envelope.sender, envelope.seq);
    if (pending !== undefined) this.failAsk(pending, false, `${this.actorName(pending.target)} did not get the ask: ${reason}`, false);
  }

  /** An actor went down: the asks waiting for it fail, its own asks and its timers end. */
  private endCorrespondence(slot: Slot): void {
    if (slot.asked !== null) {
      const crash = slot.actor.lastCrash?.message;
      const reason = `${slot.actor.name} went down (${slot.actor.lifecycleState}) before replying${crash === undefined ? '' : `: ${crash}`}`;
      for (const pending of [...slot.asked]) this.failAsk(pending, false, reason);
      slot.asked = null;
    }
    if (slot.asks !== null) {
      // Its replies would reach the next incarnation, which did not ask: they are refused.
      for (const pending of [...slot.asks.values()]) this.settleAsk(pending);
      slot.asks = null;
    }
    if (slot.timers !== null) {
      for (const timer of [...slot.timers]) this.endTimer(slot, timer);
      slot.timers = null;
    }
  }

  /**
   * The end of tick `tick`, after the barrier: asks whose deadline it is time out, askers
   * get their notices, and timers due next tick are sent, each in the order it arose.
   */
  private endOfTick(tick: number): void {
    const expiring = this.askDeadlines.get(tick);
    if (expiring !== undefined) {
      this.askDeadlines.delete(tick);
      for (const pending of expiring) {
        if (!pending.settled) this.failAsk(pending, true, `no reply from ${this.actorName(pending.target)} by the end of tick ${tick}`);
      }
    }
    if (this.pendingNotices.length > 0) {
      const notices = this.pendingNotices;
      this.pendingNotices = [];
      for (const notice of notices) this.sendToSelf(this.slots[notice.actor]!, notice.kind, notice.correlation, notice.payload);
    }
    const due = this.timersDue.get(tick + 1);
    if (due !== undefined) {
      this.timersDue.delete(tick + 1);
      for (const timer of due) {
        if (timer.cancelled) continue;
        const slot = this.slots[timer.actor]!;
        this.sendToSelf(slot, MessageKind.timer, timer.id, timer.payload);
        if (timer.every > 0) {
          timer.due += timer.every;
          this.scheduleTimer(timer);
        } else {
          this.endTimer(slot, timer);
        }
      }
    }
  }

  /** A message of `kind` from an actor to itself (a timer, an ask's notice), for the next tick. */
  private sendToSelf(slot: Slot, kind: number, correlation: number, payload: Uint8Array): void {
    if (slot.actor.status === ActorStatus.down) return;
    const topic = this.topics[slot.inboxTopic]!;
    if (this.fullSubscriber(topic) !== null) {
      this.counters.dropped++;
      slot.droppedTotal++;
      const what = kind === MessageKind.timer ? `timer #${correlation}` : `the notice of ask #${correlation}`;
      this.recordDrop({ actor: slot.id, topic: topic.id, sender: slot.id, seq: 0, reason: `${what} not delivered: mailbox full` });
      return;
    }
    this.accept(slot, topic, this.messageEnvelope(topic, slot.id, ++slot.seq, slot.actor.priority, payload, kind, correlation));
  }

  /** Publishes a message of `kind` (bytes the kernel owns) from `slot`: the rules of `publish`. */
  private publishMessage(slot: Slot, topic: TopicState, bytes: Uint8Array, priority: number, kind: number, correlation: number): PublishResult {
    const full = this.fullSubscriber(topic);
    if (full !== null) return this.refuse(slot, full, topic, 'refused: mailbox full, sender told');
    this.accept(slot, topic, this.messageEnvelope(topic, slot.id, ++slot.seq, priority, bytes, kind, correlation));
    return publishAccepted;
  }

  /** An envelope of `kind` (never in a slab: asks, replies and timers reach JS actors only), hashed with its kind. */
  private messageEnvelope(topic: TopicState, sender: number, seq: number, priority: number, bytes: Uint8Array, kind: number, correlation: number): Envelope {
    const hash = this.hashScratch;
    hashEnvelope(topic.id, sender, seq, priority, bytes, hash);
    foldMessageKind(kind, correlation, hash);
    return new Envelope(topic, sender, seq, this.tickNow, priority, bytes, hash[0]!, hash[1]!, null, 0, bytes.length, kind, correlation);
  }

  // ── control: requests from outside, taken in as inputs ───────────────────────────

  /**
   * Opens control channel `channel` (1..255; the layer that opens it owns the number and
   * the meaning of the bytes). With `targetsActor`, a request naming no actor is dropped
   * before `handle` runs. Throws an assertion Error for a channel already open.
   */
  openControlChannel(channel: number, options: { targetsActor: boolean }, handle: ControlHandler): void {
    if (!(Number.isInteger(channel) && channel >= 1 && channel <= 255) || this.controlChannels[channel] !== undefined || channel === refusalChannel) {
      throw new Error(`assertion failed: control channel ${channel} is taken or out of range`);
    }
    this.controlChannels[channel] = { targetsActor: options.targetsActor, handle };
  }

  /**
   * Queues a control request for the next tick boundary. It travels as an input on the
   * reserved topic, so the log records it and replay applies it at the same point.
   */
  control(channel: number, target: number, bytes?: Uint8Array): void {
    const payload = new Uint8Array(controlHeaderBytes + (bytes?.length ?? 0));
    payload[0] = channel;
    new DataView(payload.buffer).setUint32(1, target, true);
    if (bytes !== undefined) payload.set(bytes, controlHeaderBytes);
    this.inject(controlTopicId, payload, priorityMax);
  }

  private applyControl(envelope: Envelope): void {
    this.controlApplied++;
    const payload = envelope.payload;
    const channelId = payload[0] ?? 0;
    const channel = this.controlChannels[channelId];
    if (payload.length < controlHeaderBytes || (channel === undefined && channelId !== refusalChannel)) {
      this.drop(0, envelope, 'malformed control request');
      return;
    }
    const target = new DataView(payload.buffer, payload.byteOffset, controlHeaderBytes).getUint32(1, true);
    if (channel === undefined) {
      this.drop(0, envelope, new TextDecoder().decode(payload.subarray(controlHeaderBytes)));
      return;
    }
    if (channel.targetsActor && (target === externalSender || this.slots[target] === undefined)) {
      this.drop(0, envelope, `control request for unknown actor #${target}`);
      return;
    }
    const refused = channel.handle(target, payload.subarray(controlHeaderBytes));
    if (refused !== null) this.drop(0, envelope, `control request refused: ${refused}`);
  }

  /**
   * Logs `reason` as a refused input at the next tick, through the input stream: an input
   * refused before it entered (an embedded input meeting a full mailbox, a fault naming no
   * actor) is then in the log where replay, which takes its inputs from the log, repeats it.
   */
  refuseInput(reason: string): void {
    this.control(refusalChannel, 0, new TextEncoder().encode(reason));
  }

  /**
   * Registers what runs at every tick boundary, before delivery (the supervisors). What it
   * does lands in the record of the tick that begins.
   */
  setBoundaryHandler(handler: BoundaryHandler): void {
    this.boundaryHandler = handler;
  }

  /**
   * Takes an actor that went down back in (a restart): it takes mail at once and runs init
   * in step 2 of the tick under way (or the next). The actor has moved its own status to
   * starting already.
   */
  readmit(actorId: number): void {
    const slot = this.slots[actorId];
    if (slot === undefined) throw new Error(`assertion failed: no actor ${actorId}`);
    slot.blockedOn = 0;
    slot.reserved = 0;
    this.admitted.push(slot);
  }

  /**
   * Frees an actor's name for a new actor (a deleted dynamic child whose id is reused).
   * The old actor keeps its id, down, so the log still names it.
   */
  retireName(name: string): void {
    const slot = this.slotByName.get(name);
    if (slot !== undefined && slot.actor.status === ActorStatus.down) this.slotByName.delete(name);
  }

  // ── for executors ─────────────────────────────────────────────────────────────────

  /**
   * Lends the kernel the slabs that envelopes for shared-mailbox readers are placed in (the
   * WASM host does, before any WASM agent subscribes).
   */
  useSharedMailboxes(slabs: MailboxSlabs): void {
    this.slabs = slabs;
  }

  /**
   * Publishes as `actorId` (results applied at the barrier); same rules as `publish`.
   * `payload` must be a copy the kernel may keep (it is not copied again).
   */
  publishAs(actorId: number, topicId: number, payload: Uint8Array, priority: number): PublishResult {
    const slot = this.slots[actorId];
    if (slot === undefined) throw new Error(`assertion failed: no actor ${actorId}`);
    const previous = this.current;
    this.current = slot;
    this.payloadOwned = true;
    try {
      return this.publish(topicId, payload, priority);
    } finally {
      this.current = previous;
      this.payloadOwned = false;
    }
  }

  /**
   * Publishes as `actorId` an envelope already placed in a slab (what a WASM agent published,
   * decoded at the barrier): its bytes at `slab[at]` hold everything but the sequence
   * number, which the worker guessed as `guessedSeq` and hashed with (`hashHi`, `hashLo`).
   * Same rules as `publish`; a refused publish says the agent reads it with backpressure().
   * When the guess is right (no earlier publish of the agent was refused this tick) the hash
   * is used as it is: a payload is hashed once. Throws as `publish`.
   */
  publishPlaced(
    actorId: number,
    topicId: number,
    priority: number,
    slab: Slab,
    at: number,
    length: number,
    guessedSeq: number,
    hashHi: number,
    hashLo: number,
  ): PublishResult {
    const slot = this.slots[actorId];
    if (slot === undefined) throw new Error(`assertion failed: no actor ${actorId}`);
    const topic = this.checkPublish(slot, topicId, length, priority);
    const full = this.fullSubscriber(topic);
    if (full !== null) return this.refuse(slot, full, topic, 'refused: mailbox full, the agent reads the count with backpressure() at its next activation');
    const seq = ++slot.seq;
    let hi = hashHi;
    let lo = hashLo;
    if (seq !== guessedSeq) {
      writeEnvelopeSeq(slab.view, at, seq);
      const hash = this.hashScratch;
      hashEnvelope(topic.id, slot.id, seq, priority, slab.bytes.subarray(at + envelopeHeaderBytes, at + envelopeHeaderBytes + length), hash);
      hi = hash[0]!;
      lo = hash[1]!;
    }
    this.accept(slot, topic, new Envelope(topic, slot.id, seq, this.tickNow, priority, inSlab, hi, lo, slab, at, length));
    return publishAccepted;
  }

  /** The sequence number of `actorId`'s last accepted publish (its next is this + 1). */
  seqOf(actorId: number): number {
    return this.slots[actorId]?.seq ?? 0;
  }

  /** Records messages handed to an actor that it never processed (it crashed first). */
  dropUnprocessed(actorId: number, envelopes: readonly Envelope[], reason: string): void {
    const slot = this.slots[actorId]!;
    for (const envelope of envelopes) {
      this.drop(actorId, envelope, reason);
      slot.droppedTotal++;
    }
  }

  /** Records a publish the runtime refused before it became a message (a capability check). */
  recordRefusal(actorId: number, topicId: number, reason: string): void {
    this.counters.refused++;
    const slot = this.slots[actorId];
    if (slot !== undefined) slot.refusedTotal++;
    this.recordDrop({ actor: 0, topic: topicId, sender: actorId, seq: 0, reason });
  }

  /** Called after an actor's status went down outside an activation: drops its queued mail. */
  actorWentDown(actorId: number): void {
    const slot = this.slots[actorId];
    if (slot !== undefined && slot.actor.status === ActorStatus.down) this.takeDown(slot);
  }

  /** Actor ids in scheduling order (priority desc, id asc). */
  schedulingOrder(actorIds: Iterable<number>): number[] {
    return [...actorIds].sort((a, b) => this.slots[b]!.actor.priority - this.slots[a]!.actor.priority || a - b);
  }

  // ── views ─────────────────────────────────────────────────────────────────────────

  actorViews(): ActorView[] {
    const views: ActorView[] = [];
    for (const slot of this.slots) {
      if (slot === undefined) continue;
      views.push({
        id: slot.id,
        name: slot.actor.name,
        priority: slot.actor.priority,
        lifecycle: slot.actor.lifecycleState,
        mailboxDepth: slot.mailbox.length,
        mailboxCapacity: slot.capacity,
        blockedOn: slot.blockedOn === 0 ? null : this.actorName(slot.blockedOn),
        received: slot.receivedTotal,
        sent: slot.sentTotal,
        refused: slot.refusedTotal,
        dropped: slot.droppedTotal,
      });
    }
    return views;
  }
}

/** The error for a call that needs an activation (an actor running) made outside one. */
function outsideActivation(what: string): ActorContractError {
  return new ActorContractError(`${what} is only possible from inside an actor's init, receive or step`);
}
