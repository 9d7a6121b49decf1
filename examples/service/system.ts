/**
 * The service's actor system: a key-value store and a compute pool under one supervision
 * tree, answering the asks the HTTP server (server.ts) makes through its host.
 *
 *   root (one_for_one)
 *   ├─ kv (rest_for_one)
 *   │  ├─ journal         the store's write-ahead copy: survives a store crash
 *   │  └─ store           answers kv/requests; on (re)start it recovers from the journal
 *   └─ pool (one_for_one)
 *      ├─ w0 … w3         answer compute/<shard>: how many primes are <= n
 *
 * Why rest_for_one for kv: the store depends on the journal, not the other way round. A
 * store crash restarts only the store, which then reloads every key from the journal, so
 * no acknowledged write is lost. A journal crash restarts the journal and then the store,
 * so both start empty together and never disagree.
 *
 * Everything an actor decides comes from its messages and ctx: this module is also what
 * `replay` re-executes against the service's log.
 */
import { MessageKind, defineActor, defineSystem, supervisor, type ActorContext, type Message } from 'lockstep';

// ── limits (checked by the server before anything is injected; the actors check again) ──

/** Most keys the store holds; a put of a new key beyond it is answered 507. */
export const keysMax = 256;
/** Longest key, in UTF-8 bytes. */
export const keyBytesMax = 64;
/** Longest value, in UTF-8 bytes. */
export const valueBytesMax = 128;
/** Largest n for a primes request: bounds one request's work to a few milliseconds. */
export const primesLimitMax = 200_000;
/** Compute workers, one topic each (`compute/<shard>`). */
export const computeShards = 4;
/**
 * Journal entries per snapshot message. A JSON string can be up to 6× its UTF-8 length
 * (`\u00XX` escapes), so 32 × 6 × (64 + 128) bytes ≈ 37 KiB stays under the 64 KiB
 * payload bound whatever the keys and values hold.
 */
export const snapshotChunkEntries = 32;
/** Requests the store holds while it recovers; past this it answers 503. */
export const recoveryQueueMax = 256;
/** Ticks a recovery may take before the store gives up and crashes (its supervisor retries). */
export const recoveryTicksMax = 50;

// ── names and topics ─────────────────────────────────────────────────────────────────

export const rootName = 'root';
export const names = {
  kv: `${rootName}/kv`,
  journal: `${rootName}/kv/journal`,
  store: `${rootName}/kv/store`,
  pool: `${rootName}/pool`,
  worker: (shard: number) => `${rootName}/pool/w${shard}`,
} as const;


/**
 * Journal traffic outranks requests: a snapshot reaches a recovering store ahead of the
 * requests delivered in the same tick, so the queued ones are answered a tick sooner.
 */
const recoveryPriority = 255;

// ── messages ─────────────────────────────────────────────────────────────────────────

/** What the server asks the store. */
export type KvRequest = { op: 'get'; key: string } | { op: 'put'; key: string; value: string } | { op: 'delete'; key: string };

/** What the server asks a compute worker. */
export interface ComputeRequest {
  op: 'primes';
  limit: number;
}

/** What every actor replies with: an HTTP status and a JSON body. */
export interface Outcome {
  status: number;
  body: Record<string, unknown>;
}

type JournalMessage =
  | { kind: 'append'; key: string; value: string }
  | { kind: 'remove'; key: string }
  | { kind: 'recover' }
  | { kind: 'snapshot'; entries: [string, string][]; last: boolean };

function reply(ctx: ActorContext, ask: Message, value: Outcome): void {
  const sent = ctx.replyJson(ask, value);
  // An ask that timed out meanwhile: the server answered 504 already.
  if (!sent.ok) ctx.log.warn(`reply to ask #${ask.seq} not sent: ${sent.reason}`);
}

function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

// ── journal ──────────────────────────────────────────────────────────────────────────

interface JournalState {
  /** The last value of every key, in the order keys were first written. */
  entries: Map<string, string>;
}

