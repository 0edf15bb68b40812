/**
 * Builds the commit of one shard batch, in the worker: the writes as an op list, encoded with msgpack
 * (opsCodec.ts) into ONE binary argument for the commit script (commit/applyOps.ts), in this order:
 *   1. results (sink XADDs) and dead-letter XADDs,
 *   2. projections (the project stage's `PROJECT` ops, merged into their hashes by the script),
 *   3. the checkpoint delta (windows, dedup memory, rate-limit buckets, stream time),
 *   4. XACK of every entry of the batch.
 * Each entry's effect — a result, a dead-letter entry, a projection or state change, or a deliberate drop (filtered,
 * duplicate) — is applied in the same script as its ack: an entry is acked iff its effect is in Redis.
 *
 * Why here and not on the main thread: building ~5 arguments per event with ioredis cost the main thread
 * ~30% of its time (profiled: Command construction and argument serialisation); one msgpack blob built in
 * the worker costs the main thread one argument.
 */
import type { PipelineConfig } from '../config/load.js';
import { CheckpointKeys } from '../redis/checkpointKeys.js';
import { shardKeyGroups } from '../routing/hash.js';
import { type OpArg, OpsWriter } from './opsCodec.js';
import type { BatchResult } from './protocol.js';
import type { ProjectOp } from './stages/project/projectStage.js';

/** Longest argument list of one op; keeps Lua's `unpack` well inside its ~8,000-value stack limit. */
export const MAX_OP_ARGS = 6000;

/**
 * Most fields (names and values) of an entry that can be copied — passed through or dead-lettered —
 * since a copy is ONE XADD: MAX_OP_ARGS less the longest head (`XADD s MAXLEN ~ n *`) and the fields a
 * dead letter adds (`deliveries`, `error`, `source_id`). The shard dead-letters a wider entry without its
 * fields (E_ENTRY_TOO_LARGE) instead.
 */
export const MAX_COPY_FIELDS = MAX_OP_ARGS - 12;

type Arg = OpArg;

export class CommitBuilder {
  private readonly writer = new OpsWriter();
  private readonly sinkHead: Arg[] | null;
  private readonly dlqHead: Arg[];
  private readonly ackHead: Arg[];
  private readonly keys: CheckpointKeys;
  private readonly keyGroups: number[];
  private ops = 0;

  constructor(config: PipelineConfig, shard: number) {
    const sink = config.sink;
    this.sinkHead = sink.type === 'stream' ? xaddHead(sink.stream, sink.maxLen) : null;
    this.dlqHead = xaddHead(config.deadLetter.stream, config.deadLetter.maxLen);
    this.ackHead = ['XACK', config.source.stream, config.source.group];
    this.keys = CheckpointKeys.of(config);
    this.keyGroups = shardKeyGroups(config)[shard] as number[];
  }

  /** The encoded op list, or null when the batch writes nothing. */
  build(r: BatchResult): Uint8Array | null {
    const w = this.writer;
    w.reset();
    const list = w.beginArray();
    this.ops = 0;
    if (this.sinkHead !== null) {
      for (const res of r.results) this.xadd(this.sinkHead, res);
      for (const i of r.passThrough) this.xadd(this.sinkHead, r.entryFields[i] as Uint8Array[]);
    }
    for (const d of r.deadLetters) {
      const fields: Arg[] = [...(r.entryFields[d.index] as Uint8Array[])];
      if (d.deliveries !== undefined) fields.push('deliveries', String(d.deliveries));
      fields.push('error', d.error, 'source_id');
      const n = r.entryIds.length;
      fields.push((d.index < n ? r.entryIds[d.index] : r.releasedIds[d.index - n]) as Uint8Array);
      this.xadd(this.dlqHead, fields);
    }
    for (const p of r.projections) this.whole(p);
    this.state(r);
    if (r.entryIds.length > 0) this.op(this.ackHead, r.entryIds);
    if (this.ops === 0) return null;
    w.endArray(list, this.ops);
    return w.finish();
  }

