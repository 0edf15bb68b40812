/**
 * The filter, dedup and rate-limit steps of a shard, run per event in config order and retried with exponential
 * backoff when one throws. A try changes no state until every step has run (dedup records the ID and a
 * rate limit takes its token only then), so a retry sees what the first try saw. Window updates come after and do not throw on data;
 * should one throw anyway (a bug), the task fails and the main thread restarts the worker from the
 * checkpoint.
 */
import type { PipelineConfig } from '../config/load.js';
import { faults } from '../fault/faults.js';
import { type BatchReader, latin1 } from '../routing/batchCodec.js';
import { type CompiledExpression, ExpressionError } from './expr/expression.js';
import type { ShardCounts } from './protocol.js';
import type { DecodedEvent } from './stages/decode.js';
import type { DedupKeyOf } from './stages/dedup/contentKey.js';
import type { DedupStage } from './stages/dedup/dedupStage.js';
import type { Predicate } from './stages/filter.js';
import type { MapFn } from './stages/map/mapStage.js';
import type { RateLimitStage } from './stages/rateLimit/rateLimitStage.js';
import { DUPLICATE, FILTERED, RATE_LIMITED } from './typeCounts.js';

export type Step =
  | { kind: 'filter'; pred: Predicate }
  /** A `filter.when` expression: false drops the event. */
  | { kind: 'when'; expr: CompiledExpression }
  /** A `map` stage: swaps `event.body` for the mapped body (stages/map/mapStage.ts). */
  | { kind: 'map'; map: MapFn }
  /** `keyOf` null: the event's ID (`by: id`); else its content key (stages/dedup/contentKey.ts). */
  | { kind: 'dedup'; dedup: DedupStage; keyOf: DedupKeyOf | null }
  /** `deadLetter`: excess events are dead-lettered (LIMITED), else dropped. */
  | { kind: 'rateLimit'; limit: RateLimitStage; deadLetter: boolean };

/** What the steps decided for an event. */
export const PASS = 0;
export const DROP = 1;
export const FAILED = 2;
/** Over a rate limit whose excess is dead-lettered. */
export const LIMITED = 3;
/** An expression failed on the event (E_EXPRESSION): deterministic, so not retried. */
export const EXPRESSION = 4;
export type Verdict = typeof PASS | typeof DROP | typeof FAILED | typeof LIMITED | typeof EXPRESSION;

const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Blocks this thread (a shard worker: its events must wait in order anyway). */
function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

export class Steps {
  /** The `status` of the last event a step dropped (typeCounts.ts: FILTERED, DUPLICATE or RATE_LIMITED). */
  dropStatus = FILTERED;
  /** The error of the last event whose steps failed on every try. */
  private lastError: unknown = null;
  /** Tries so far per entry ID, for the `stage-throw` fault only. */
  private readonly injected = new Map<string, number>();

  constructor(
    private readonly steps: readonly Step[],
    private readonly retry: PipelineConfig['retry'],
    /** The decoder's event, which the steps read (decode.ts: one object, refilled per entry). */
    private readonly event: DecodedEvent,
  ) {}

  /** Runs every step for the current entry of `r`, retrying a throw up to `retry.attempts` tries. */
  run(r: BatchReader, counts: ShardCounts, streamTime: number): Verdict {
    const body = this.event.body; // a map step swaps it: every try, and a dead letter, start from this one
    for (let attempt = 1; ; attempt++) {
      try {
        return this.passes(r, counts, streamTime);
      } catch (e) {
        this.event.body = body;
        if (e instanceof ExpressionError) {
          this.lastError = e;
          return EXPRESSION;
        }
        if (attempt >= this.retry.attempts) {
          this.lastError = e;
          return FAILED;
        }
        counts.stageRetries++;
        sleepSync(Math.min(this.retry.maxBackoff, this.retry.backoff * 2 ** (attempt - 1)));
      }
    }
  }

  /** The dead-letter message of the last FAILED event. */
  failureMessage(): string {
    const e = this.lastError;
    return `${this.retry.attempts} tries failed, last: ${e instanceof Error ? e.message : String(e)}`;
  }

  /** The message of the last EXPRESSION event. */
  expressionMessage(): string {
    return this.lastError instanceof Error ? this.lastError.message : String(this.lastError);
  }

  private passes(r: BatchReader, counts: ShardCounts, streamTime: number): Verdict {
    const ev = this.event;
    if (faults.stageThrow !== null && keyText(r) === faults.stageThrow.key) this.injectStageFault(r);
    let admitted: DedupStage | null = null;
    let admittedKey = '';
    let limited: RateLimitStage | null = null;
    let verdict: Verdict = PASS;
    for (const s of this.steps) {
      if (s.kind === 'filter') {
        if (!s.pred(ev.body)) {
          verdict = DROP;
          counts.filtered++;
          this.dropStatus = FILTERED;
          break;
        }
        continue;
      }
      if (s.kind === 'when') {
        if (!s.expr.test(ev)) {
          verdict = DROP;
          counts.filtered++;
          break;
        }
        continue;
      }
      if (s.kind === 'map') {
        s.map(ev);
        continue;
      }
      if (s.kind === 'rateLimit') {
        if (!s.limit.admits(keyLatin1(r), r.keyGroup, ev.ts, streamTime)) {
          verdict = s.deadLetter ? LIMITED : DROP;
          counts.rateLimited++;
          this.dropStatus = RATE_LIMITED;
          break;
        }
        limited = s.limit;
        continue;
      }
      const key = s.keyOf === null ? ev.id : s.keyOf(r, ev);
      if (s.dedup.isDuplicate(key, streamTime)) {
        verdict = DROP;
        counts.deduplicated++;
        this.dropStatus = DUPLICATE;
        break;
      }
      admitted = s.dedup;
      admittedKey = key;
    }
    admitted?.record(admittedKey, r.keyGroup, streamTime);
    limited?.take(streamTime);
    return verdict;
  }

  private injectStageFault(r: BatchReader): void {
    const id = r.id();
    const tries = (this.injected.get(id) ?? 0) + 1;
    this.injected.set(id, tries);
    if (tries <= (faults.stageThrow as { times: number }).times) {
      throw new Error(`injected stage fault (try ${tries})`);
    }
  }
}

const utf8 = new TextDecoder();

/** The current entry's key as latin1 text: one char per byte, so any key bytes map one to one. */
export function keyLatin1(r: BatchReader): string {
  return latin1(r.bytes, r.fieldStart(r.keyField), r.fieldEnd(r.keyField));
}

/** The current entry's key as text (for fault injection only: the stages use its bytes). */
export function keyText(r: BatchReader): string {
  return utf8.decode(r.field(r.keyField));
}
