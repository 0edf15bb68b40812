/**
 * One shard: owns the state of its key groups and applies batches in order. Pure computation — no I/O,
 * no clock of its own (wall time arrives with each task), so it is unit-testable without a worker or Redis.
 *
 * Per event: decode/validate (stages/decode.ts) → filter, map, dedup and rate limit in config order, retried
 * when they throw, dead-lettered at once when an expression fails (steps.ts) → window (stages/window/) or
 * pass-through (re-encoded when a map changed the body); what cannot go on is dead-lettered (batchOutput.ts),
 * with the envelope fields of a decoded event (envelope.ts).
 */
import type { PipelineConfig } from '../config/load.js';
import type { Aggregate } from '../config/schema.js';
import { DeadLetterCode } from '../errors.js';
import { faults } from '../fault/faults.js';
import { BatchReader } from '../routing/batchCodec.js';
import { fnv1a } from '../routing/hash.js';
import {
  badVersionMessage,
  deadLetter,
  emptyOutput,
  futureMessage,
  heldReader,
  lateMessage,
  rateLimitedMessage,
  tooManyFields,
  versionGapMessage,
} from './batchOutput.js';
import { MAX_COPY_FIELDS } from './commitBuilder.js';
import { DeadLetterEnvelope, ENVELOPE_FIELDS, envelopeScope } from './envelope.js';
import { compileExpression } from './expr/expression.js';
import type { BatchResult, RestoredState } from './protocol.js';
import { type Body, type DecodeFailure, EventDecoder } from './stages/decode.js';
import { contentKey } from './stages/dedup/contentKey.js';
import { DedupStage } from './stages/dedup/dedupStage.js';
import { hashTagOf } from './stages/project/keyTemplate.js';
import { ProjectStage } from './stages/project/projectStage.js';
import { compileFilter } from './stages/filter.js';
import { type BodyFields, bodyFields } from './stages/map/encodeBody.js';
import { compileMap } from './stages/map/mapStage.js';
import { APPLY, OrderStage, type Released, STALE } from './stages/order/orderStage.js';
import { RateLimitStage } from './stages/rateLimit/rateLimitStage.js';
import { windowOperator } from './stages/window/operator.js';
import { ADDED, LATE, type WindowOperator } from './stages/window/windowStage.js';
import {
  DROP,
  EXPRESSION,
  FAILED,
  keyLatin1,
  keyText,
  LIMITED,
  PASS,
  type Step,
  Steps,
  type Verdict,
} from './steps.js';
import { DEAD_LETTERED, DUPLICATE, OK, TypeCounts } from './typeCounts.js';

/**
 * Most window results a tick (no events) emits. A tick's commit holds up the events that arrive meanwhile,
 * so it is kept short: with 1,000 results per tick, a 10k-key window close at 33k events/s live load
 * pushed the latency of the events behind it past 100 ms (see BENCHMARKS.md).
 */
const TICK_SLICE = 100;

export class Shard {
  private readonly decoder: EventDecoder;
  private readonly steps: Steps;
  private readonly dedup: DedupStage | null = null;
  private readonly window: WindowOperator | null = null;
  private readonly rateLimit: RateLimitStage | null = null;
  private readonly order: OrderStage | null = null;
  /** Per type and status counts (`events_processed_total{type, status}`). */
  private readonly types: TypeCounts;
  /** Project stages, in config order: after every other stage but the window (schema.ts). */
  private readonly projects: ProjectStage[] = [];
  /** The steps after the order stage (empty without one): they run when an event is applied in order. */
  private readonly after: Steps;
  /** Entries the order stage releases or gives up, reused. */
  private readonly released: Released = [];
  /** Index of the next released entry in the output (after the batch's own entries). */
  private nextReleased = 0;
  private readonly idleClose: number;
  /**
   * Most window results one batch emits: closing a window start for every key at once made one commit of
   * thousands of results, which every later batch of the shard waited for (the p99 latency). A batch of n
   * events emits up to 2n (at least the tick slice, at most `commit.maxEvents`), so emitting keeps pace
   * with the input while a backlog drains, and a small batch under live load is not held up by a big slice.
   */
  private readonly maxSlice: number;
  /** Most results a tick emits: TICK_SLICE, or `commit.maxEvents` if lower. */
  private readonly tickSlice: number;
  private streamTime = Number.NEGATIVE_INFINITY;
  private streamTimeChanged = false;
  /** Stream time at the last event, for idle closing. */
  private streamTimeAtLastEvent = Number.NEGATIVE_INFINITY;
  private readonly maxDeliveries: number;
  private readonly maxEntryBytes: number;
  /** The stream this shard's partition reads, named in E_WRONG_PARTITION dead letters. */
  private readonly partitionStream: string;
  /** `body.maxFutureSkew`: events further ahead of the wall clock are dead-lettered; 0 = no check. */
  private readonly maxFutureSkew: number;
  private readonly retry: PipelineConfig['retry'];
  /** Envelope fields for dead letters (`body.envelope`), or null. */
  private readonly envelope: DeadLetterEnvelope | null;
  /** A map stage comes before the window: its values are read after the steps. */
  private readonly valuesAfterMap: boolean;
  /** A map stage without a window: pass-through copies carry the mapped body. */
  private readonly mappedFields: BodyFields | null;
  /** The current event's body as decoded (before any map), for its dead letters' envelope; null if none. */
  private inputBody: Body | null = null;

