/**
 * What a window row holds and how an event changes it. A row is `stride` consecutive numbers of its
 * bucket's `data` column (buckets.ts): the count, then one slot per configured aggregate but `count`
 * (`sum`/`avg` hold the sum, `min`/`max` the extreme). The layout is worked out once from the config;
 * adding an event, the overflow check and the result are loops over small typed arrays.
 */
import type { Aggregate } from '../../../config/schema.js';
import type { ByteString } from '../../../util/bytes.js';

const FN_SUM = 0;
const FN_MIN = 1;
const FN_MAX = 2;
const FN_AVG = 3;
const FN_COUNT = 4;

export class RowLayout {
  /** Per aggregate, its function. */
  private readonly fns: Int8Array;
  /** Result field names after `key, window_start, window_end, count`, per aggregate. */
  readonly names: string[];
  /** Per aggregate, its offset in a row, or -1 for `count` (it has no state of its own). */
  readonly offsets: Int32Array;
  /** Per stored slot (offset - 1), its function and the index of its value in an event's `values`. */
  private readonly slotFns: Int8Array;
  private readonly slotValues: Int32Array;
  /** Row width: the count, then the slots. */
  readonly stride: number;
  /** A new row's values. */
  readonly empty: Float64Array;
  /** Whether a slot holds a sum (`sum`, `avg`): adding to it can overflow. */
  readonly sums: boolean;

  constructor(aggregates: Aggregate[]) {
    this.fns = Int8Array.from(aggregates.map(fnCode));
    this.names = resultNames(aggregates);
    const stored = [...this.fns.keys()].filter((i) => this.fns[i] !== FN_COUNT);
    this.offsets = Int32Array.from(this.fns, (fn, i) => (fn === FN_COUNT ? -1 : 1 + stored.indexOf(i)));
    this.slotFns = Int8Array.from(stored, (i) => this.fns[i] as number);
    this.slotValues = Int32Array.from(stored);
    this.stride = 1 + stored.length;
    this.empty = Float64Array.from([0, ...this.slotFns].map((fn, c) => (c === 0 ? 0 : initial(fn))));
    this.sums = this.slotFns.some((fn) => fn === FN_SUM || fn === FN_AVG);
  }

  /** Counts an event whose aggregated fields are `values` (in aggregate order) into the row at `d[at]`. */
  add(d: Float64Array, at: number, values: Float64Array): void {
    d[at] = (d[at] as number) + 1;
    for (let c = 0; c < this.slotFns.length; c++) {
      const v = values[this.slotValues[c] as number] as number;
      const j = at + 1 + c;
      switch (this.slotFns[c]) {
        case FN_SUM:
        case FN_AVG:
          d[j] = (d[j] as number) + v;
          break;
        case FN_MIN:
          if (v < (d[j] as number)) d[j] = v;
          break;
        case FN_MAX:
          if (v > (d[j] as number)) d[j] = v;
          break;
      }
    }
  }

  /**
   * The aggregate (its index in {@link names}) whose sum would stop being finite if `values` were added to
   * the row at `d[at]`, or -1 when none would.
   */
  overflowingSum(d: Float64Array, at: number, values: Float64Array): number {
    for (let c = 0; c < this.slotFns.length; c++) {
      const fn = this.slotFns[c];
      if (fn !== FN_SUM && fn !== FN_AVG) continue;
      const sum = (d[at + 1 + c] as number) + (values[this.slotValues[c] as number] as number);
      // ±Infinity (the only non-finite sum of finite numbers) gives NaN here
      if (sum - sum !== 0) return this.slotValues[c] as number;
    }
    return -1;
  }

  /** Adds the row at `s[sAt]` into the row at `d[at]` (two sessions merging: counts and sums add up). */
  combine(d: Float64Array, at: number, s: Float64Array, sAt: number): void {
    d[at] = (d[at] as number) + (s[sAt] as number);
    for (let c = 0; c < this.slotFns.length; c++) {
      const j = at + 1 + c;
      const v = s[sAt + 1 + c] as number;
      const fn = this.slotFns[c];
      if (fn === FN_SUM || fn === FN_AVG) d[j] = (d[j] as number) + v;
      else if (fn === FN_MIN ? v < (d[j] as number) : v > (d[j] as number)) d[j] = v;
    }
  }

  /** Like {@link overflowingSum}, for combining the row at `s[sAt]` into the row at `d[at]`. */
  overflowingCombine(d: Float64Array, at: number, s: Float64Array, sAt: number): number {
    for (let c = 0; c < this.slotFns.length; c++) {
      const fn = this.slotFns[c];
      if (fn !== FN_SUM && fn !== FN_AVG) continue;
      const sum = (d[at + 1 + c] as number) + (s[sAt + 1 + c] as number);
      if (sum - sum !== 0) return this.slotValues[c] as number;
    }
    return -1;
  }

  /** The result of the row at `d[at]`: `key, window_start, window_end, count`, then a field per aggregate. */
  result(key: ByteString, start: string, end: string, d: Float64Array, at: number): ByteString[] {
    const count = d[at] as number;
    const r: ByteString[] = ['key', key, 'window_start', start, 'window_end', end, 'count', String(count)];
    for (let i = 0; i < this.fns.length; i++) {
      const fn = this.fns[i];
      if (fn === FN_COUNT) continue;
      const v = d[at + (this.offsets[i] as number)] as number;
      r.push(this.names[i] as string, String(fn === FN_AVG ? v / count : v));
    }
    return r;
  }
}

/** `<fn>_<field>` per aggregate (`count` has no field of its own: it is always emitted as `count`). */
export function resultNames(aggregates: Aggregate[]): string[] {
  return aggregates.map((a) =>
    a.fn === 'count' ? 'count' : `${a.fn}_${(a.field ?? '').replaceAll('.', '_')}`,
  );
}

function initial(fn: number): number {
  return fn === FN_MIN ? Number.POSITIVE_INFINITY : fn === FN_MAX ? Number.NEGATIVE_INFINITY : 0;
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
