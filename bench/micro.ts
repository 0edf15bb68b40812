/**
 * Micro benchmarks of the hot path (tinybench, one thread), on the stages of bench/streamshard.yaml and
 * generated input (10,000 keys, 5% duplicates, events 1 ms apart). Most operations take one batch of
 * 1,000 events, as the engine does; the window-close and result-encoding rows take what closing one
 * 10 s window emits. Prints ops/s, items/s and tinybench's p50/p99 per operation; saves
 * bench/results/micro-*.json.
 *
 *   npm run bench [-- --time 1500]      (--filter TEXT runs only the tasks whose name contains TEXT)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import type { WindowConfig } from '../src/config/schema.js';
import { BatchReader, latin1 } from '../src/routing/batchCodec.js';
import { fnv1a, keyGroupOf } from '../src/routing/hash.js';
import { type OpenBatch, Router } from '../src/routing/router.js';
import { emptyStateDelta } from '../src/shard/batchOutput.js';
import { CommitBuilder } from '../src/shard/commitBuilder.js';
import type { BatchResult } from '../src/shard/protocol.js';
import { Shard } from '../src/shard/shard.js';
import { EventDecoder } from '../src/shard/stages/decode.js';
import { OrderStage, type Released } from '../src/shard/stages/order/orderStage.js';
import { ProjectStage } from '../src/shard/stages/project/projectStage.js';
import { RateLimitStage } from '../src/shard/stages/rateLimit/rateLimitStage.js';
import { contentKey } from '../src/shard/stages/dedup/contentKey.js';
import { DedupStage } from '../src/shard/stages/dedup/dedupStage.js';
import { windowOperator } from '../src/shard/stages/window/operator.js';
import { WindowStage } from '../src/shard/stages/window/windowStage.js';
import type { ByteString } from '../src/util/bytes.js';
import { ROOT } from './lib/contender.js';
import { parseFlags } from './lib/flags.js';
import { expressionTasks } from './microExpr.js';
import {
  BATCH,
  benchConfig,
  type EventFacts,
  entryBatches,
  pack,
  replyOf,
  routed,
  shardOutputs,
} from './lib/microFixtures.js';

const o = parseFlags(
  process.argv.slice(2),
  { time: 1500, filter: '' },
  'npm run bench -- [--time MS] [--filter TEXT]',
);

// ---- fixtures (not timed) -------------------------------------------------------------------------------
process.stderr.write('building fixtures…\n');
const config = benchConfig(1);
const window = (config.stages.find((s) => 'window' in s) as { window: WindowConfig }).window;
const msgpackBatches = entryBatches(400, 'msgpack');
const jsonBatches = entryBatches(20, 'json');
const router1 = new Router('key', config.keyGroups, 1);
const router2 = new Router('key', config.keyGroups, 2);
const msgpackReplies = msgpackBatches.map((b) => replyOf(b));
const open = msgpackReplies.map((b) => routed(router1, b)[0] as OpenBatch);
const openJson = jsonBatches.map((b) => routed(router1, replyOf(b))[0] as OpenBatch);
const keyBytes = msgpackBatches[0]?.map((e) => e.fields[1] as Buffer) ?? [];

const facts: EventFacts[][] = open.map((b) => {
  const d = new EventDecoder({ body: config.body, needId: true, aggregates: window.aggregates });
  const r = new BatchReader(pack(b));
  const out: EventFacts[] = [];
  while (r.next()) {
    if (d.decode(r) !== null) continue;
    const keyBytes = r.field(r.keyField).slice();
    out.push({
      key: new TextDecoder().decode(keyBytes),
      keyBytes,
      keyHash: fnv1a(keyBytes),
      id: d.event.id,
      ts: d.event.ts,
      keyGroup: r.keyGroup,
      amount: d.event.values[1] as number,
    });
  }
  return out;
});
const values = new Float64Array(window.aggregates.length);
const encoder = new TextEncoder();

const outputs = shardOutputs(config, open.slice(0, 200));
/** One 10 s window of this input: the results of the batch that closed it. */
const closing = outputs.reduce((a, b) => (b.results.length > a.results.length ? b : a));
const resultsOnly: BatchResult = {
  ...closing,
  deadLetters: [],
  entryIds: [],
  passThrough: [],
  state: emptyStateDelta(),
};
const perWindow = closing.results.length;

let k = 0;
const next = <T>(xs: T[]): T => xs[k++ % xs.length] as T;

