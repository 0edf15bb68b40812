/**
 * Dedup by event ID, with a TTL in *stream time* (not wall time) so that a replay after a crash makes the
 * same decisions as the first run. The remembered IDs are a FIFO queue stamped with stream time
 * (idQueue.ts, with its layout and measured bytes); TTL expiry and the `maxEntries` bound both forget from
 * its head. The checkpoint is an append-only log per key group (checkpoint.ts, chunk.ts).
 */
import type { DedupConfig } from '../../../config/schema.js';
import { CheckpointLogs, type DedupDelta, type DedupLog } from './checkpoint.js';
import { readChunk } from './chunk.js';
import { IdQueue } from './idQueue.js';

export class DedupStage {
  private readonly ids = new IdQueue();
  private readonly logs = new CheckpointLogs();
  private readonly ttl: number;
  private readonly maxEntries: number;

  constructor(cfg: Pick<DedupConfig, 'ttl' | 'maxEntries'>) {
    this.ttl = cfg.ttl;
    this.maxEntries = cfg.maxEntries;
  }

  get size(): number {
    return this.ids.size;
  }

  /**
   * Restores the logs of the shard's key groups. IDs already past their TTL at `streamTime` are skipped;
   * the rest are remembered in stream-time order (IDs stamped with the same stream time in log order), and
   * then the oldest are forgotten down to `maxEntries`, as an uninterrupted shard would have. Does not
   * append anything to the logs.
   */
  restore(logs: DedupLog[], streamTime: number): void {
    const entries: Array<{ id: string; seenAt: number; keyGroup: number; chunkSeqs: number[]; at: number }> =
      [];
    for (const log of logs) {
      const chunkSeqs = this.logs.restored(log.keyGroup);
      log.chunks.forEach((bytes, at) => {
        chunkSeqs.push(0); // a chunk of expired IDs only keeps 0 and is dropped at the first drain
        for (const e of readChunk(bytes)) entries.push({ ...e, keyGroup: log.keyGroup, chunkSeqs, at });
      });
    }
    entries.sort((a, b) => a.seenAt - b.seenAt); // stable: equal stream times keep log order
    for (const e of entries) {
      if (streamTime - e.seenAt >= this.ttl) continue;
      // A stamp ahead of stream time comes from a stream time capped at restore (an event from the future
      // moved it before the check existed): stamped now instead, so it expires and keeps the queue in order.
      const seenAt = Math.min(e.seenAt, streamTime);
      e.chunkSeqs[e.at] = this.ids.remember(e.id, e.keyGroup, seenAt); // ascending: ends at the chunk's last
    }
    while (this.ids.size > this.maxEntries) this.ids.forgetOldest();
    this.logs.savedUpTo(this.ids.tail);
  }

  /** True for an ID seen within the TTL. Changes nothing (a stage may still fail after it; see Shard). */
  isDuplicate(id: string, streamTime: number): boolean {
    const at = this.ids.lookUp(id);
    return at !== 0 && streamTime - this.ids.stampOf(at - 1) < this.ttl;
  }

  /** Remembers an admitted ID: new, or expired and now re-stamped in a new slot at the tail. */
  record(id: string, keyGroup: number, streamTime: number): void {
    this.ids.remember(id, keyGroup, streamTime); // usually just looked up by isDuplicate
    while (this.ids.size > this.maxEntries) this.ids.forgetOldest();
  }

  /**
   * Forgets IDs past their TTL at `streamTime` and returns the checkpoint changes since the last call:
   * the chunks to append, and how many fully forgotten chunks to drop per key group.
   */
  drain(streamTime: number): DedupDelta {
    this.ids.forgetUpTo(streamTime - this.ttl);
    return this.logs.delta(this.ids);
  }
}
