/**
 * Event-time windows per key, aligned to the epoch: `[start, start + size)`, a new one every `advance`
 * (= size for tumbling). A window closes when the shard's stream time reaches `end + grace`; an event all of
 * whose windows have closed is late.
 *
 * Layout: windows are epoch-aligned, so every key shares the same window starts. State is therefore a
 * sorted list of *buckets* (one per window start), each a Map key → aggregate. Closing is a walk from the
 * head of the list while `start + size + grace <= streamTime` — no per-key timers or heaps.
 *
 *   buckets (sorted by start)   [ 10:00 ]──[ 10:05 ]──[ 10:10 ]
 *                                  │           │
 *                           key → Float64Array [keyGroup, count, slot1, slot2, …]
 *
 * An aggregate is one Float64Array: its key group (for the checkpoint), the count, and one slot per
 * configured aggregate (sum/avg hold the sum, min/max the extreme). It is checkpointed as the decimal
 * numbers after the key group, comma-separated, readable with redis-cli.
 */
import type { Aggregate, WindowConfig } from '../../config/schema.js';

interface Bucket {
  start: number;
  aggs: Map<string, Float64Array>;
  /** Keys changed since the last drain. */
  dirty: Set<string>;
  /** Key groups holding state in this bucket (to delete their checkpoint on close). */
  keyGroups: Set<number>;
  /** Key groups that got their first key in this bucket since the last drain. */
  newGroups: Set<number>;
}

export interface WindowDrain {
  writes: Array<{ keyGroup: number; start: number; fields: string[] }>;
  opened: Array<{ keyGroup: number; start: number }>;
  closed: Array<{ keyGroup: number; start: number }>;
}

const FN_SUM = 0;
const FN_MIN = 1;
const FN_MAX = 2;
const FN_AVG = 3;
const FN_COUNT = 4;

export class WindowStage {
  private readonly size: number;
  private readonly advance: number;
  private readonly grace: number;
  private readonly fns: Int8Array;
  /** Result field names after `key, window_start, window_end, count`. */
  private readonly names: string[];
  private readonly slots: number;
  private buckets: Bucket[] = [];
  private closedThisDrain: Array<{ keyGroup: number; start: number }> = [];

  constructor(cfg: WindowConfig) {
    this.size = cfg.size;
    this.advance = cfg.type === 'hopping' && cfg.advance !== undefined ? cfg.advance : cfg.size;
    this.grace = cfg.grace;
    this.fns = Int8Array.from(cfg.aggregates.map(fnCode));
    this.slots = cfg.aggregates.length;
    this.names = resultNames(cfg.aggregates);
  }

  get openBuckets(): number {
    return this.buckets.length;
  }

  /**
   * Adds an event to every window of `ts` that is still open. Returns false when all of them have closed
   * (the event is late). `values` are the aggregated fields in aggregate order.
   */
  add(key: string, keyGroup: number, ts: number, values: Float64Array, streamTime: number): boolean {
    const last = Math.floor(ts / this.advance) * this.advance; // latest window start containing ts
    let added = false;
    for (let start = last; start > ts - this.size; start -= this.advance) {
      if (start + this.size + this.grace <= streamTime) break; // this and every earlier start are closed
      this.addTo(this.bucket(start), key, keyGroup, values);
      added = true;
    }
    return added;
  }

  private addTo(b: Bucket, key: string, keyGroup: number, values: Float64Array): void {
    let agg = b.aggs.get(key);
    if (agg === undefined) {
      agg = new Float64Array(2 + this.slots);
      agg[0] = keyGroup;
      for (let i = 0; i < this.slots; i++) {
        const fn = this.fns[i];
        agg[2 + i] = fn === FN_MIN ? Number.POSITIVE_INFINITY : fn === FN_MAX ? Number.NEGATIVE_INFINITY : 0;
      }
      b.aggs.set(key, agg);
      if (!b.keyGroups.has(keyGroup)) {
        b.keyGroups.add(keyGroup);
        b.newGroups.add(keyGroup);
      }
    }
    agg[1] = (agg[1] as number) + 1;
    for (let i = 0; i < this.slots; i++) {
      const v = values[i] as number;
      const j = 2 + i;
      switch (this.fns[i]) {
        case FN_SUM:
        case FN_AVG:
          agg[j] = (agg[j] as number) + v;
          break;
        case FN_MIN:
          if (v < (agg[j] as number)) agg[j] = v;
          break;
        case FN_MAX:
          if (v > (agg[j] as number)) agg[j] = v;
          break;
      }
    }
    b.dirty.add(key);
  }