  /**
   * @param restored the checkpoint to continue from, with the wall ms (taken on the main thread) it is
   *   restored at: a stored stream time too far ahead of it is capped (see {@link restore})
   */
  constructor(config: PipelineConfig, restored?: { state: RestoredState; now: number }) {
    let aggregates: Aggregate[] = [];
    let idleClose = 0;
    const before: Step[] = [];
    const afterOrder: Step[] = [];
    let steps = before;
    const scope = envelopeScope(config.body);
    let hasMap = false;
    for (const [i, s] of config.stages.entries()) {
      if ('order' in s) {
        this.order = new OrderStage(s.order);
        steps = afterOrder;
      } else if ('filter' in s) {
        const when = s.filter.when;
        steps.push(
          when === undefined
            ? { kind: 'filter', pred: compileFilter(s.filter) }
            : { kind: 'when', expr: compileExpression(when, `stages[${i}].filter.when`, scope) },
        );
      } else if ('map' in s) {
        hasMap = true;
        steps.push({ kind: 'map', map: compileMap(s.map, `stages[${i}].map`, scope) });
      } else if ('project' in s) {
        this.projects.push(new ProjectStage(s.project, hashTagOf(config.source.stream)));
      } else if ('dedup' in s) {
        this.dedup = new DedupStage(s.dedup);
        const keyOf = s.dedup.by === 'content' ? contentKey(config.body, s.dedup.fields) : null;
        steps.push({ kind: 'dedup', dedup: this.dedup, keyOf });
      } else if ('rateLimit' in s) {
        this.rateLimit = new RateLimitStage(s.rateLimit);
        steps.push({
          kind: 'rateLimit',
          limit: this.rateLimit,
          deadLetter: s.rateLimit.onExcess === 'deadLetter',
        });
      } else {
        this.window = windowOperator(s.window);
        aggregates = s.window.aggregates;
        idleClose = s.window.idleClose;
      }
    }
    this.idleClose = idleClose;
    this.types = new TypeCounts(config.metrics.eventTypes);
    this.maxSlice = config.commit.maxEvents;
    this.tickSlice = Math.min(TICK_SLICE, this.maxSlice);
    this.maxDeliveries = config.source.maxDeliveries;
    this.maxEntryBytes = config.source.maxEntryBytes;
    this.partitionStream = config.source.stream;
    this.maxFutureSkew = config.body.maxFutureSkew;
    this.retry = config.retry;
    this.envelope = DeadLetterEnvelope.of(config.body);
    this.valuesAfterMap = hasMap && this.window !== null;
    this.mappedFields = hasMap && this.window === null ? bodyFields(config.body, config.key.field) : null;
    this.decoder = new EventDecoder({
      body: config.body,
      needId: [...before, ...afterOrder].some((s) => s.kind === 'dedup' && s.keyOf === null),
      aggregates,
      valuesAfterMap: this.valuesAfterMap,
      needBody:
        this.envelope !== null ||
        config.stages.some(
          (s) =>
            'filter' in s ||
            'map' in s ||
            'order' in s ||
            'project' in s ||
            ('dedup' in s && s.dedup.fields !== undefined),
        ),
      typePath: config.metrics.eventTypes?.field,
    });
    this.steps = new Steps(before, config.retry, this.decoder.event);
    this.after = new Steps(afterOrder, config.retry, this.decoder.event);
    if (restored) this.restore(restored.state, restored.now);
  }

  get openWindows(): number {
    return this.window?.openBuckets ?? 0;
  }

