/**
 * Micro benchmarks of the hot path, per batch of 1,000 generated events over 10,000 keys (msgpack bodies,
 * 5% duplicates): key hashing + routing, batch packing, the shard's stages (decode, dedup, window), and
 * building the encoded commit. Prints ops/s and latency percentiles; saves bench/results/micro-*.json.
 *
 *   npm run bench
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';
import { CommitBuilder } from '../src/commit/commitBuilder.js';
import { parseConfig } from '../src/config/load.js';
import { generateEvents } from '../src/produce/generator.js';
import { entrySize, packBatch, type RawEntry } from '../src/routing/batchCodec.js';
import { OpenBatch, Router } from '../src/routing/router.js';
import { Shard } from '../src/shard/shard.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BATCH = 1000;

const config = parseConfig(
  `source: { stream: in }
sink: { stream: out }
deadLetter: { stream: dlq }
shards: 1
stages:
  - dedup: { ttl: 10m, maxEntries: 200000 }
  - window: { size: 5s, grace: 1s, idleClose: 0, aggregates: [{ fn: sum, field: amount }, { fn: max, field: amount }, { fn: min, field: amount }] }
`,
  'bench',
  { env: {} },
);

const entries: RawEntry[] = [];
let i = 0;
for (const e of generateEvents({
  count: 200 * BATCH,
  keys: 10_000,
  seed: 3,
  duplicatePct: 5,
  outOfOrderPct: 0,
  malformedPct: 0,
  startTs: 1_700_000_000_000,
  intervalMs: 1,
  outOfOrderMaxMs: 1,
  encoding: 'msgpack',
})) {
  entries.push({ id: Buffer.from(`1700000000000-${i++}`), fields: e.fields.map((f) => Buffer.from(f)) });
}
const batches: RawEntry[][] = [];
for (let j = 0; j < entries.length; j += BATCH) batches.push(entries.slice(j, j + BATCH));

const router = new Router('key', 256, 1);
function routed(b: RawEntry[]): OpenBatch {
  const open = [new OpenBatch()];
  router.route(b, open, 0);
  return open[0] as OpenBatch;
}
const packed = batches.map((b) => routed(b));

let k = 0;
const next = <T>(xs: T[]): T => xs[k++ % xs.length] as T;

/**
 * Feeds the packed batches in stream order to a shard, starting a fresh shard whenever the input wraps:
 * replaying the same events into the same shard would measure duplicates and late events instead.
 */
function shardRunner(withCommit: boolean): () => void {
  let shard = new Shard(config);
  const builder = new CommitBuilder(config, 0);
  let n = 0;
  return () => {
    if (n === packed.length) {
      shard = new Shard(config);
      n = 0;
    }
    const b = packed[n++] as OpenBatch;
    const r = shard.processBatch(
      packBatch(b.entries, Uint16Array.from(b.keyGroups), Uint16Array.from(b.keyFields), b.bytes),
    );
    if (withCommit) builder.build(r);
  };
}

const bench = new Bench({ name: `hot path, per batch of ${BATCH} events`, time: 1500 });
bench
  .add('route (find key field, FNV-1a, key group, shard)', () => {
    routed(next(batches));
  })
  .add('pack batch into one ArrayBuffer', () => {
    const b = next(packed);
    packBatch(b.entries, Uint16Array.from(b.keyGroups), Uint16Array.from(b.keyFields), b.bytes);
  })
  .add('pack + shard stages: decode, dedup, window, close', shardRunner(false))
  .add('pack + shard stages + commit build (worker total)', shardRunner(true));

process.stderr.write(
  `running ${bench.tasks.length} benchmarks (${entries.reduce((n, e) => n + entrySize(e), 0) / entries.length} bytes/entry)…\n`,
);
await bench.run();

const rows = bench.tasks.map((t) => {
  const r = t.result;
  if (r === undefined || !('latency' in r)) return { task: t.name, error: 'no result' };
  return {
    task: t.name,
    'batches/s': Math.round(r.throughput.mean),
    'events/s': Math.round(r.throughput.mean * BATCH),
    'p50 ms': Number(r.latency.p50?.toFixed(3)),
    'p99 ms': Number(r.latency.p99?.toFixed(3)),
    samples: r.latency.samplesCount,
  };
});
console.log(bench.name);
console.table(rows);
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
const file = join(ROOT, `bench/results/micro-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(
  file,
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, rows }, null, 2)}\n`,
);
process.stderr.write(`saved ${file}\n`);
