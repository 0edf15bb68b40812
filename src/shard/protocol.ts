/**
 * Messages between the main thread and a shard worker. Plain data only (structured clone), with the batch
 * itself as a transferred ArrayBuffer. The worker never sees Redis: it gets bytes and its restored state,
 * and answers with what to write; the main thread turns that into one atomic commit.
 */
import type { PipelineConfig } from '../config/load.js';
import type { ByteString } from '../util/bytes.js';
import type { DedupDelta, DedupLog } from './stages/dedup/checkpoint.js';
import type { RateLimitDelta, RateLimitState } from './stages/rateLimit/rateLimitStage.js';
import type { ProjectOp } from './stages/project/projectStage.js';
import type { TypeDelta } from './typeCounts.js';

/** A shard's state as loaded from its checkpoint keys. */
export interface RestoredState {
  /**
   * Per open window bucket: its key group, start, and `[key, encodedAggregate, …]` as read from the
   * bucket's hash: exact bytes (a key need not be valid UTF-8).
   */
  windows: Array<{ keyGroup: number; start: number; fields: ByteString[] }>;
  /** The dedup log of each key group that has one (stages/dedup/checkpoint.ts). */
  dedupLogs: DedupLog[];
  /** Highest stream time stored for the shard's key groups, or null for a fresh shard. */
  streamTime: number | null;
  /** The rate-limit buckets (stages/rateLimit/rateLimitStage.ts); absent = none stored. */
  rateLimit?: RateLimitState;
  /** The order stage's keys per key group, `[key, state, …]` (stages/order/orderStage.ts); absent = none. */
  order?: Array<{ keyGroup: number; fields: ByteString[] }>;
}

export interface InitTask {
  kind: 'init';
  config: PipelineConfig;
  shard: number;
  restored: RestoredState;
  /** Wall ms on the main thread at init: a restored stream time too far ahead of it is capped. */
  now: number;
  /** 0 for a shard's first worker, +1 per restart after a crash. */
  generation: number;
}

export interface BatchTask {
  kind: 'batch';
  buf: ArrayBuffer;
  /** Wall ms when the main thread dispatched the batch: the clock of the future-time check. */
  now: number;
}

export interface TickTask {
  kind: 'tick';
  /** Wall ms: the start of the latest read that found the stream caught up (not the time of the tick). */
  quietUntil: number;
  /** Wall ms since which the shard has had nothing to do although the pipeline could read. */
  quietSince: number;
}

export type ShardTask = InitTask | BatchTask | TickTask;

export interface InitResult {
  /** Open window buckets after restoring the checkpoint. */
  openWindows: number;
  /** Event IDs the dedup stage remembers after restoring (0 without one). */
  dedupIds: number;
  /** The shard's stream time after restoring (epoch ms), or null for a fresh shard. */
  streamTime: number | null;
  /** The restored stream time was too far in the future and was capped (the engine logs it), or null. */
  streamTimeCapped: { stored: number; capped: number } | null;
}

/** Counts of one batch, sent as deltas; the main thread adds them to prom-client metrics. */
export interface ShardCounts {
  processed: number;
  filtered: number;
  deduplicated: number;
  late: number;
  windowsEmitted: number;
  /** Extra tries after a stage threw. */
  stageRetries: number;
  /** Events over a rate limit (dropped or dead-lettered). */
  rateLimited: number;
  /** Dead-lettered events by error code. */
  deadLettered: Record<string, number>;
  /** `[type, status, count]` of the events whose fate was decided (typeCounts.ts). */
  byType: TypeDelta;
}

