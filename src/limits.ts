/**
 * Every bound of the runtime, in one place: queues, rings, mailboxes, files, names, waits
 * and caches. Each is a named constant with its unit and then its qualifier last
 * (`payloadBytesMaxDefault`: bytes, max, the default), and says why it is what it is.
 * Hitting one is a handled, tested outcome (a typed error, a logged refusal), never a
 * crash or a silent loss. Layout constants of a format (header sizes, alignment) stay
 * with the format; fuel costs stay with the metering pass (src/wasm/metering.ts), whose
 * format version covers them.
 */

// ── the run (RuntimeConfig defaults; src/config.ts) ─────────────────────────────────

/** Most actors activated in one tick (ADR-003). */
export const tickTasksMaxDefault = 4096;
/** Messages a mailbox holds before a publish to it is refused (backpressure). */
export const mailboxCapacityDefault = 1024;
/** 64 KiB: bigger things travel as references (file names, keys), not as messages. */
export const payloadBytesMaxDefault = 64 * 1024;

// ── events (src/events.ts) ──────────────────────────────────────────────────────────

/** Most events gathered for one tick before the rest are counted, not kept (a storm of drops). */
export const eventsPerTickMax = 100_000;

// ── SharedArrayBuffer rings (src/ring.ts) ───────────────────────────────────────────

/** 64 KiB: a tick's batch of ~100-byte envelopes (~600) fits, and the ring stays in L2. */
export const ringCapacityBytesDefault = 64 * 1024;
/** Below one cache line a ring holds almost nothing and the layout padding dominates. */
export const ringCapacityBytesMin = 64;
/**
 * 1 GiB: far more than any tick needs (a bigger batch should be streamed in parts), and far
 * below the 2^32 period of the counters: `head - tail` stays unambiguous as long as it can
 * never reach 2^31, so a full ring can never look empty.
 */
export const ringCapacityBytesMax = 2 ** 30;
/**
 * Polls of an empty ring before a reader sleeps. A futex wake-up through Atomics.wait
 * costs ~50 us against ~1 us for a poll that catches the next flush (NOTES-DEPS, WASM);
 * at a few ns a poll this bounds the spin to a few microseconds of one core.
 */
export const ringReadableSpinPollsMax = 1024;
/**
 * Polls of a full ring before a writer sleeps: none. Room comes back only at the end of a
 * drain that takes tens of microseconds for a full ring, so a short poll always misses it,
 * and on 2 cores the polling thread slowed the draining one.
 */
export const ringWritableSpinPollsMax = 0;

// ── shared mailboxes (src/slabs.ts) ──────────────────────────────────────────────────

/**
 * 1 MiB per slab: ~13,000 small envelopes, so a slab serves many ticks of traffic before
 * the next is made; an envelope larger than half a slab gets a slab of its own.
 */
export const mailboxSlabBytes = 1 << 20;
/** Freed slabs kept for reuse (their memory stays mapped): a few ticks of heavy traffic. */
export const mailboxSlabsSpareMax = 4;

// ── the replay log (src/log/) ───────────────────────────────────────────────────────

/**
 * The largest record body the writer writes and the reader accepts. A `full`-level tick
 * with 100k small envelopes is ~10 MB; anything near this bound is a runaway tick.
 */
export const recordBodyBytesMax = 64 * 1024 * 1024;
/**
 * Bytes a FileSink gathers before one write(2): large enough that a run of small tick
 * records costs one system call per ~1 MiB, small enough to bound memory and the loss on a kill.
 */
export const fileSinkChunkBytes = 1024 * 1024;
/** Bytes the writer's builder starts with: a digest-level tick with ~100 actors fits without growing. */
export const logBuilderBytesInitial = 8 * 1024;
/**
 * Bytes of the slabs frames are encoded into: big enough that a slab serves many records,
 * small enough that a kept body keeps little alive (a slab region is written once, never reused).
 */
export const logFrameSlabBytes = 256 * 1024;

// ── fault plans (src/faults.ts) ─────────────────────────────────────────────────────

/** Payload size of a malformed fault when the plan gives none. */
export const malformedBytesDefault = 16;

// ── WASM modules: files, manifests, admission (src/wasm/) ──────────────────────────

/** Sanity cap on what the loader reads into memory; admission applies the real, smaller limit. */
export const moduleFileBytesMax = 64 * 1024 * 1024;
/** Manifests are a few hundred bytes; anything much larger is the wrong file. */
export const manifestFileBytesMax = 64 * 1024;
/** A signature file holds one small JSON object. */
export const signatureFileBytesMax = 4 * 1024;
/** Key files hold a few hundred bytes; anything much larger is the wrong file. */
export const keyFileBytesMax = 64 * 1024;
/** 8 MiB: an order of magnitude above an optimised AssemblyScript agent with its runtime. */
export const moduleBytesMaxDefault = 8 * 1024 * 1024;
/** 256 pages = 16 MiB of linear memory per agent. */
export const memoryPagesMaxDefault = 256;
/** 4 GiB of 64 KiB pages: the most a 32-bit memory can address. */
export const memoryPagesLimitMax = 65_536;
/** Largest function table an agent may declare (entries): tables are allocated up front. */
export const tableEntriesMax = 65_536;
/** Manifest names and versions, in characters. */
export const manifestNameCharsMax = 64;
export const manifestVersionCharsMax = 64;
/** A topic name in a manifest's capabilities, in characters. */
export const capabilityNameCharsMax = 256;
/** The inference actor's rule for model names (src/inference/models.ts): an agent can only name a model that rule allows. */
export const modelNameCharsMax = 128;
/** Per capability list (publish, subscribe, models): far above any real agent, small enough to scan. */
export const capabilityEntriesMax = 1024;

