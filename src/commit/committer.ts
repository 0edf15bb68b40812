/**
 * The commit: ONE MULTI/EXEC round trip per shard batch carrying, in this order,
 *   1. results (sink XADDs) and dead-letter XADDs,
 *   2. the checkpoint delta of the batch (windows, dedup memory, stream time),
 *   3. XACK of every entry of the batch.
 * Each entry's effect — a result, a dead-letter entry, a state change, or a deliberate drop (filtered,
 * duplicate) — is in the same transaction as its ack, so an entry is acked iff its effect is in Redis,
 * and a crash before EXEC leaves it pending with the checkpoint as it was before the batch.
 */
import type { ChainableCommander, Redis } from 'ioredis';
import type { RawEntry } from '../routing/batchCodec.js';
import type { ShardOutput } from '../shard/protocol.js';
import { type Sink, xaddHead } from '../sink/sink.js';
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

  /** Commits one shard batch (entries may be empty for an idle tick); resolves once EXEC succeeded. */
  async commit(shard: number, entries: RawEntry[], out: ShardOutput): Promise<void> {
    const tx = this.redis.multi();
    const passThrough: Buffer[][] = [];
    for (const i of out.passThrough) passThrough.push((entries[i] as RawEntry).fields);
    this.sink.write(tx, out.results, passThrough);
    for (const d of out.deadLetters) {
      const e = entries[d.index] as RawEntry;
      tx.call('XADD', ...this.dlqHead, ...e.fields, 'error', d.error, 'source_id', e.id);
    }
    this.writeState(tx, shard, out);
    if (entries.length > 0) {
      const ids = new Array<Buffer>(entries.length);
      for (let i = 0; i < entries.length; i++) ids[i] = (entries[i] as RawEntry).id;
      tx.xack(this.target.stream, this.target.group, ...ids);
    }
    const results = await tx.exec();
    if (results === null) throw new Error('commit transaction aborted');
    for (const [err] of results) if (err) throw err;
  }

  private writeState(tx: ChainableCommander, shard: number, out: ShardOutput): void {
    const k = this.keys;
    const s = out.state;
    for (const w of s.windowWrites) tx.hset(k.window(w.keyGroup, w.start), ...w.fields);
    for (const o of s.windowsOpened) tx.sadd(k.windowIndex(o.keyGroup), o.start);
    for (const c of s.windowsClosed) {
      tx.del(k.window(c.keyGroup, c.start));
      tx.srem(k.windowIndex(c.keyGroup), c.start);
    }
    for (const a of s.dedupAdds) tx.zadd(k.dedup(a.keyGroup), ...a.scoreMembers);
    for (const r of s.dedupRemovals) tx.zrem(k.dedup(r.keyGroup), ...r.ids);
    if (s.dedupExpireUpTo !== null) {
      for (const g of s.dedupExpireGroups) tx.zremrangebyscore(k.dedup(g), '-inf', s.dedupExpireUpTo);
    }
    if (s.streamTime !== null) {
      const args: Array<string | number> = [];
      for (const g of this.shardKeyGroups[shard] as number[]) args.push(g, s.streamTime);
      tx.hset(k.streamTime(), ...args);
    }
  }
}