/** Feeds the batches in stream order, starting a fresh shard when the input wraps (no replayed duplicates). */
function shardRunner(withCommit: boolean, c = config): () => void {
  let shard = new Shard(c);
  const builder = new CommitBuilder(config, 0);
  let n = 0;
  return () => {
    if (n === open.length) {
      shard = new Shard(c);
      n = 0;
    }
    const b = open[n++] as OpenBatch;
    const r = shard.processBatch(b.snapshot(), Date.now()); // one clock read per batch, as the lane does
    if (withCommit) builder.build(r);
  };
}

/** `needBody`: a filter needs the whole body; without one, msgpack bodies are projected (no object). */
function decodeRunner(batches: OpenBatch[], encoding: 'msgpack' | 'json', needBody = true): () => void {
  const c = benchConfig(1, encoding);
  const d = new EventDecoder({ body: c.body, needId: true, aggregates: window.aggregates, needBody });
  const bufs = batches.map((b) => pack(b));
  return () => {
    const r = new BatchReader(next(bufs));
    while (r.next()) d.decode(r);
  };
}

/**
 * Dedup at steady state: 400k generated IDs (5% repeats) cycle through a memory bounded at the config's
 * 200,000 per shard, so every new ID also evicts the oldest; stream time only grows.
 */
function dedupRunner(): () => void {
  const dedup = new DedupStage({ ttl: 600_000, maxEntries: 200_000 });
  let st = 0;
  return () => {
    for (const e of next(facts)) {
      st++;
      if (!dedup.isDuplicate(e.id, st)) dedup.record(e.id, e.keyGroup, st); // as the shard's steps do
    }
    dedup.drain(st);
  };
}

/**
 * Dedup by content at steady state: the SHA-256 key of each msgpack body (stages/dedup/contentKey.ts),
 * then the same memory as {@link dedupRunner}. The batches are cycled, so after the first pass most keys
 * are repeats, as in an event storm of resent events.
 */
function contentDedupRunner(): () => void {
  const dedup = new DedupStage({ ttl: 600_000, maxEntries: 200_000 });
  const keyOf = contentKey(config.body, undefined);
  const d = new EventDecoder({ body: config.body, needId: false, aggregates: [] });
  const bufs = open.map((b) => pack(b));
  let st = 0;
  return () => {
    const r = new BatchReader(next(bufs));
    while (r.next()) {
      st++;
      const key = keyOf(r, d.event); // the whole body: reads only the reader
      if (!dedup.isDuplicate(key, st)) dedup.record(key, r.keyGroup, st);
    }
    dedup.drain(st);
  };
}

/**
 * Rate limit per key at steady state: 10,000 keys, ~1 event per key per 10 s of event time against a
 * bucket of 5/s, burst 10 (every event passes: the check and the token taken are the cost), + delta.
 */
function rateLimitRunner(): () => void {
  const limit = new RateLimitStage({
    per: 'key',
    rate: { events: 5, perMs: 1000 },
    burst: 10,
    onExcess: 'drop',
  });
  const keys = facts.map((b) => b.map((e) => Buffer.from(e.keyBytes).toString('latin1')));
  let st = 0;
  return () => {
    const i = k++ % facts.length;
    const batch = facts[i] as EventFacts[];
    const names = keys[i] as string[];
    for (let j = 0; j < batch.length; j++) {
      const e = batch[j] as EventFacts;
      st = Math.max(st, e.ts);
      if (limit.admits(names[j] as string, e.keyGroup, e.ts, st)) limit.take(st);
    }
    limit.drain(st);
  };
}

/**
 * Order stage at steady state: 10,000 keys, each event the next version of its key except every 10th of a
 * key, which arrives one place late (held, then released by its successor) + delta. The entries are
 * the batch's own bytes, as the shard offers them.
 */
function orderRunner(): () => void {
  const order = new OrderStage({
    versionPath: 'v',
    maxBuffered: 100,
    timeout: 60_000,
    onGap: 'skip',
    keyTtl: 3_600_000,
  });
  const versions = new Map<string, number>();
  const out: Released = [];
  const bufs = open.map((b) => pack(b));
  let st = 0;
  return () => {
    const r = new BatchReader(next(bufs));
    while (r.next()) {
      const key = latin1(r.bytes, r.fieldStart(r.keyField), r.fieldEnd(r.keyField));
      const n = (versions.get(key) ?? 0) + 1;
      versions.set(key, n);
      const v = n % 10 === 0 ? n + 1 : n % 10 === 1 && n > 1 ? n - 1 : n; // …, 9, 11, 10, 12, …
      order.offer(key, r.keyGroup, v, r.bytes.subarray(r.entryStart, r.entryEnd), ++st, out);
      out.length = 0;
    }
    order.drain();
  };
}