// ── metering (src/wasm/metering.ts) ─────────────────────────────────────────────────

/**
 * Nested calls an agent may make. V8 overflows between ~14k and ~28k frames depending on
 * the JIT tier; 1,000 stays below that for any frame size an agent compiles to (locals live
 * on a shadow stack in linear memory) with a wide margin, while any real recursion an agent
 * needs (tree walks, parsers) stays far below it.
 */
export const callDepthMaxDefault = 1_000;
/** Beyond this even small frames risk V8's own overflow, which is not deterministic. */
export const callDepthMaxLimit = 10_000;
/** Deeper IR than this is refused rather than risking a JS stack overflow in the walker. */
export const expressionNestingMax = 3_000;
/** Enough stderr to say what binaryen objected to; its aborts can print megabytes. */
export const meteringDiagnosticCharsMax = 2_000;
/** What is kept while capturing binaryen's stderr, so a huge dump cannot balloon memory. */
export const capturedStderrCharsMax = 64 * 1024;
/** A process meters a handful of agent kinds; 64 leaves room for versions side by side. */
export const meteredModuleCacheEntriesMaxDefault = 64;

// ── the agent host (src/wasm/agent-host.ts) ─────────────────────────────────────────

/** Distinct refused inference topics an agent can look up; later ones get a plain -1. */
export const refusedCallNamesMax = 16;
/** Longest topic name `topic()` looks up, in bytes. */
export const topicNameBytesMax = 256;
/** Log output an agent may produce per tick: lines, and bytes per line. */
export const logLinesPerTickMax = 64;
export const logLineBytesMax = 1024;
/** Host charges gathered before they are taken from the fuel global (no BigInt per publish). */
export const hostFuelSyncUnits = 4_096;
/** A crash reason an agent host reports, in characters. */
export const crashReasonCharsMax = 2_000;

// ── the WASM worker pool (src/wasm/pool.ts, worker-transport.ts, host-worker.ts) ─────

/** Worker threads a pool may have. */
export const workersMax = 64;
/** 1 MiB per direction: a tick's commands for a few hundred agents fit without waiting. */
export const workerRingBytesDefault = 1 << 20;
/** Last resort for a worker that stops answering (an unmetered loop would be a lockstep bug). */
export const watchdogMsDefault = 10_000;
/** setTimeout holds at most 2^31-1 ms (and turns more into 1 ms): leave room for the start-up allowance. */
export const watchdogMsMax = 2 ** 31 - 1 - 60_000;
/** Worker stack: 1,000 frames of up to ~30 KiB each. */
export const workerStackMb = 32;
/** Allowance for a new worker's first tick (thread start, tsx, module instantiation). */
export const workerStartupMs = 30_000;
/** Longest single asynchronous wait for results before polling every worker again. */
export const workerResultWaitSliceMs = 1;
/**
 * Rounds of polling the workers before waiting asynchronously. With a core to spare, a
 * long poll (tens of microseconds) beats an Atomics.waitAsync wake-up through the event
 * loop; when the busy workers already fill every core, polling only takes CPU from them.
 */
export const workerResultSpinPollsSpareCore = 2_000;
export const workerResultSpinPollsNoSpareCore = 50;
/**
 * Commands staged per worker per round. A tick's commands are already encoded, so one round
 * stages them all where the ring holds them: each round wakes the worker (a futex wake-up
 * that costs tens of microseconds here), and small rounds only multiplied the wake-ups.
 */
export const workerChunkRecords = 4_096;
/** How long a worker's LOAD waits for its module on the port; it was posted before the ring record. */
export const workerLoadWaitMs = 5_000;
/**
 * Polls of an empty inbound ring before a worker sleeps. Between two ticks the
 * orchestrator is busy for tens of microseconds; a futex wake-up costs about as much again,
 * so a worker that keeps polling that long starts the next tick at once. Bounded, so an
 * idle pool goes to sleep.
 */
export const workerIdleSpinPolls = 2_000;

// ── inference (src/inference/) ──────────────────────────────────────────────────────

/** The model cache's bound, in bytes of model files. */
export const cacheBytesDefault = 256 * 1024 * 1024;
/** Per direction: a tick's batch of a few hundred requests of a small model fits many times over. */
export const inferenceRingBytes = 8 << 20;
/**
 * The largest record a ring of `inferenceRingBytes` can ever hold (minus its 4-byte length
 * header, src/ring.ts): the bound on a command and on a reply for both transports, so the
 * in-thread one refuses exactly what the worker's ring would.
 */
export const inferenceRecordBytesMax = inferenceRingBytes - 4;
/** Polls of the reply ring per event-loop turn while a tick settles (kept short: the worker needs the other core). */
export const inferenceReplySpinPolls = 500;
/** Longest single asynchronous wait for a reply before polling again. */
export const inferenceReplyWaitSliceMs = 1;
/** Most dims a tensor may have: ONNX allows more, no model here needs them. */
export const tensorRankMax = 8;
/** Short strings the tensor decoder remembers (names, model, version), and the longest it remembers. */
export const tensorDecodedCacheMax = 4096;
export const tensorDecodedCacheBytesMax = 128;

// ── asks and the host ─────────────────────────────────────────────────────────────────

/** Ticks an ask's target has to reply when the caller does not say (ctx.ask, runtime.ask). */
export const askTimeoutTicksDefault = 100;
/** A host's tick interval while no work waits, in milliseconds. */
export const hostTickMsDefault = 10;
/** A host's fsync interval with `durability: 'interval'`, in milliseconds. */
export const hostFsyncIntervalMsDefault = 50;
/** Ticks a host's `stop()` keeps running for the asks still waiting. */
export const hostDrainTicksMaxDefault = 100;