/** Checkpoint changes of one batch: exactly what the commit writes besides results and acks. */
export interface StateDelta {
  /**
   * HSET window bucket: `[key, encodedAggregate, …]` of the keys that changed. A key is text when its bytes
   * are valid UTF-8, else the bytes: the hash field is always the key's exact bytes.
   */
  windowWrites: Array<{ keyGroup: number; start: number; fields: ByteString[] }>;
  /** Window buckets that became open (SADD to the key group's index). */
  windowsOpened: Array<{ keyGroup: number; start: number }>;
  /** Window buckets that closed (DEL the bucket, SREM from the index). */
  windowsClosed: Array<{ keyGroup: number; start: number }>;
  /** Keys emitted from a due bucket that is only partly closed (HDEL from the bucket). */
  windowRemovals: Array<{ keyGroup: number; start: number; keys: ByteString[] }>;
  /** LPOP forgotten chunks from, then RPUSH new chunks to, the key groups' dedup logs. */
  dedup: DedupDelta;
  /** HSET/HDEL the rate-limit buckets; the shard bucket for each of its key groups. */
  rateLimit: RateLimitDelta;
  /** HSET/HDEL the order stage's keys (next version, held entries). */
  order: {
    writes: Array<{ keyGroup: number; fields: ByteString[] }>;
    removals: Array<{ keyGroup: number; keys: ByteString[] }>;
  };
  /** The shard's stream time when it changed in this batch; written for each of its key groups. */
  streamTime: number | null;
}

export interface DeadLetter {
  /** Index of the entry in the batch. */
  index: number;
  /** `CODE: message`. */
  error: string;
  /** Delivery count, written as a `deliveries` field for failures that depend on it (retries, crashes). */
  deliveries?: number;
}

/**
 * What a shard computed for one batch, inside the worker. The worker turns it into the commit (see
 * shard/commitBuilder.ts); only `ShardOutput` crosses the thread boundary.
 */
export interface BatchResult {
  /** Window results as flat field/value lists, in emission order; `key` as in `windowWrites`. */
  results: ByteString[][];
  /** Pass-through mode (no window stage): indexes of the batch entries to copy to the sink, in order. */
  passThrough: number[];
  /**
   * Project stages: `PROJSPEC` and `PROJECT` ops of the commit script (stages/project/projectStage.ts),
   * per stage its spec then one per key, written in the commit before the XACK.
   */
  projections: ProjectOp[];
  deadLetters: DeadLetter[];
  state: StateDelta;
  counts: ShardCounts;
  /** Entry IDs of the batch (views into the batch buffer), all to be acked by the commit. */
  entryIds: Uint8Array[];
  /**
   * IDs of entries an order stage held in earlier batches (or this one) and released or gave up now, at
   * output indexes `entryIds.length + i`: acked when they were held, only their `source_id`.
   */
  releasedIds: Uint8Array[];
  /** Field lists of the batch's entries (views), for dead-letter and pass-through copies. */
  entryFields: Uint8Array[][];
  /** Event times (epoch ms) of the events that reached the last stage, for end-to-end latency. */
  eventTimes: number[];
  /** Open window buckets after this batch. */
  openWindows: number;
  /** Due windows are left to emit (a close is spread over commits): the shard wants a tick soon. */
  closePending: boolean;
}

/** What a worker answers for a batch or tick. */
export interface ShardOutput {
  /** The encoded commit (results, dead letters, checkpoint delta, XACK), or null when there is nothing to write. */
  commit: Uint8Array | null;
  /** For `sink: stdout` only: the records to print, one JSON line each (sink/sink.ts `jsonLine`). */
  printed: string[];
  /** Entries the commit acks. */
  acked: number;
  /** Results (window results or pass-through copies) the commit writes. */
  resultsWritten: number;
  counts: ShardCounts;
  eventTimes: number[];
  /** Open window buckets after this batch (the main thread keeps ticking a quiet shard while > 0). */
  openWindows: number;
  /** Event IDs the dedup stage remembers after this batch (0 without one). */
  dedupIds: number;
  /** The shard's stream time after this batch (epoch ms), or null while it has seen no event. */
  streamTime: number | null;
  /** See BatchResult.closePending. */
  closePending: boolean;
  /** Milliseconds the worker spent on the task, encoding included. */
  busyMs: number;
  /** The worker's V8 heap after the task (bytes): prom-client on the main thread cannot see it. */
  heapUsed: number;
  heapSize: number;
}
