/**
 * Every operating error lockstep reports is a LockstepError with a stable `code`, so callers
 * can branch on the family without parsing text, and a message that says what is wrong and
 * what to do about it. Programmer errors inside lockstep itself are assertions (plain Error).
 */
export class LockstepError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
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
