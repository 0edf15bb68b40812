/**
 * Closing and emitting. A window `[start, start + size)` is due when the shard's stream time reaches
 * `start + size + grace`; the buckets are sorted by start, so the due ones are at the head of the list and
 * closing is a walk from there — no per-key timers or heaps.
 *
 * A close may emit a due bucket in slices (`maxResults` per call): it moves the bucket's `head` forward,
 * and the checkpoint then deletes the emitted fields, or a key group's whole hash once all its rows are
 * out (closed). Results come in window start order, then first-insertion order of the keys.
 */
import type { ByteString } from '../../../util/bytes.js';
import type { RowLayout } from './aggregates.js';
import type { Bucket, Buckets } from './buckets.js';

export class WindowCloser {
  constructor(
    private readonly buckets: Buckets,
    private readonly layout: RowLayout,
    private readonly size: number,
    private readonly grace: number,
  ) {}

  /** Whether a window is due at `streamTime` (`closeDue` has more to emit). */
  pending(streamTime: number): boolean {
    const b = this.buckets.first;
    return b !== undefined && b.start + this.size + this.grace <= streamTime;
  }

  /**
   * Emits (into `out`) and forgets the windows due at `streamTime`, at most `maxResults` results per call
   * (at least one, if any is due): a window left partly emitted stays first and the next call goes on
   * with it. Returns how many results.
   */
  closeDue(streamTime: number, out: ByteString[][], maxResults = Number.POSITIVE_INFINITY): number {
    const budget = maxResults >= 1 ? Math.floor(maxResults) : 1;
    let n = 0;
    for (let b = this.buckets.first; b !== undefined; b = this.buckets.first) {
      if (b.start + this.size + this.grace > streamTime) break;
      if (b.head < b.rows) {
        if (n === budget) break;
        const stop = Math.min(b.rows, b.head + (budget - n));
        n += stop - b.head;
        this.emit(b, stop, out);
        if (stop < b.rows) break;
      }
      this.buckets.dropFirst();
    }
    return n;
  }

  /** Emits rows `head` to `stop`; a key group that runs out of rows before the bucket does is closed. */
  private emit(b: Bucket, stop: number, out: ByteString[][]): void {
    const start = String(b.start);
    const end = String(b.start + this.size);
    const stride = this.layout.stride;
    const partial = stop < b.rows;
    for (let row = b.head; row < stop; row++) {
      out.push(this.layout.result(b.index.key(row), start, end, b.data, row * stride));
      const g = b.group[row] as number;
      const left = (b.groupRows[g] as number) - 1;
      b.groupRows[g] = left;
      if (left === 0 && partial) this.buckets.closeGroup(b, g);
    }
    b.head = stop;
  }
}
