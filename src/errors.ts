/**
 * The small, stable error set. Codes are part of the wire contract: dead-letter entries carry them in
 * their `error` field as `CODE: message`, and users alert on them.
 */

/** Why an event went to the dead-letter stream. */
export const DeadLetterCode = {
  /** The body field is missing or cannot be decoded with the configured encoding. */
  BadBody: 'E_BAD_BODY',
  /** The key field is missing or empty. */
  MissingKey: 'E_MISSING_KEY',
  /** The event-time field is missing. */
  MissingTime: 'E_MISSING_TIME',
  /** The event-time field is neither epoch milliseconds nor an ISO-8601 date. */
  BadTime: 'E_BAD_TIME',
  /**
   * The event time is more than `body.maxFutureSkew` ahead of the wall clock (a producer with a bad clock):
   * it would move stream time ahead and make later events late. It does not move stream time.
   */
  FutureTime: 'E_FUTURE_TIME',
  /** The event-ID field is missing or not a string/number (only when a dedup stage is configured). */
  MissingId: 'E_MISSING_ID',
  /** An aggregated field, or a projected `sum`/`min`/`max` field, is missing or not a finite number. */
  BadField: 'E_BAD_FIELD',
  /**
   * Over a `rateLimit` stage's rate (its token bucket, in event time, was empty) with `onExcess:
   * deadLetter`.
   */
  RateLimited: 'E_RATE_LIMITED',
  /**
   * An `order` stage held the event while an earlier version of its key was missing, and gave up waiting
   * (`timeout` of stream time, or `maxBuffered` events held) with `onGap: deadLetter`.
   */
  VersionGap: 'E_VERSION_GAP',
  /** An `order` stage found no integer version at `versionPath`. */
  BadVersion: 'E_BAD_VERSION',
  /**
   * A `filter.when` or `map.set` expression failed on the event (a value of the wrong type, a missing
   * field an operator needs, a condition that is not true/false). Not retried: it fails the same way again.
   */
  Expression: 'E_EXPRESSION',
  /** The event belongs only to windows that have already closed. */
  Late: 'E_LATE',
  /**
   * An aggregated value would make a window's sum (of a `sum` or `avg` aggregate) non-finite, beyond
   * ±1.8e308: the event changes no window.
   */
  Overflow: 'E_OVERFLOW',
  /** A stage threw on every one of `retry.attempts` tries. The entry carries `deliveries`. */
  StageFailed: 'E_STAGE_FAILED',
  /** Delivered more often than `source.maxDeliveries` (restarts, take-overs): not processed again. */
  MaxDeliveries: 'E_MAX_DELIVERIES',
  /** The shard worker crashed every time it processed this entry alone: not processed again. */
  WorkerCrash: 'E_WORKER_CRASH',
  /**
   * Larger than `source.maxEntryBytes`, or with more fields than one XADD can copy (pass-through, dead
   * letter): dead-lettered without its fields — only its key (if any), the error and `source_id`.
   */
  EntryTooLarge: 'E_ENTRY_TOO_LARGE',
  /**
   * Read from partition p's stream, but its key belongs to another partition (the producer used another
   * partition function or count): not processed, since its state lives under the other partition.
   */
  WrongPartition: 'E_WRONG_PARTITION',
} as const;
export type DeadLetterCode = (typeof DeadLetterCode)[keyof typeof DeadLetterCode];

/** One problem found in a pipeline file. */
export interface ConfigProblem {
  /** Where: `stages[1].window.size`. */
  path: string;
  message: string;
  /** How to fix it, when there is more to say than the message. */
  hint?: string;
}

export class StreamshardError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** True when trying again later may succeed (e.g. Redis unreachable). */
    readonly retriable: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'StreamshardError';
  }
}

export class ConfigError extends StreamshardError {
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super('E_CONFIG', `${file}: ${problems.length} problem(s)\n${formatProblems(problems)}`, false);
    this.name = 'ConfigError';
  }
}

/**
 * The pipeline's state (checkpoint, stream time, dedup memory) belongs to another incarnation of its input
 * stream or consumer group — the stream was deleted or re-created, the group destroyed or re-created, or
 * its position moved back — so applying it would dead-letter new events as late or process entries twice.
 * The pipeline stops; the fix is `streamshard reset -c FILE` (commit/incarnation.ts).
 */
export class StaleStateError extends StreamshardError {
  constructor(message: string) {
    super('E_STALE_STATE', message, false);
    this.name = 'StaleStateError';
  }
}

