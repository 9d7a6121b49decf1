/**
 * Every error lockstep reports to a caller is a LockstepError with a stable `code` (one of
 * `LockstepErrorCode`), so callers can branch on the class or the code without parsing
 * text, and a message that says what is wrong and what to do about it. Each family has its
 * class here:
 *
 *   ConfigError        a bad config or definition, found before anything runs
 *   UsageError         a call the runtime cannot take now or in that form: a closed runtime
 *                      (RuntimeClosedError), a tick in progress (TickInProgressError), an
 *                      argument of the wrong type or range (ArgumentError), a request a kind
 *                      of actor does not take (code not_supported)
 *   MailboxFullError, PayloadTooLargeError, PayloadEncodingError, UnknownTopicError,
 *   ActorContractError the traffic rules; AskTimeoutError, AskFailedError an ask from
 *   outside that got no reply; DurabilityError a host whose log could not be made durable; AdmissionError, MeteringError WASM modules;
 *   SupervisorError trees and verbs; LogFormatError, LogCorruptError, ReplayDivergenceError
 *   logs and replay; TensorFormatError tensors; DeterminismError the testing kit;
 *   CliError the command line
 *
 * Programmer errors inside lockstep itself are assertions (plain Error).
 */
export type LockstepErrorCode =
  | 'unknown_topic'
  | 'payload_too_large'
  | 'payload_encoding'
  | 'record_too_large'
  | 'mailbox_full'
  | 'ask_timeout'
  | 'ask_failed'
  | 'durability_failed'
  | 'invalid_config'
  | UsageErrorCode
  | 'actor_contract'
  | 'log_format'
  | 'log_corrupt'
  | 'replay_divergence'
  | AdmissionErrorCode
  | 'metering_failed'
  | SupervisorErrorCode
  | 'tensor_format'
  | 'not_deterministic'
  | CliErrorCode;

export class LockstepError extends Error {
  readonly code: LockstepErrorCode;

  constructor(code: LockstepErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export type UsageErrorCode = 'runtime_closed' | 'tick_in_progress' | 'invalid_argument' | 'not_supported';

/** A call the runtime cannot take now, or not in that form. Nothing was done. */
export class UsageError extends LockstepError {
  constructor(code: UsageErrorCode, message: string) {
    super(code, message);
  }
}

/** A call on a runtime that was closed: create a new one. */
export class RuntimeClosedError extends UsageError {
  constructor(what: string) {
    super('runtime_closed', `${what}: the runtime is closed; create a new one`);
  }
}

/** A call while a tick is running: await the step (or run) first. */
export class TickInProgressError extends UsageError {
  constructor(what: string) {
    super('tick_in_progress', `${what}: a tick is still running; await step()/run() before calling the runtime again`);
  }
}

/** An argument of the wrong type or out of range; the message names what was received. */
export class ArgumentError extends UsageError {
  constructor(message: string) {
    super('invalid_argument', message);
  }
}

/**
 * A value as an error message names it: `the string '10'`, `the number -1`, `null`,
 * `an array of 3 items`, `an object (Map)`.
 */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value).replace(/^"|"$/g, "'")}`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return `the ${typeof value} ${String(value)}`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return `an array of ${value.length} item${value.length === 1 ? '' : 's'}`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of ${(value as ArrayBufferView).byteLength} bytes`;
  const constructor = (value as object).constructor;
  return constructor === Object || constructor === undefined ? 'an object' : `an object (${constructor.name})`;
}

/** A topic name that no actor subscribes to and the system did not declare. */
export class UnknownTopicError extends LockstepError {
  constructor(readonly topic: string, hint: string) {
    super('unknown_topic', `unknown topic '${topic}': ${hint}`);
  }
}