/** Window update at steady state: all events land in one open 10 s window of 10,000 keys (none closes). */
function windowAddRunner(): () => void {
  const w = new WindowStage(window);
  return () => {
    for (const e of next(facts)) {
      values[1] = e.amount;
      values[2] = e.amount;
      values[3] = e.amount;
      const k = e.keyBytes;
      w.addBytes(k, 0, k.length, e.keyHash, e.keyGroup, e.ts % 10_000, values, 0);
    }
    w.drain();
  };
}

/**
 * Session or sliding windows at steady state, stream time following the events: per batch, add every
 * event (sessions of 1 s gap open, extend and merge; sliding windows of 1 s), close what is due, drain the
 * checkpoint delta — what the shard does per batch.
 */
function keyedRunner(type: 'session' | 'sliding'): () => void {
  const cfg: WindowConfig = {
    ...window,
    type,
    size: type === 'sliding' ? 1000 : undefined,
    gap: 1000,
    grace: 0,
  };
  if (type === 'sliding') delete cfg.gap;
  const w = windowOperator(cfg);
  let st = 0;
  const out: ByteString[][] = [];
  return () => {
    for (const e of next(facts)) {
      values[1] = e.amount;
      values[2] = e.amount;
      values[3] = e.amount;
      if (e.ts > st) st = e.ts;
      const k = e.keyBytes;
      w.addBytes(k, 0, k.length, e.keyHash, e.keyGroup, e.ts, values, st);
    }
    w.closeDue(st, out);
    out.length = 0;
    w.drain();
  };
}

/**
 * The project stage's worker side for one batch: 7 reducers (every kind) per event, then the batch's
 * PROJECT ops (one per key) encoded into the commit. The merge into the hashes is Redis' work: see
 * bench/projectCommit.ts.
 */
function projectRunner(): () => void {
  const fields = {
    orders: { fn: 'count' as const },
    total: { fn: 'sum' as const, field: 'amount' },
    smallest: { fn: 'min' as const, field: 'amount' },
    largest: { fn: 'max' as const, field: 'amount' },
    status: { fn: 'latest' as const, field: 'status' },
    firstId: { fn: 'first' as const, field: 'id' },
    lastSeen: { fn: 'last_seen' as const },
  };
  const stage = new ProjectStage({ key: 'proj:{tag}:{key}', fields }, '{in}');
  const bodies = facts.map((b) => b.map((e) => ({ id: e.id, amount: e.amount, status: 'paid' })));
  const keys = facts.map((b) => b.map((e) => latin1(e.keyBytes, 0, e.keyBytes.length)));
  const pos = encoder.encode('1700000000000-0');
  const builder = new CommitBuilder(config, 0);
  const result: BatchResult = {
    ...(outputs[0] as BatchResult),
    results: [],
    passThrough: [],
    deadLetters: [],
    entryIds: [],
    state: emptyStateDelta(),
  };
  let i = 0;
  return () => {
    const n = i++ % facts.length;
    const b = facts[n] as EventFacts[];
    const bs = bodies[n] as Array<Record<string, unknown>>;
    const ks = keys[n] as string[];
    for (let j = 0; j < b.length; j++) {
      if (stage.check(bs[j] as Record<string, unknown>, (b[j] as EventFacts).ts))
        stage.add(ks[j] as string, pos);
    }
    result.projections = stage.drain();
    builder.build(result);
  };
}

/** A fresh window holding the keys one 10 s window of this input holds, closed in the timed part. */
let toClose = new WindowStage(window);
function fillWindow(): void {
  toClose = new WindowStage(window);
  for (const r of closing.results) {
    const key = r[1] as ByteString;
    const k = typeof key === 'string' ? encoder.encode(key) : key;
    toClose.addBytes(k, 0, k.length, fnv1a(k), 0, 5, values, 0);
  }
  toClose.drain();
}

