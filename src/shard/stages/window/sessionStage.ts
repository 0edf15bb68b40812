/**
 * Session windows per key: a key's events less than `gap` apart in event time form one session; an event
 * that falls within `gap` of two sessions merges them. A session is `[first event, last event + gap)`: it
 * closes when the shard's stream time reaches `last + gap + grace`, and its result carries
 * `window_start` = its first event time, `window_end` = its last event time + gap.
 *
 * Late events: an event at `t` whose own session `[t, t + gap)` would already be closed is late. An event
 * whose own session is still open joins the open sessions within its reach; a session already closed (or
 * due) is final — its result is out or about to be — so an event near it starts a new session instead of
 * reopening it (docs/configuration.md, "Session windows").
 *
 *   keys (keyedState.ts)   "a" → [ S(10:00…10:04) ][ S(10:40…10:41) ]   the key's open sessions
 *   heap (dueHeap.ts)      sessions by the due time they were pushed with; a popped session whose last
 *                          event moved on is pushed again, a merged-away one is dropped
 *   session                first, last, row (count + aggregate slots, aggregates.ts), 1 object + 1 array
 *
 * Measured (bench/memory.ts, "bytes per open session"): see BENCHMARKS.md.
 */
import type { WindowConfig } from '../../../config/schema.js';
import type { ByteString } from '../../../util/bytes.js';
import { RowLayout } from './aggregates.js';
import { decodeAgg, encodeAgg, type WindowDrain } from './checkpoint.js';
import { type Due, DueHeap } from './dueHeap.js';
import { type KeyEntry, KeyedState } from './keyedState.js';
import { ADDED, type AddResult, LATE, OVERFLOW, type WindowOperator } from './windowStage.js';

interface Session extends Due {
  first: number;
  last: number;
  /** Count and aggregate slots (aggregates.ts). */
  readonly row: Float64Array;
  /** False once merged into another session or emitted. */
  alive: boolean;
  readonly entry: KeyEntry<Session[]>;
}

export class SessionStage implements WindowOperator {
  private readonly gap: number;
  private readonly grace: number;
  private readonly layout: RowLayout;
  private readonly keys: KeyedState<Session[]>;
  private readonly heap = new DueHeap<Session>();
  private open = 0;
  /** Scratch: the sessions an event reaches, and the merged row checked before anything changes. */
  private readonly hits: Session[] = [];
  private readonly merged: Float64Array;
  private overflowAggregate = 0;

  constructor(cfg: WindowConfig) {
    this.gap = cfg.gap ?? 0;
    this.grace = cfg.grace;
    this.layout = new RowLayout(cfg.aggregates);
    this.merged = new Float64Array(this.layout.stride);
    const layout = this.layout;
    this.keys = new KeyedState<Session[]>({
      isEmpty: (v) => v.length === 0,
      // `first,last,count,slot…` per session, `;` between sessions
      encode: (v) => v.map((s) => `${s.first},${s.last},${encodeAgg(s.row, 0, layout.offsets)}`).join(';'),
      decode: (text) =>
        text.split(';').map((part) => {
          const [first, last] = part.split(',', 2).map(Number) as [number, number];
          const row = new Float64Array(layout.stride);
          const rest = part.slice(part.indexOf(',', part.indexOf(',') + 1) + 1);
          if (!Number.isFinite(first) || !Number.isFinite(last) || !decodeAgg(rest, row, 0, layout.offsets)) {
            throw new Error(`session "${part}" is not first,last,count,slots of the configured aggregates`);
          }
          // the entry is set by restore(), which knows it
          return { first, last, row, alive: true, due: 0, entry: null as unknown as KeyEntry<Session[]> };
        }),
    });
  }

  /** Open sessions (the open-windows gauge). */
  get openBuckets(): number {
    return this.open;
  }

