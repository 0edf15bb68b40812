/**
 * The commit: ONE atomic round trip per shard batch (a script, see applyOps.ts) carrying, in this order,
 *   1. results (sink XADDs) and dead-letter XADDs,
 *   2. the checkpoint delta of the batch (windows, dedup memory, stream time),
 *   3. XACK of every entry of the batch.
 * Each entry's effect — a result, a dead-letter entry, a state change, or a deliberate drop (filtered,
 * duplicate) — is in the same atomic step as its ack, so an entry is acked iff its effect is in Redis,
 * and a crash before it leaves the entry pending with the checkpoint as it was before the batch.
 */
import type { Redis } from 'ioredis';
import type { RawEntry } from '../routing/batchCodec.js';
import type { ShardOutput } from '../shard/protocol.js';
import { type Sink, xaddHead } from '../sink/sink.js';
import { applyOps, OpList } from './applyOps.js';
import type { CheckpointKeys } from './checkpointKeys.js';

export interface CommitTarget {
  stream: string;
  group: string;
  deadLetterStream: string;
  deadLetterMaxLen: number | undefined;
}

export class Committer {
  private readonly dlqHead: Array<string | number>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: CheckpointKeys,
    private readonly sink: Sink,
    private readonly target: CommitTarget,
    /** Key groups of each shard, for writing its stream time. */
    private readonly shardKeyGroups: number[][],
  ) {
    this.dlqHead = xaddHead(target.deadLetterStream, target.deadLetterMaxLen);
  }

  /** Commits one shard batch (entries may be empty for an idle tick); resolves once it is applied. */
  async commit(shard: number, entries: RawEntry[], out: ShardOutput): Promise<void> {
    const ops = new OpList();
    const passThrough: Buffer[][] = [];
    for (const i of out.passThrough) passThrough.push((entries[i] as RawEntry).fields);
    this.sink.write(ops, out.results, passThrough);
    for (const d of out.deadLetters) {
      const e = entries[d.index] as RawEntry;
      ops.op('XADD', this.dlqHead, [...e.fields, 'error', d.error, 'source_id', e.id]);
    }
    this.writeState(ops, shard, out);
    if (entries.length > 0) {
      const ids = new Array<Buffer>(entries.length);
      for (let i = 0; i < entries.length; i++) ids[i] = (entries[i] as RawEntry).id;
      ops.op('XACK', [this.target.stream, this.target.group], ids);
    }
    if (!ops.empty) await applyOps(this.redis, ops);
  }

  private writeState(ops: OpList, shard: number, out: ShardOutput): void {
    const k = this.keys;
    const s = out.state;
    for (const w of s.windowWrites) ops.op('HSET', [k.window(w.keyGroup, w.start)], w.fields, 2);
    for (const o of s.windowsOpened) ops.op('SADD', [k.windowIndex(o.keyGroup), o.start]);
    for (const c of s.windowsClosed) {
      ops.op('DEL', [k.window(c.keyGroup, c.start)]);
      ops.op('SREM', [k.windowIndex(c.keyGroup), c.start]);
    }
    for (const a of s.dedupAdds) ops.op('ZADD', [k.dedup(a.keyGroup)], a.scoreMembers, 2);
    for (const r of s.dedupRemovals) ops.op('ZREM', [k.dedup(r.keyGroup)], r.ids);
    if (s.dedupExpireUpTo !== null) {
      for (const g of s.dedupExpireGroups)
        ops.op('ZREMRANGEBYSCORE', [k.dedup(g), '-inf', s.dedupExpireUpTo]);
    }
    if (s.streamTime !== null) {
      const args: Array<string | number> = [];
      for (const g of this.shardKeyGroups[shard] as number[]) args.push(g, s.streamTime);
      ops.op('HSET', [k.streamTime()], args, 2);
    }
  }
}