  get dedupIds(): number {
    return this.dedup?.size ?? 0;
  }

  /** The shard's stream time (the highest event time seen, or advanced on idleness); null before any. */
  get currentStreamTime(): number | null {
    return this.streamTime === Number.NEGATIVE_INFINITY ? null : this.streamTime;
  }

  /**
   * The stream time a restore capped because it was more than `maxFutureSkew` ahead of the wall clock (a
   * checkpoint written before the future-time check, or by a host with a bad clock), or null.
   */
  streamTimeCapped: { stored: number; capped: number } | null = null;

  private restore(r: RestoredState, now: number): void {
    if (r.streamTime !== null) {
      let t = r.streamTime;
      if (this.maxFutureSkew > 0 && t > now + this.maxFutureSkew) {
        this.streamTimeCapped = { stored: t, capped: now + this.maxFutureSkew };
        t = now + this.maxFutureSkew;
        this.streamTimeChanged = true; // the next commit replaces the stored value
      }
      this.streamTime = t;
      this.streamTimeAtLastEvent = t;
    }
    if (this.window) for (const w of r.windows) this.window.restore(w.keyGroup, w.start, w.fields);
    this.dedup?.restore(r.dedupLogs, this.streamTime);
    if (r.rateLimit !== undefined) this.rateLimit?.restore(r.rateLimit, this.streamTime);
    if (r.order !== undefined) this.order?.restore(r.order);
  }

  /**
   * Applies one packed batch.
   *
   * @param now the wall clock (epoch ms) when the main thread dispatched the batch: one value for the whole
   *   batch, so that the future-time check reads no clock per event
   */
  processBatch(buf: ArrayBuffer, now: number): BatchResult {
    const out = emptyOutput();
    const r = new BatchReader(buf);
    const ev = this.decoder.event;
    const counts = out.counts;
    const latest = this.maxFutureSkew > 0 ? now + this.maxFutureSkew : Number.POSITIVE_INFINITY;
    this.nextReleased = r.count;
    while (r.next()) {
      counts.processed++;
      this.types.unknown();
      out.entryIds.push(r.idBytes());
      const deliveries = r.deliveries;
      if (r.oversizedBytes >= 0) {
        // The router copied only its key (see routing/batchCodec.ts OVERSIZED).
        const msg = `entry of ${r.oversizedBytes} bytes (field names and values) is larger than source.maxEntryBytes (${this.maxEntryBytes})`;
        this.dead(out, r, DeadLetterCode.EntryTooLarge, msg);
        continue;
      }
      if (r.wrongPartition) {
        const msg = `its key belongs to another partition than this stream's (${this.partitionStream}); see docs/partitions.md for the partition function`;
        this.dead(out, r, DeadLetterCode.WrongPartition, msg);
        continue;
      }
      if (r.poison) {
        const msg = `the shard worker crashed on each of ${this.retry.attempts} tries of this entry alone`;
        this.dead(out, r, DeadLetterCode.WorkerCrash, msg, deliveries);
        continue;
      }
      if (deliveries > this.maxDeliveries) {
        const msg = `delivered ${deliveries} times (source.maxDeliveries is ${this.maxDeliveries})`;
        this.dead(out, r, DeadLetterCode.MaxDeliveries, msg, deliveries);
        continue;
      }
      const failure = this.decode(r);
      if (failure !== null) {
        this.deadLetter(out, r, failure.code, failure.message);
        continue;
      }
      if (ev.ts > latest) {
        // before anything reads the time: it must move neither stream time nor dedup's TTL clock
        this.deadLetter(out, r, DeadLetterCode.FutureTime, futureMessage(ev.ts, now, this.maxFutureSkew));
        continue;
      }
      // A worker thread's process.exit() ends the thread only: the main thread sees a crashed worker.
      if (faults.crashOnKey !== null && keyText(r) === faults.crashOnKey) process.exit(70);
      if (ev.ts > this.streamTime) {
        this.streamTime = ev.ts;
        this.streamTimeChanged = true;
      }
      if (this.order !== null) {
        this.order.advance(this.streamTime, this.released);
        // what it released was decoded into the shared event: decode the current entry again
        if (this.settleReleased(out, null)) this.decode(r);
      }
      if (!this.passes(this.steps, r, out)) continue;
      if (this.order === null) this.apply(r, out);
      else this.offer(this.order, r, out);
    }
    if (r.count > 0) this.streamTimeAtLastEvent = this.streamTime;
    this.finish(out, Math.min(this.maxSlice, Math.max(this.tickSlice, 2 * r.count)));
    return out;
  }