export const journal = defineActor<JournalState>({
  name: 'journal',
  init: () => ({ entries: new Map() }),
  receive: (state, message, ctx) => {
    const entry = message.json<JournalMessage>();
    if (entry.kind === 'append') state.entries.set(entry.key, entry.value);
    else if (entry.kind === 'remove') state.entries.delete(entry.key);
    else if (entry.kind === 'recover') sendSnapshot(state, message.sender, ctx);
    else throw new Error(`journal: unexpected message kind ${JSON.stringify(entry.kind)}`);
    return state;
  },
});

/** Sends every entry to the recovering store, in chunks that fit the payload bound. */
function sendSnapshot(state: JournalState, store: number, ctx: ActorContext): void {
  const entries = [...state.entries];
  for (let at = 0; at === 0 || at < entries.length; at += snapshotChunkEntries) {
    const chunk = entries.slice(at, at + snapshotChunkEntries);
    const last = at + snapshotChunkEntries >= entries.length;
    const sent = ctx.sendJson(store, { kind: 'snapshot', entries: chunk, last } satisfies JournalMessage, { priority: recoveryPriority });
    // The store then never finishes recovering; it crashes after recoveryTicksMax and asks again.
    if (!sent.ok) ctx.log.warn(`snapshot chunk refused: ${sent.actor}'s mailbox is full`);
  }
}

// ── store ────────────────────────────────────────────────────────────────────────────

interface StoreArgs {
  journal: string;
}

interface StoreState {
  data: Map<string, string>;
  /** True from init until the journal's last snapshot chunk. */
  recovering: boolean;
  recoveringSince: number;
  /** Asks taken while recovering, answered in order once recovered. */
  queued: Message[];
}

export const store = defineActor<StoreState, StoreArgs>({
  name: 'store',
  init: (ctx, args) => {
    // Every start, first or restart, reloads what the journal holds.
    ctx.sendJson(args.journal, { kind: 'recover' } satisfies JournalMessage, { priority: recoveryPriority });
    return { data: new Map(), recovering: true, recoveringSince: ctx.tick, queued: [] };
  },
  receive: (state, message, ctx) => {
    if (message.kind !== MessageKind.ask) {
      applySnapshot(state, message, ctx);
      return state;
    }
    if (!state.recovering) {
      answer(state, message, ctx);
    } else if (state.queued.length < recoveryQueueMax) {
      state.queued.push(message);
    } else {
      reply(ctx, message, { status: 503, body: { error: 'store_recovering', message: 'the store is reloading its data after a restart; retry shortly' } });
    }
    return state;
  },
  step: (state, ctx) => {
    if (state.recovering && ctx.tick - state.recoveringSince > recoveryTicksMax) {
      throw new Error(`no snapshot from the journal within ${recoveryTicksMax} ticks`);
    }
    return state;
  },
});

function applySnapshot(state: StoreState, message: Message, ctx: ActorContext): void {
  const snapshot = message.json<JournalMessage>();
  if (snapshot.kind !== 'snapshot') throw new Error(`store: unexpected inbox message kind ${JSON.stringify(snapshot.kind)}`);
  if (!state.recovering) return; // a late duplicate: the store already has everything
  for (const [key, value] of snapshot.entries) state.data.set(key, value);
  if (!snapshot.last) return;
  state.recovering = false;
  for (const ask of state.queued.splice(0)) answer(state, ask, ctx);
}