  private state(r: BatchResult): void {
    const k = this.keys;
    const s = r.state;
    for (const w of s.windowWrites) this.op(['HSET', k.window(w.keyGroup, w.start)], w.fields, 2);
    for (const o of s.windowsOpened) this.op(['SADD', k.windowIndex(o.keyGroup), String(o.start)]);
    for (const r of s.windowRemovals) this.op(['HDEL', k.window(r.keyGroup, r.start)], r.keys);
    for (const c of s.windowsClosed) {
      this.op(['DEL', k.window(c.keyGroup, c.start)]);
      this.op(['SREM', k.windowIndex(c.keyGroup), String(c.start)]);
    }
    for (const t of s.dedup.trims) this.op(['LPOP', k.dedup(t.keyGroup), String(t.count)]);
    for (const a of s.dedup.appends) this.op(['RPUSH', k.dedup(a.keyGroup), a.chunk]);
    for (const w of s.rateLimit.writes) this.op(['HSET', k.rateLimit(w.keyGroup)], w.fields, 2);
    for (const r of s.rateLimit.removals) this.op(['HDEL', k.rateLimit(r.keyGroup)], r.keys);
    for (const w of s.order.writes) this.op(['HSET', k.order(w.keyGroup)], w.fields, 2);
    for (const r of s.order.removals) this.op(['HDEL', k.order(r.keyGroup)], r.keys);
    if (s.rateLimit.shard !== null) {
      const args: string[] = [];
      for (const g of this.keyGroups) args.push(String(g), s.rateLimit.shard);
      this.op(['HSET', k.shardRateLimit()], args, 2);
    }
    if (s.streamTime !== null) {
      const t = String(s.streamTime);
      const args: string[] = [];
      for (const g of this.keyGroups) args.push(String(g), t);
      this.op(['HSET', k.streamTime()], args, 2);
    }
  }

  /**
   * One XADD: never split (several XADDs would be several half entries). The shard keeps copies within
   * {@link MAX_COPY_FIELDS}, so a longer one is a bug.
   */
  private xadd(head: Arg[], fields: Arg[]): void {
    if (head.length + fields.length > MAX_OP_ARGS) {
      throw new Error(`an XADD of ${fields.length} fields exceeds the ${MAX_OP_ARGS} arguments of one op`);
    }
    this.op(head, fields);
  }

  /**
   * A projection op as it is, null as msgpack false: the stage keeps it within {@link MAX_OP_ARGS} (its
   * parts merge only whole).
   */
  private whole(op: ProjectOp): void {
    if (op.length > MAX_OP_ARGS)
      throw new Error(`a ${op[0]} op of ${op.length} arguments exceeds ${MAX_OP_ARGS}`);
    const w = this.writer;
    w.array(op.length);
    for (const a of op) {
      if (a === null) w.false();
      else w.arg(a);
    }
    this.ops++;
  }

  /**
   * Writes `head… rest…` as one op, or several of whole `per`-sized groups when too long (for commands
   * that can be split: XACK, HSET, HDEL).
   */
  private op(head: Arg[], rest: Arg[] = [], per = 1): void {
    const w = this.writer;
    const room = MAX_OP_ARGS - head.length - ((MAX_OP_ARGS - head.length) % per);
    for (let i = 0; i === 0 || i < rest.length; i += room) {
      const end = Math.min(rest.length, i + room);
      w.array(head.length + end - i);
      for (const a of head) w.arg(a);
      for (let j = i; j < end; j++) w.arg(rest[j] as Arg);
      this.ops++;
    }
  }
}

/** `XADD key [MAXLEN ~ n] *` before the fields. */
export function xaddHead(stream: string, maxLen: number | undefined): string[] {
  return maxLen === undefined ? ['XADD', stream, '*'] : ['XADD', stream, 'MAXLEN', '~', String(maxLen), '*'];
}
