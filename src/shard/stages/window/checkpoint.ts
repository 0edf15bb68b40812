/**
 * The window stage's checkpoint: per key group and window start, a hash of key → the row's numbers, and
 * the start in the key group's window index (redis/checkpointKeys.ts). A drain lists what changed since
 * the last one — rows written, hashes opened and closed, fields of emitted rows to delete — and a restore
 * rebuilds buckets from the stored hashes.
 *
 * A row is checkpointed as `count,slot1,slot2,…` with a slot per aggregate (0 for `count`), decimal
 * numbers readable with redis-cli.
 */
import { latin1 } from '../../../routing/batchCodec.js';
import type { ByteString } from '../../../util/bytes.js';
import type { RowLayout } from './aggregates.js';
import { type BucketRef, type Buckets, FRESH, HELD, SAVED } from './buckets.js';

/**
 * Checkpoint changes. Keys are `KeyIndex.key`s (keyIndex.ts): text when valid UTF-8, else their exact
 * bytes, so a hash field is always the key's exact bytes.
 */
export interface WindowDrain {
  writes: Array<{ keyGroup: number; start: number; fields: ByteString[] }>;
  opened: BucketRef[];
  closed: BucketRef[];
  /** Fields to delete: keys emitted from a window whose key group still has rows in it. */
  removed: Array<{ keyGroup: number; start: number; keys: ByteString[] }>;
}

/** The checkpoint changes of `buckets` since the last drain. */
export function drainChanges(buckets: Buckets, layout: RowLayout): WindowDrain {
  const writes: WindowDrain['writes'] = [];
  const opened: WindowDrain['opened'] = [];
  const removed: WindowDrain['removed'] = [];
  for (const b of buckets.all) {
    for (const g of b.fresh) {
      if (((b.groupFlags[g] as number) & HELD) !== 0) opened.push({ keyGroup: g, start: b.start });
      b.groupFlags[g] = (b.groupFlags[g] as number) & ~FRESH;
    }
    b.fresh.length = 0;
    if (b.drainedHead < b.head) {
      const byGroup = new Map<number, ByteString[]>();
      for (let row = b.drainedHead; row < b.head; row++) {
        const g = b.group[row] as number;
        // A group no longer HELD was closed as a whole; a row never SAVED has no field to delete.
        if (((b.groupFlags[g] as number) & HELD) === 0 || ((b.flags[row] as number) & SAVED) === 0) continue;
        groupList(byGroup, g).push(b.index.key(row));
      }
      b.drainedHead = b.head;
      for (const [keyGroup, keys] of byGroup) removed.push({ keyGroup, start: b.start, keys });
    }
    if (b.dirtyCount === 0) continue;
    const byGroup = new Map<number, ByteString[]>();
    for (let i = 0; i < b.dirtyCount; i++) {
      const row = b.dirty[i] as number;
      if (row < b.head) {
        b.flags[row] = 0; // emitted: its field is in `removed` if it had one
        continue;
      }
      b.flags[row] = SAVED;
      const fields = groupList(byGroup, b.group[row] as number);
      fields.push(b.index.key(row), encodeAgg(b.data, row * layout.stride, layout.offsets));
    }
    b.dirtyCount = 0;
    for (const [keyGroup, fields] of byGroup) writes.push({ keyGroup, start: b.start, fields });
  }
  return { writes, opened, closed: buckets.takeClosed(), removed };
}

/**
 * Restores one checkpointed bucket of one key group: `[key, encodedAggregate, …]`, each as text or as
 * the exact bytes read back from its hash (a key that is not valid UTF-8 must stay bytes).
 */
export function restoreBucket(
  buckets: Buckets,
  layout: RowLayout,
  keyGroup: number,
  start: number,
  fields: readonly ByteString[],
): void {
  const b = buckets.get(start);
  const parsed = new Float64Array(layout.stride);
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const agg = fields[i + 1] as ByteString;
    const text = typeof agg === 'string' ? agg : latin1(agg, 0, agg.length);
    if (!decodeAgg(text, parsed, 0, layout.offsets)) {
      throw new Error(
        `checkpoint of window ${start} (key group ${keyGroup}) does not match the configured aggregates; ` +
          'the window stage changed since it was written',
      );
    }
    const { row: at, added } = b.index.rowOf(fields[i] as ByteString);
    const row = added ? b.newRow(at, keyGroup, layout.empty) : at;
    b.data.set(parsed, row * layout.stride);
    b.flags[row] = (b.flags[row] as number) | SAVED;
  }
  if (keyGroup >= b.groupRows.length) b.fitGroup(keyGroup);
  b.hold(keyGroup, HELD); // its window index entry exists already
}

/**
 * The checkpoint text of the aggregate at `data[at]`: `count,slot1,slot2,…`, one slot per aggregate at
 * `data[at + offsets[i]]`; a `count` aggregate (offset -1) has no state and is written as 0.
 */
export function encodeAgg(data: Float64Array, at: number, offsets: Int32Array): string {
  let s = String(data[at]);
  for (let i = 0; i < offsets.length; i++) {
    const o = offsets[i] as number;
    s += o < 0 ? ',0' : `,${data[at + o]}`;
  }
  return s;
}

/** Parses checkpoint text into `data[at…]` (see `encodeAgg`); false when the number of slots differs. */
export function decodeAgg(text: string, data: Float64Array, at: number, offsets: Int32Array): boolean {
  const parts = text.split(',');
  if (parts.length !== 1 + offsets.length) return false;
  data[at] = Number(parts[0]);
  for (let i = 0; i < offsets.length; i++) {
    const o = offsets[i] as number;
    if (o >= 0) data[at + o] = Number(parts[1 + i]);
  }
  return true;
}

function groupList(byGroup: Map<number, ByteString[]>, g: number): ByteString[] {
  let list = byGroup.get(g);
  if (list === undefined) {
    list = [];
    byGroup.set(g, list);
  }
  return list;
}