/** A payload larger than the runtime's `payloadBytesMax`. */
export class PayloadTooLargeError extends LockstepError {
  constructor(readonly bytes: number, readonly limit: number, where: string) {
    super(
      'payload_too_large',
      `${where}: payload of ${bytes} bytes exceeds payloadBytesMax (${limit} bytes); ` +
        'send a reference (a key, a file name) instead, or raise payloadBytesMax in the runtime config',
    );
  }
}

/** A value that cannot be carried as a JSON payload (cycles, BigInt, functions, NaN...). */
export class PayloadEncodingError extends LockstepError {
  constructor(message: string) {
    super('payload_encoding', message);
  }
}

/** A record that does not fit the SharedArrayBuffer ring at all, whatever is drained. */
export class RecordTooLargeError extends LockstepError {
  constructor(readonly bytes: number, readonly limit: number) {
    super(
      'record_too_large',
      `record of ${bytes} bytes can never fit this ring (largest record: ${limit} bytes); ` +
        'create the ring with a larger capacity or split the record',
    );
  }
}

/** A mailbox (or an injection target) that is full; nothing was enqueued. */
export class MailboxFullError extends LockstepError {
  constructor(readonly actor: string, readonly capacity: number, where: string) {
    super(
      'mailbox_full',
      `${where}: mailbox of actor '${actor}' is full (${capacity} messages); nothing was enqueued. ` +
        'Retry after the next tick, or raise mailboxCapacity for that actor',
    );
  }
}

/** An ask from outside whose target did not reply within its ticks. The ask may still have been processed. */
export class AskTimeoutError extends LockstepError {
  constructor(
    readonly actor: string,
    /** The last tick the reply could come in. */
    readonly tick: number,
    timeoutTicks: number,
  ) {
    super(
      'ask_timeout',
      `ask of actor '${actor}' timed out: no reply by the end of tick ${tick} (${timeoutTicks} ticks). ` +
        'The actor may still have processed it; raise timeoutTicks, or check that it replies with ctx.reply',
    );
  }
}

/**
 * An ask from outside that will get no reply: its target went down (crashed, stopped) before
 * replying, or never got it (`reason` says which). Not a timeout: it failed when it happened.
 */
export class AskFailedError extends LockstepError {
  constructor(
    readonly actor: string,
    readonly reason: string,
    /**
     * False when the actor never got the ask (it was dropped on its way: the actor was
     * down, its mailbox refused it): it was not processed, so asking again is safe.
     */
    readonly received = true,
  ) {
    super('ask_failed', `ask of actor '${actor}' failed: ${reason}${received ? '' : ' (it was not processed: safe to ask again)'}`);
  }
}

/**
 * The host could not make its log durable (a full disk, an unwritable log file): what
 * waited for an acknowledgement is refused with this, and the host takes no more inputs.
 * Everything acknowledged before is on disk.
 */
export class DurabilityError extends LockstepError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('durability_failed', message, options);
  }
}

/** Invalid runtime configuration or actor/system definition, found before anything runs. */
export class ConfigError extends LockstepError {
  constructor(message: string) {
    super('invalid_config', message);
  }
}

/** An actor broke its contract (returned a Promise, published outside a tick...). */
export class ActorContractError extends LockstepError {
  constructor(message: string) {
    super('actor_contract', message);
  }
}

/** A replay log that cannot be read: bad magic, unsupported format, corrupt record. */
export class LogFormatError extends LockstepError {
  constructor(message: string) {
    super('log_format', message);
  }
}

/** A record whose checksum or hash chain does not match: the bytes changed after writing. */
export class LogCorruptError extends LockstepError {
  constructor(readonly offset: number, reason: string, readonly path?: string) {
    super(
      'log_corrupt',
      `${path ?? 'log'}: corrupt record at byte offset ${offset}: ${reason}. ` +
        'The log cannot be trusted past this point; re-record the run or restore the file',
    );
  }
}

/** A replay that did not reproduce the recorded run. */
export class ReplayDivergenceError extends LockstepError {
  constructor(readonly divergence: { tick: number; actor: string | null; message: string | null; detail: string }) {
    super('replay_divergence', `replay diverged at tick ${divergence.tick}: ${divergence.detail}`);
  }
}

