/**
 * Inputs of the micro benchmarks, built once before timing: the bench pipeline's config
 * (bench/streamshard.yaml, so the micro and end-to-end benchmarks measure the same stages), generated
 * entries as the main thread receives them (Buffers), routed and packed batches, decoded events, and real
 * shard outputs for the commit benchmarks.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PipelineConfig } from '../../src/config/load.js';
import { parseConfig } from '../../src/config/load.js';
import { OpenBatch, Router } from '../../src/routing/router.js';
import type { BatchResult } from '../../src/shard/protocol.js';
import { Shard } from '../../src/shard/shard.js';
import { StreamReply } from '../../src/source/streamReply.js';
import { generateEvents } from '../../src/tools/produce/generator.js';
import { ROOT } from './contender.js';

export const BATCH = 1000;
export const KEYS = 10_000;
export const START_TS = 1_700_000_000_000;

/** A generated entry as a Redis reply carries it: Buffers. */
export interface RawEntry {
  id: Buffer;
  fields: Buffer[];
}

/** bench/streamshard.yaml with `shards` and the body encoding filled in. */
export function benchConfig(shards: number, encoding: 'msgpack' | 'json' = 'msgpack'): PipelineConfig {
  const file = join(ROOT, 'bench/streamshard.yaml');
  const env = {
    REDIS_URL: 'redis://127.0.0.1:6379',
    SOURCE_STREAM: 'in',
    GROUP: 'g',
    SINK_STREAM: 'out',
    DLQ_STREAM: 'dlq',
    SHARDS: String(shards),
  };
  const c = parseConfig(readFileSync(file, 'utf8'), file, { env });
  return { ...c, body: { ...c.body, encoding } };
}

/**
 * `batches` batches of generated entries (10,000 keys, 5% duplicates, events 1 ms apart in event time),
 * as Buffers like a Redis reply.
 */
export function entryBatches(batches: number, encoding: 'msgpack' | 'json'): RawEntry[][] {
  const out: RawEntry[][] = [];
  let batch: RawEntry[] = [];
  let i = 0;
  for (const e of generateEvents({
    count: batches * BATCH,
    keys: KEYS,
    seed: 3,
    duplicatePct: 5,
    outOfOrderPct: 0,
    malformedPct: 0,
    startTs: START_TS,
    intervalMs: 1,
    outOfOrderMaxMs: 1,
    encoding,
  })) {
    batch.push({ id: Buffer.from(`${START_TS}-${i++}`), fields: e.fields.map((f) => Buffer.from(f)) });
    if (batch.length === BATCH) {
      out.push(batch);
      batch = [];
    }
  }
  return out;
}

/** The entries as Redis sends them: the RESP bytes of an XREADGROUP reply. */
export function replyOf(entries: RawEntry[], stream = 'in'): StreamReply {
  const parts: Buffer[] = [
    Buffer.from(`*1\r\n*2\r\n$${stream.length}\r\n${stream}\r\n*${entries.length}\r\n`),
  ];
  const bulk = (b: Buffer) => parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  for (const e of entries) {
    parts.push(Buffer.from('*2\r\n'));
    bulk(e.id);
    parts.push(Buffer.from(`*${e.fields.length}\r\n`));
    for (const f of e.fields) bulk(f);
  }
  return new StreamReply(Buffer.concat(parts));
}

/** Routes a read into fresh open batches, one per shard (what the main thread does before packing). */
export function routed(router: Router, reply: StreamReply, shards = 1): OpenBatch[] {
  const open = Array.from({ length: shards }, () => new OpenBatch());
  router.route(reply, open, 0);
  return open;
}

/** The packed buffer of an open batch (a fresh copy each call: a transfer detaches it). */
export function pack(b: OpenBatch): ArrayBuffer {
  return b.snapshot();
}

/** Runs the batches through one shard in order and keeps every output (for the commit benchmarks). */
export function shardOutputs(config: PipelineConfig, open: OpenBatch[]): BatchResult[] {
  const shard = new Shard(config);
  return open.map((b) => shard.processBatch(pack(b), Date.now()));
}

/** Field values of one decoded event, for the dedup and window benchmarks. */
export interface EventFacts {
  key: string;
  /** The key's UTF-8 bytes and their FNV-1a, as the shard reads them from the batch. */
  keyBytes: Uint8Array;
  keyHash: number;
  id: string;
  ts: number;
  keyGroup: number;
  amount: number;
}