function answer(state: StoreState, ask: Message, ctx: ActorContext): void {
  // A request the server did not write (the fault plan's garbage bytes) throws here: the
  // store crashes, and its supervisor restarts it from the journal.
  const request = ask.json<KvRequest>();
  const { key } = request;
  const incarnation = ctx.incarnation;
  if (typeof key !== 'string' || utf8Length(key) === 0 || utf8Length(key) > keyBytesMax) {
    reply(ctx, ask, { status: 400, body: { error: 'bad_key', message: `a key is 1..${keyBytesMax} UTF-8 bytes` } });
    return;
  }
  switch (request.op) {
    case 'get': {
      const value = state.data.get(key);
      if (value === undefined) reply(ctx, ask, { status: 404, body: { error: 'not_found', key, incarnation } });
      else reply(ctx, ask, { status: 200, body: { key, value, incarnation } });
      return;
    }
    case 'put': {
      const { value } = request;
      if (typeof value !== 'string' || utf8Length(value) > valueBytesMax) {
        reply(ctx, ask, { status: 400, body: { error: 'bad_value', message: `a value is at most ${valueBytesMax} UTF-8 bytes` } });
        return;
      }
      const created = !state.data.has(key);
      if (created && state.data.size >= keysMax) {
        reply(ctx, ask, { status: 507, body: { error: 'store_full', message: `the store holds at most ${keysMax} keys; delete some first` } });
        return;
      }
      // Journal first: the store answers only for writes the journal will hold (it
      // receives them next tick, even if the store crashes right after this).
      const journaled = ctx.sendJson(names.journal, { kind: 'append', key, value } satisfies JournalMessage, { priority: recoveryPriority });
      if (!journaled.ok) {
        reply(ctx, ask, { status: 503, body: { error: 'journal_busy', message: 'the journal is full; retry' } });
        return;
      }
      state.data.set(key, value);
      reply(ctx, ask, { status: created ? 201 : 200, body: { key, value, incarnation } });
      return;
    }
    case 'delete': {
      if (!state.data.has(key)) {
        reply(ctx, ask, { status: 404, body: { error: 'not_found', key, incarnation } });
        return;
      }
      const journaled = ctx.sendJson(names.journal, { kind: 'remove', key } satisfies JournalMessage, { priority: recoveryPriority });
      if (!journaled.ok) {
        reply(ctx, ask, { status: 503, body: { error: 'journal_busy', message: 'the journal is full; retry' } });
        return;
      }
      state.data.delete(key);
      reply(ctx, ask, { status: 200, body: { key, deleted: true, incarnation } });
      return;
    }
    default:
      throw new Error(`store: unknown op ${JSON.stringify((request as { op?: unknown }).op)}`);
  }
}

// ── compute workers ──────────────────────────────────────────────────────────────────

interface WorkerArgs {
  shard: number;
}

/** Stateless: whatever a crash loses, a restarted worker answers the same. */
export const computeWorker = defineActor<null, WorkerArgs>({
  name: 'compute-worker',
  init: () => null,
  receive: (state, message, ctx) => {
    if (message.kind !== MessageKind.ask) return state;
    const request = message.json<ComputeRequest>();
    if (request.op !== 'primes' || !Number.isInteger(request.limit) || request.limit < 0 || request.limit > primesLimitMax) {
      reply(ctx, message, { status: 400, body: { error: 'bad_request', message: `primes takes an integer limit in 0..${primesLimitMax}` } });
      return state;
    }
    reply(ctx, message, { status: 200, body: { limit: request.limit, primes: countPrimes(request.limit), worker: ctx.name, incarnation: ctx.incarnation } });
    return state;
  },
});

/** How many primes are <= limit (sieve of Eratosthenes). */
export function countPrimes(limit: number): number {
  if (limit < 2) return 0;
  const composite = new Uint8Array(limit + 1);
  let count = 0;
  for (let n = 2; n <= limit; n++) {
    if (composite[n] === 1) continue;
    count++;
    for (let multiple = n * n; multiple <= limit; multiple += n) composite[multiple] = 1;
  }
  return count;
}

// ── the tree and the system ──────────────────────────────────────────────────────────

export const tree = supervisor({ strategy: 'one_for_one', intensity: 3, period: 100 }, [
  {
    id: 'kv',
    start: supervisor({ strategy: 'rest_for_one', intensity: 5, period: 50 }, [
      { id: 'journal', start: journal },
      { id: 'store', start: store, args: { journal: names.journal } satisfies StoreArgs },
    ]),
  },
  {
    id: 'pool',
    start: supervisor(
      { strategy: 'one_for_one', intensity: 8, period: 50 },
      Array.from({ length: computeShards }, (_, shard) => ({ id: `w${shard}`, start: computeWorker, args: { shard } satisfies WorkerArgs })),
    ),
  },
]);

const system = defineSystem({
  name: 'kv-service',
  setup(builder) {
    builder.spawn(tree, { name: rootName });
  },
});
export default system;