const tasks: Array<{ name: string; items: number; unit: string; fn: () => void; before?: () => void }> = [
  {
    name: 'hash: FNV-1a + key group of the key bytes',
    items: BATCH,
    unit: 'events',
    fn: () => {
      for (const key of keyBytes) keyGroupOf(fnv1a(key), 256);
    },
  },
  {
    name: 'route: read the RESP entry headers, find key field, hash, copy into the shard batch (2 shards)',
    items: BATCH,
    unit: 'events',
    fn: () => void routed(router2, next(msgpackReplies), 2),
  },
  {
    name: 'pack: the batch as its own ArrayBuffer',
    items: BATCH,
    unit: 'events',
    fn: () => void next(open).snapshot(),
  },
  {
    name: 'decode + validate: msgpack bodies, whole (a filter needs the body)',
    items: BATCH,
    unit: 'events',
    fn: decodeRunner(open, 'msgpack'),
  },
  {
    name: 'decode + validate: msgpack bodies, projected (no filter: the bench pipeline)',
    items: BATCH,
    unit: 'events',
    fn: decodeRunner(open, 'msgpack', false),
  },
  {
    name: 'decode + validate: JSON bodies',
    items: BATCH,
    unit: 'events',
    fn: decodeRunner(openJson, 'json'),
  },
  { name: 'dedup: check/insert at the 200k bound + delta', items: BATCH, unit: 'events', fn: dedupRunner() },
  {
    name: 'dedup by content: SHA-256 of the body + check/insert + delta',
    items: BATCH,
    unit: 'events',
    fn: contentDedupRunner(),
  },
  { name: 'rate limit per key: check + take + delta', items: BATCH, unit: 'events', fn: rateLimitRunner() },
  {
    name: 'order: offer by version (every 10th held one place) + delta',
    items: BATCH,
    unit: 'events',
    fn: orderRunner(),
  },
  {
    name: 'project: 7 reducers (latest, first, count, sum, min, max, last_seen) + PROJECT ops + commit build',
    items: BATCH,
    unit: 'events',
    fn: projectRunner(),
  },
  { name: 'window: update count/sum/min/max + delta', items: BATCH, unit: 'events', fn: windowAddRunner() },
  {
    name: 'session window (1 s gap): add, close due, delta',
    items: BATCH,
    unit: 'events',
    fn: keyedRunner('session'),
  },
  {
    name: 'sliding window (1 s): add, close due, delta',
    items: BATCH,
    unit: 'events',
    fn: keyedRunner('sliding'),
  },
  {
    name: `window: close one window (${perWindow} keys)`,
    items: perWindow,
    unit: 'results',
    before: fillWindow,
    fn: () => {
      toClose.closeDue(Number.MAX_SAFE_INTEGER, []);
      toClose.drain();
    },
  },
  {
    name: `result encoding: ${perWindow} results → commit ops`,
    items: perWindow,
    unit: 'results',
    fn: (() => {
      const builder = new CommitBuilder(config, 0);
      return () => void builder.build(resultsOnly);
    })(),
  },
  {
    name: 'commit build: results + checkpoint + XACK',
    items: BATCH,
    unit: 'events',
    fn: (() => {
      const builder = new CommitBuilder(config, 0);
      return () => void builder.build(next(outputs));
    })(),
  },
  {
    name: 'shard: pack + decode, dedup, window, close',
    items: BATCH,
    unit: 'events',
    fn: shardRunner(false),
  },
  {
    name: 'shard: the above + commit build (worker total)',
    items: BATCH,
    unit: 'events',
    fn: shardRunner(true),
  },
  {
    name: 'shard: the above with metrics.eventTypes (type label per event)',
    items: BATCH,
    unit: 'events',
    fn: shardRunner(true, {
      ...config,
      metrics: { ...config.metrics, eventTypes: { field: 'type', known: ['order'], maxTypes: 50 } },
    }),
  },
];

tasks.push(...expressionTasks());

const bench = new Bench({ name: 'hot path', time: o.time });
for (const t of tasks) {
  if (o.filter !== '' && !t.name.includes(o.filter)) continue;
  bench.add(t.name, t.fn, t.before ? { beforeEach: t.before } : {});
}
process.stderr.write(`running ${bench.tasks.length} benchmarks, ${o.time} ms each…\n`);
await bench.run();

const rows = bench.tasks.map((t) => {
  const spec = tasks.find((x) => x.name === t.name);
  const r = t.result;
  if (spec === undefined || r === undefined || !('latency' in r)) {
    const error = r !== undefined && 'error' in r ? String(r.error) : 'no result';
    return { task: t.name, error };
  }
  return {
    task: t.name,
    'ops/s': Math.round(r.throughput.mean),
    'per op': `${spec.items} ${spec.unit}`,
    'items/s': Math.round(r.throughput.mean * spec.items),
    'p50 ms': Number(r.latency.p50?.toFixed(3)),
    'p99 ms': Number(r.latency.p99?.toFixed(3)),
    samples: r.latency.samplesCount,
  };
});
console.log(`hot path, node ${process.version}`);
console.table(rows);
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
const date = new Date().toISOString();
const file = join(ROOT, `bench/results/micro-${date.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify({ date, node: process.version, rows }, null, 2)}\n`);
process.stderr.write(`saved ${file}\n`);