/**
 * A WASM plugin refused before it runs (docs/abi.md): a bad manifest, a malformed module, a
 * disallowed feature, import or export, an ABI mismatch, or a missing or bad signature. The
 * `code` names the check that failed, one per check, so a caller can branch on it.
 */
export class AdmissionError extends LockstepError {
  constructor(code: AdmissionErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The checks admission runs; each failure carries exactly one of these as its `code`. */
export type AdmissionErrorCode =
  | 'admission_file'
  | 'admission_manifest'
  | 'admission_size'
  | 'admission_malformed'
  | 'admission_feature'
  | 'admission_import'
  | 'admission_export'
  | 'admission_memory'
  | 'admission_start'
  | 'admission_abi'
  | 'admission_unsigned'
  | 'admission_signature'
  | 'admission_untrusted';

/** A payload that is not the FlatBuffer it should be, or a tensor whose bytes do not match its dims (src/inference/tensor.ts). */
export class TensorFormatError extends LockstepError {
  constructor(message: string) {
    super('tensor_format', message);
  }
}

export type CliErrorCode =
  | 'module_not_found'
  | 'module_load'
  | 'not_a_system'
  | 'key_not_found'
  | 'bad_flag'
  | 'log_not_found'
  | 'file_exists'
  | 'file_not_found'
  | 'file_too_large';

/** The command line could not do what it was asked (a missing file, a bad flag); it exits with code 2. */
export class CliError extends LockstepError {
  constructor(code: CliErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A WASM module that the metering pass (src/wasm/metering.ts) could not rewrite. */
export class MeteringError extends LockstepError {
  constructor(readonly moduleName: string, reason: string, options?: { cause?: unknown }) {
    super('metering_failed', `module '${moduleName}' could not be metered: ${reason}`, options);
  }
}

/**
 * A supervision tree or verb was refused. `code` says which rule, mirroring OTP's errors:
 * supervisor_invalid_spec (a bad flag or child spec), supervisor_not_found,
 * supervisor_already_present, supervisor_already_started, supervisor_running,
 * supervisor_simple_one_for_one (a verb that strategy does not take).
 */
export class SupervisorError extends LockstepError {
  constructor(code: SupervisorErrorCode, message: string) {
    super(code, message);
  }
}

export type SupervisorErrorCode =
  | 'supervisor_invalid_spec'
  | 'supervisor_not_found'
  | 'supervisor_already_present'
  | 'supervisor_already_started'
  | 'supervisor_running'
  | 'supervisor_simple_one_for_one';

/** Two runs of a system with the same seed and inputs gave different logs (the testing kit, `lockstep/testing`). */
export class DeterminismError extends LockstepError {
  constructor(
    readonly system: string,
    readonly seed: number,
    readonly inputs: readonly { tick: number; topic: string; payload: Uint8Array; priority: number }[],
    readonly divergence: { tick: number; actor: string | null; detail: string },
    footer: string,
  ) {
    const shown = inputs
      .slice(0, 10)
      .map((i) => `tick ${i.tick} → '${i.topic}' [${Array.from(i.payload.subarray(0, 8)).join(',')}${i.payload.length > 8 ? ',…' : ''}] priority ${i.priority}`);
    super(
      'not_deterministic',
      `system '${system}' is not deterministic: two runs with seed ${seed} and the same ${inputs.length} inputs ` +
        `first differ at tick ${divergence.tick}${divergence.actor === null ? '' : `, actor '${divergence.actor}'`}: ${divergence.detail}\n` +
        (shown.length > 0 ? `  inputs: ${shown.join('; ')}${inputs.length > 10 ? '; …' : ''}\n` : '  inputs: none\n') +
        '  Look for Date.now, Math.random, performance.now, unordered iteration or state shared between runs in that actor.\n' +
        footer,
    );
  }
}