/**
 * A read or commit was fenced: the lease no longer holds this instance's token (it lapsed, or another
 * instance took it). Retriable: if nobody took the lease, the same token is valid again once renewed;
 * otherwise the engine stands down with {@link LeaseLostError}.
 */
export class FencedError extends StreamshardError {
  /** @param message the commit script's `FENCED …` reply, or the fenced read's own check in those words */
  constructor(message: string, options?: ErrorOptions) {
    super('E_FENCED', message, true, options);
    this.name = 'FencedError';
  }
}

/**
 * A read of new entries (`>`) returned an ID at or below one an earlier read returned: the group was
 * destroyed and re-created at an earlier position, or moved back with XGROUP SETID. Nothing of that read
 * is handed on (the engine stops; commit/incarnation.ts names the cause as a StaleStateError).
 */
export class GroupMovedBackError extends StreamshardError {
  constructor(
    readonly first: string,
    readonly last: string,
  ) {
    super('E_GROUP_MOVED_BACK', `the group delivered new entry ${first} after ${last}`, false);
    this.name = 'GroupMovedBackError';
  }
}

/** The engine stopped because another instance holds the lease: not a failure, the instance stands by. */
export class LeaseLostError extends StreamshardError {
  constructor(readonly holder: string) {
    super('E_LEASE_LOST', `the lease is held by ${holder}: another instance took over this pipeline`, false);
    this.name = 'LeaseLostError';
  }
}

/**
 * The term must restart from what Redis has: Redis restarted or failed over (another run_id: it may have
 * lost writes, it need not have), or the continuity check proved it lost acknowledged writes (STATELOST).
 * Not retriable as such: the pipeline abandons the term and starts a new one (same lease).
 */
export class StateLostError extends StreamshardError {
  private constructor(message: string, cause?: Error) {
    super('E_STATE_LOST', message, false, { cause });
    this.name = 'StateLostError';
  }

  /** Another server answers: what it kept is not known yet, so everything is reloaded from it. */
  static serverChanged(from: string, to: string): StateLostError {
    return new StateLostError(
      `Redis restarted or failed over (run_id ${from} → ${to}): reloading state from Redis`,
    );
  }

  /** The continuity check found a shard's previous commit missing: writes were lost. */
  static proven(cause: Error): StateLostError {
    return new StateLostError(
      `Redis lost acknowledged writes (a shard's previous commit is missing: restart without fsync, or failover): ${cause.message}`,
      cause,
    );
  }
}

/**
 * Redis answered a commit with an error reply (wrong key type, out of memory, a bug) every time it was
 * tried: the pipeline fails, the batch's entries stay pending.
 */
export class CommitRefusedError extends StreamshardError {
  constructor(
    readonly refusals: number,
    cause: Error,
  ) {
    super('E_COMMIT_REFUSED', `commit refused by Redis ${refusals} times: ${cause.message}`, false, {
      cause,
    });
    this.name = 'CommitRefusedError';
  }
}

/**
 * An error reply from Redis, as classified by `classifyRedisError` (redis/errors.ts). `reply` is the
 * reply's first word (`WRONGTYPE`, `OOM`, `NOSCRIPT`, `ERR`, …); the message is the reply unchanged.
 * Retriable for replies that say "not now" (`BUSY`, `OOM`, `LOADING`, `READONLY` during a failover, …).
 */
export class RedisReplyError extends StreamshardError {
  constructor(
    readonly reply: string,
    message: string,
    retriable: boolean,
    options?: ErrorOptions,
    code = 'E_REDIS_REPLY',
  ) {
    super(code, message, retriable, options);
    this.name = 'RedisReplyError';
  }
}

/** `NOGROUP`: the consumer group (or its stream) does not exist. */
export class NoGroupError extends RedisReplyError {
  constructor(message: string, options?: ErrorOptions) {
    super('NOGROUP', message, false, options, 'E_NO_GROUP');
    this.name = 'NoGroupError';
  }
}

/** `ERR no such key`: a command that needs the key (XINFO CONSUMERS) found none. */
export class NoSuchKeyError extends RedisReplyError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR', message, false, options, 'E_NO_SUCH_KEY');
    this.name = 'NoSuchKeyError';
  }
}

/** `WRONGTYPE`: the key holds another type than the command works on. */
export class WrongTypeError extends RedisReplyError {
  constructor(message: string, options?: ErrorOptions) {
    super('WRONGTYPE', message, false, options, 'E_WRONG_TYPE');
    this.name = 'WrongTypeError';
  }
}

export function formatProblems(problems: ConfigProblem[]): string {
  return problems.map((p) => `  ${p.path}: ${p.message}${p.hint ? ` (hint: ${p.hint})` : ''}`).join('\n');
}