  /** The bucket for `start`, created in sorted position if missing (usually at the tail). */
  private bucket(start: number): Bucket {
    const bs = this.buckets;
    let i = bs.length - 1;
    while (i >= 0 && (bs[i] as Bucket).start > start) i--;
    if (i >= 0 && (bs[i] as Bucket).start === start) return bs[i] as Bucket;
    const b: Bucket = {
      start,
      aggs: new Map(),
      dirty: new Set(),
      keyGroups: new Set(),
      newGroups: new Set(),
    };
    bs.splice(i + 1, 0, b);
    return b;
  }

  /** Emits (into `out`) and forgets every window due at `streamTime`; returns how many results. */
  closeDue(streamTime: number, out: string[][]): number {
    let n = 0;
    while (this.buckets.length > 0) {
      const b = this.buckets[0] as Bucket;
      const end = b.start + this.size;
      if (end + this.grace > streamTime) break;
      this.buckets.shift();
      const startStr = String(b.start);
      const endStr = String(end);
      for (const [key, agg] of b.aggs) {
        out.push(this.result(key, startStr, endStr, agg));
        n++;
      }
      for (const g of b.keyGroups) this.closedThisDrain.push({ keyGroup: g, start: b.start });
    }
    return n;
  }

  private result(key: string, start: string, end: string, agg: Float64Array): string[] {
    const count = agg[1] as number;
    const r = ['key', key, 'window_start', start, 'window_end', end, 'count', String(count)];
    for (let i = 0; i < this.slots; i++) {
      const fn = this.fns[i];
      if (fn === FN_COUNT) continue;
      const v = agg[2 + i] as number;
      r.push(this.names[i] as string, String(fn === FN_AVG ? v / count : v));
    }
    return r;
  }

  /** Checkpoint changes since the last call. */
  drain(): WindowDrain {
    const writes: WindowDrain['writes'] = [];
    const opened: WindowDrain['opened'] = [];
    for (const b of this.buckets) {
      for (const g of b.newGroups) opened.push({ keyGroup: g, start: b.start });
      b.newGroups.clear();
      if (b.dirty.size === 0) continue;
      const byGroup = new Map<number, string[]>();
      for (const key of b.dirty) {
        const agg = b.aggs.get(key) as Float64Array;
        const g = agg[0] as number;
        let fields = byGroup.get(g);
        if (fields === undefined) {
          fields = [];
          byGroup.set(g, fields);
        }
        fields.push(key, encodeAgg(agg));
      }
      b.dirty.clear();
      for (const [keyGroup, fields] of byGroup) writes.push({ keyGroup, start: b.start, fields });
    }
    const closed = this.closedThisDrain;
    this.closedThisDrain = [];
    return { writes, opened, closed };
  }

  /** Restores one checkpointed bucket of one key group. */
  restore(keyGroup: number, start: number, fields: string[]): void {
    const b = this.bucket(start);
    b.keyGroups.add(keyGroup);
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const agg = decodeAgg(fields[i + 1] as string, keyGroup, this.slots);
      if (agg === null) {
        throw new Error(
          `checkpoint of window ${start} (key group ${keyGroup}) does not match the configured aggregates; ` +
            'the window stage changed since it was written',
        );
      }
      b.aggs.set(fields[i] as string, agg);
    }
  }
}

function fnCode(a: Aggregate): number {
  switch (a.fn) {
    case 'sum':
      return FN_SUM;
    case 'min':
      return FN_MIN;
    case 'max':
      return FN_MAX;
    case 'avg':
      return FN_AVG;
    case 'count':
      return FN_COUNT;
  }
}

/** `<fn>_<field>` per aggregate (`count` has no field of its own: it is always emitted as `count`). */
export function resultNames(aggregates: Aggregate[]): string[] {
  return aggregates.map((a) =>
    a.fn === 'count' ? 'count' : `${a.fn}_${(a.field ?? '').replaceAll('.', '_')}`,
  );
}

export function encodeAgg(agg: Float64Array): string {
  let s = String(agg[1]);
  for (let i = 2; i < agg.length; i++) s += `,${agg[i]}`;
  return s;
}

export function decodeAgg(text: string, keyGroup: number, slots: number): Float64Array | null {
  const parts = text.split(',');
  if (parts.length !== slots + 1) return null;
  const agg = new Float64Array(2 + slots);
  agg[0] = keyGroup;
  for (let i = 0; i < parts.length; i++) agg[1 + i] = Number(parts[i]);
  return agg;
}
