/**
 * Bytes per event an `order` stage holds while a version is missing (the memory bench's `held` row),
 * measured in this process: V8 heap + array buffers after a full GC, before and after holding `events`
 * entries of the bench's shape (a ~10-byte key, a ~70-byte msgpack body) over `keys` keys.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { encode } from '@msgpack/msgpack';
import { BatchReader, BatchWriter } from '../../src/routing/batchCodec.js';
import { OrderStage, type Released } from '../../src/shard/stages/order/orderStage.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function used(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** One packed entry as the router writes it. */
function entry(key: string, v: number): BatchReader {
  const body = Buffer.from(
    encode({ id: `${key}-${v}`, ts: 1_700_000_000_000 + v, v, amount: 417, type: 'order' }),
  );
  const fields = [Buffer.from('key'), Buffer.from(key), Buffer.from('data'), body];
  const id = Buffer.from(`1700000000000-${v}`);
  const src = Buffer.concat([id, ...fields]);
  const starts = new Int32Array(4);
  const lens = new Int32Array(4);
  let at = id.length;
  fields.forEach((f, i) => {
    starts[i] = at;
    lens[i] = f.length;
    at += f.length;
  });
  const w = new BatchWriter(256);
  w.add(src, 0, id.length, 4, starts, lens, { keyGroup: 7, keyField: 1, deliveries: 1, flags: 0 });
  const r = new BatchReader(w.take().buf);
  r.next();
  return r;
}

export function bytesPerHeldEvent(keys: number, perKey: number): { bytes: number; entryBytes: number } {
  const stage = new OrderStage({
    versionPath: 'v',
    maxBuffered: perKey,
    timeout: 60_000,
    onGap: 'skip',
    keyTtl: 3_600_000,
  });
  const out: Released = [];
  const names = Array.from({ length: keys }, (_, k) => `cust-${k}`);
  // every key applies version 1, so the memory measured below is the held events only
  for (const key of names) stage.offer(key, 7, 1, entry(key, 1).bytes, 0, out);
  out.length = 0;
  stage.drain();
  const before = used();
  let entryBytes = 0;
  for (const key of names) {
    for (let v = 3; v < 3 + perKey; v++) {
      const r = entry(key, v);
      entryBytes += r.entryEnd - r.entryStart;
      stage.offer(key, 7, v, r.bytes.subarray(r.entryStart, r.entryEnd), 0, out);
    }
  }
  stage.drain(); // the checkpoint delta is built once and dropped, as after a commit
  const after = used();
  if (stage.held !== keys * perKey)
    throw new Error(`expected ${keys * perKey} held events, got ${stage.held}`);
  return {
    bytes: Math.round((after - before) / stage.held),
    entryBytes: Math.round(entryBytes / stage.held),
  };
}
