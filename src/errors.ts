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
  /** An aggregated field is missing or not a finite number. */
  BadField: 'E_BAD_FIELD',
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
  ) {
    super(message);
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

export function formatProblems(problems: ConfigProblem[]): string {
  return problems.map((p) => `  ${p.path}: ${p.message}${p.hint ? ` (hint: ${p.hint})` : ''}`).join('\n');
}