  /**
   * Decodes the entry of `r` into the shared event, noting its body for the envelope of its dead letters,
   * and reads its type (per-type metrics).
   */
  private decode(r: BatchReader): DecodeFailure | null {
    this.types.unknown();
    const failure = this.decoder.decode(r);
    this.inputBody = this.decoder.bodyDecoded ? this.decoder.event.body : null;
    if (failure === null) this.types.read(this.decoder.event.type);
    return failure;
  }

  /**
   * Dead-letters the entry of `r`, with the envelope fields of its decoded body (`inputBody`: set by
   * {@link decode} for this entry; null for one not decoded) when the copy has room for them.
   */
  private deadLetter(
    out: BatchResult,
    r: BatchReader,
    code: DeadLetterCode,
    message: string,
    deliveries?: number,
    body: Body | null = this.inputBody,
  ): void {
    deadLetter(out, r, code, message, deliveries);
    this.types.count(DEAD_LETTERED);
    if (this.envelope !== null && body !== null && r.fieldCount <= MAX_COPY_FIELDS - ENVELOPE_FIELDS) {
      this.envelope.appendTo(out.entryFields[r.index] as Uint8Array[], body);
    }
  }

  /** Runs `steps` for the current entry of `r`; false when the event goes no further (dead letters made). */
  private passes(steps: Steps, r: BatchReader, out: BatchResult): boolean {
    const verdict: Verdict = steps.run(r, out.counts, this.streamTime);
    if (verdict === PASS) return true;
    if (verdict === DROP) this.types.count(steps.dropStatus);
    if (verdict === FAILED) {
      this.deadLetter(out, r, DeadLetterCode.StageFailed, steps.failureMessage(), r.deliveries);
    } else if (verdict === LIMITED) {
      this.deadLetter(out, r, DeadLetterCode.RateLimited, rateLimitedMessage(this.decoder.event.ts));
    } else if (verdict === EXPRESSION) {
      this.deadLetter(out, r, DeadLetterCode.Expression, steps.expressionMessage());
    }
    return false;
  }

  /** The order stage: the current event is applied (with what follows it), held, or dropped. */
  private offer(order: OrderStage, r: BatchReader, out: BatchResult): void {
    const version = order.version(this.decoder.event.body);
    if (version === null) {
      this.deadLetter(out, r, DeadLetterCode.BadVersion, badVersionMessage());
      return;
    }
    const bytes = r.bytes.subarray(r.entryStart, r.entryEnd);
    const offered = order.offer(keyLatin1(r), r.keyGroup, version, bytes, this.streamTime, this.released);
    if (offered === STALE) {
      out.counts.deduplicated++;
      this.types.count(DUPLICATE);
    }
    if (offered === APPLY || this.released.length > 0) this.settleReleased(out, r);
  }

  /**
   * Processes what the order stage released, in order: the current event of `r` (re-decoded when a
   * released one came before it), held entries applied after the order stage, or dead-lettered gaps.
   * Returns true when the shared decoded event now holds another entry than `r`'s.
   */
  private settleReleased(out: BatchResult, r: BatchReader | null): boolean {
    const list = this.released;
    let decoded = true;
    for (const item of list) {
      if (item.entry === null) {
        if (r === null) throw new Error('the order stage released the current event outside a batch');
        if (!decoded) this.decode(r); // decoded fine before: the same bytes decode the same
        if (this.passes(this.after, r, out)) this.apply(r, out);
        decoded = true;
        continue;
      }
      const held = heldReader(item.entry, this.nextReleased++);
      out.releasedIds.push(held.idBytes());
      if (item.gap) {
        decoded = false;
        this.decode(held); // for its type only
        this.deadLetter(
          out,
          held,
          DeadLetterCode.VersionGap,
          versionGapMessage(item.version),
          undefined,
          null,
        );
        continue;
      }
      decoded = false;
      const failure = this.decode(held);
      if (failure !== null) this.deadLetter(out, held, failure.code, failure.message);
      else if (this.passes(this.after, held, out)) this.apply(held, out);
    }
    list.length = 0;
    return !decoded;
  }