  addBytes(
    bytes: Uint8Array,
    start: number,
    end: number,
    _hash: number,
    keyGroup: number,
    ts: number,
    values: Float64Array,
    streamTime: number,
  ): AddResult {
    if (ts + this.gap + this.grace <= streamTime) return LATE;
    const e = this.keys.find(bytes, start, end);
    const hits = this.hits;
    hits.length = 0;
    if (e !== null) {
      for (const s of e.value) {
        if (
          s.first - this.gap < ts &&
          ts < s.last + this.gap &&
          s.last + this.gap + this.grace > streamTime
        ) {
          hits.push(s);
        }
      }
    }
    if (hits.length === 0) {
      const entry = e ?? this.keys.get(bytes, start, end, keyGroup, () => []);
      const row = Float64Array.from(this.layout.empty);
      this.layout.add(row, 0, values);
      const s: Session = { first: ts, last: ts, row, alive: true, due: ts + this.gap, entry };
      entry.value.push(s);
      this.heap.push(s);
      this.open++;
      this.keys.touch(entry);
      return ADDED;
    }
    // Check the merge before changing anything: the sessions' sums add up, then the event's values.
    const into = hits[0] as Session;
    const m = this.merged;
    m.set(into.row);
    for (let i = 1; i < hits.length; i++) {
      const r = (hits[i] as Session).row;
      const o = this.layout.sums ? this.layout.overflowingCombine(m, 0, r, 0) : -1;
      if (o >= 0) return this.overflow(o);
      this.layout.combine(m, 0, r, 0);
    }
    const o = this.layout.sums ? this.layout.overflowingSum(m, 0, values) : -1;
    if (o >= 0) return this.overflow(o);
    this.layout.add(m, 0, values);
    into.row.set(m);
    if (ts < into.first) into.first = ts;
    if (ts > into.last) into.last = ts;
    const list = (e as KeyEntry<Session[]>).value;
    for (let i = 1; i < hits.length; i++) {
      const s = hits[i] as Session;
      if (s.first < into.first) into.first = s.first;
      if (s.last > into.last) into.last = s.last;
      s.alive = false; // left in the heap until popped
      list.splice(list.indexOf(s), 1);
      this.open--;
    }
    hits.length = 0;
    this.keys.touch(e as KeyEntry<Session[]>);
    return ADDED;
  }

  private overflow(aggregate: number): AddResult {
    this.overflowAggregate = aggregate;
    this.hits.length = 0;
    return OVERFLOW;
  }

  overflowMessage(): string {
    const name = this.layout.names[this.overflowAggregate] as string;
    return (
      `${name} of the key's session would exceed ${Number.MAX_VALUE} in magnitude; the event changed no ` +
      'session (a value this large is usually a producer bug; if such sums are real, aggregate the field ' +
      'in a larger unit)'
    );
  }

  closePending(streamTime: number): boolean {
    const s = this.heap.peek();
    return s !== undefined && s.due + this.grace <= streamTime;
  }

  /**
   * Emits (into `out`) and forgets the sessions due at `streamTime`, at most `maxResults` per call (at least
   * one if any is due), in due order. On return the heap's head is a session that is due (more to emit)
   * or none is, so {@link closePending} is exact.
   */
  closeDue(streamTime: number, out: ByteString[][], maxResults = Number.POSITIVE_INFINITY): number {
    const budget = maxResults >= 1 ? Math.floor(maxResults) : 1;
    let n = 0;
    for (
      let s = this.heap.peek();
      s !== undefined && s.due + this.grace <= streamTime;
      s = this.heap.peek()
    ) {
      if (!s.alive) {
        this.heap.pop();
        continue;
      }
      if (s.last + this.gap > s.due) {
        this.heap.pop(); // extended since it was pushed
        s.due = s.last + this.gap;
        this.heap.push(s);
        continue;
      }
      if (n === budget) break;
      this.heap.pop();
      out.push(this.layout.result(s.entry.key, String(s.first), String(s.last + this.gap), s.row, 0));
      n++;
      s.alive = false;
      const list = s.entry.value;
      list.splice(list.indexOf(s), 1);
      this.open--;
      this.keys.touch(s.entry);
    }
    return n;
  }

  drain(): WindowDrain {
    return this.keys.drain();
  }

  restore(keyGroup: number, start: number, fields: readonly ByteString[]): void {
    this.keys.restore(keyGroup, start, fields, (e) => {
      for (const s of e.value) {
        (s as { entry: KeyEntry<Session[]> }).entry = e;
        s.due = s.last + this.gap;
        this.heap.push(s);
        this.open++;
      }
    });
  }
}
