/**
 * Shard input built by hand, for tests that drive a shard or the batch codec without a Redis read: entries
 * held as Buffers, packed through the batch format's one writer (`BatchWriter.add`, which the router's open
 * batches use).
 */
import { BatchWriter } from '../../src/routing/batchCodec.js';

/** An entry as a test holds it: Buffers. */
export interface RawEntry {
  id: Buffer;
  fields: Buffer[];
}

/** Packs entries into one batch: each entry is laid out contiguously first, so the writer copies ranges. */
export function packBatch(
  entries: RawEntry[],
  keyGroups: ArrayLike<number>,
  keyFields: ArrayLike<number>,
  /** Delivery count per entry; absent = all first deliveries. */
  deliveries?: ArrayLike<number>,
): ArrayBuffer {
  const w = new BatchWriter();
  entries.forEach((e, i) => {
    const src = Buffer.concat([e.id, ...e.fields]);
    const starts = new Int32Array(e.fields.length);
    const lens = new Int32Array(e.fields.length);
    let at = e.id.length;
    e.fields.forEach((f, j) => {
      starts[j] = at;
      lens[j] = f.length;
      at += f.length;
    });
    const head = {
      keyGroup: keyGroups[i] as number,
      keyField: keyFields[i] as number,
      deliveries: deliveries === undefined ? 1 : (deliveries[i] as number),
      flags: 0,
    };
    w.add(src, 0, e.id.length, e.fields.length, starts, lens, head);
  });
  return w.take().buf;
}