  /** The last stages for an event that got through: its projections, then its window or a pass-through copy. */
  private apply(r: BatchReader, out: BatchResult): void {
    const ev = this.decoder.event;
    const counts = out.counts;
    for (const p of this.projects) {
      if (!p.check(ev.body, ev.ts)) {
        this.deadLetter(out, r, DeadLetterCode.BadField, p.failureMessage());
        return;
      }
      p.add(keyLatin1(r), r.idBytes());
    }
    {
      if (this.window === null) {
        if (r.fieldCount > MAX_COPY_FIELDS) {
          this.deadLetter(out, r, DeadLetterCode.EntryTooLarge, tooManyFields(r.fieldCount));
          return;
        }
        const fields = this.mappedFields === null ? r.fields() : this.mappedFields(r, ev.body);
        if (fields.length > MAX_COPY_FIELDS) {
          this.deadLetter(out, r, DeadLetterCode.EntryTooLarge, tooManyFields(fields.length));
          return;
        }
        this.types.count(OK);
        out.passThrough.push(r.index);
        out.entryFields[r.index] = fields;
        out.eventTimes.push(ev.ts);
        return;
      }
      if (this.valuesAfterMap) {
        const failure = this.decoder.readValues();
        if (failure !== null) {
          this.deadLetter(out, r, failure.code, failure.message);
          return;
        }
      }
      const from = r.fieldStart(r.keyField);
      const to = r.fieldEnd(r.keyField);
      const hash = fnv1a(r.bytes, from, to); // as the router did: ~20 ns, cheaper than 4 more bytes per entry
      const added = this.window.addBytes(
        r.bytes,
        from,
        to,
        hash,
        r.keyGroup,
        ev.ts,
        ev.values,
        this.streamTime,
      );
      if (added !== ADDED) {
        if (added === LATE) {
          counts.late++;
          this.deadLetter(out, r, DeadLetterCode.Late, lateMessage(ev.ts, this.streamTime));
        } else this.deadLetter(out, r, DeadLetterCode.Overflow, this.window.overflowMessage());
        return;
      }
      this.types.count(OK);
      out.eventTimes.push(ev.ts);
    }
  }

  /** Dead-letters the current entry of `r` (batchOutput.ts) and counts it for its type; no envelope (for entries not decoded). */
  private dead(out: BatchResult, r: BatchReader, code: string, message: string, deliveries?: number): void {
    deadLetter(out, r, code, message, deliveries);
    this.types.count(DEAD_LETTERED);
  }

  /**
   * Called when the shard has been quiet from `quietSince` until `quietUntil` (wall ms; the main thread
   * knows when it last fed the shard or could not read, and `quietUntil` is the start of its latest read
   * that found the stream caught up — a read still in flight is no evidence of quiet): once `idleClose` ms
   * of quiet have passed, stream time follows the wall clock from the last event's stream time, so due
   * windows close without new events.
   */
  tick(quietUntil: number, quietSince: number): BatchResult {
    const out = emptyOutput();
    if (this.window !== null && this.idleClose > 0) {
      const quiet = quietUntil - quietSince;
      if (quiet >= this.idleClose) {
        const advanced = this.streamTimeAtLastEvent + quiet;
        if (advanced > this.streamTime) {
          this.streamTime = advanced;
          this.streamTimeChanged = true;
        }
      }
    }
    if (this.order !== null) {
      this.nextReleased = 0;
      this.order.advance(this.streamTime, this.released);
      this.settleReleased(out, null);
    }
    this.finish(out, this.tickSlice);
    return out;
  }

  /** Closes due windows (at most `slice` results) and collects the checkpoint delta. */
  private finish(out: BatchResult, slice: number): void {
    const state = out.state;
    if (this.window !== null) {
      out.counts.windowsEmitted = this.window.closeDue(this.streamTime, out.results, slice);
      const w = this.window.drain();
      state.windowWrites = w.writes;
      state.windowsOpened = w.opened;
      state.windowsClosed = w.closed;
      state.windowRemovals = w.removed;
      out.openWindows = this.window.openBuckets;
      out.closePending = this.window.closePending(this.streamTime);
    }
    if (this.dedup !== null) state.dedup = this.dedup.drain(this.streamTime);
    if (this.rateLimit !== null) state.rateLimit = this.rateLimit.drain(this.streamTime);
    if (this.order !== null) state.order = this.order.drain();
    for (const p of this.projects) for (const op of p.drain()) out.projections.push(op);
    out.counts.byType = this.types.drain();
    if (this.streamTimeChanged) {
      state.streamTime = this.streamTime;
      this.streamTimeChanged = false;
    }
  }
}
