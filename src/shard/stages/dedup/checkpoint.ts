/**
 * The dedup stage's checkpoint: **an append-only log per key group** (`<ns>:dl:<keyGroup>`, a Redis list).
 * Each commit appends one chunk per key group with the IDs remembered in its batch (`RPUSH`; chunk.ts),
 * and drops the chunks at the head of the log whose IDs have all been forgotten (`LPOP n`): remembering
 * order is forgetting order, so the log is a FIFO like the queue of IDs (idQueue.ts). Nothing is written
 * per forgotten ID, and Redis stores an ID as ~30 bytes of a list element instead of a sorted-set member
 * with its score (the `ZADD`/`ZREM` per ID this replaced cost Redis ~5 µs per event; see BENCHMARKS.md).
 */
import { ChunkWriter } from './chunk.js';
import type { IdQueue } from './idQueue.js';

/** What the checkpoint must do for one key group's log. */
export interface DedupDelta {
  /** RPUSH to the key group's log: the IDs remembered since the last drain, oldest first. */
  appends: Array<{ keyGroup: number; chunk: Uint8Array }>;
  /** LPOP this many chunks from the head of the key group's log: every ID in them is forgotten. */
  trims: Array<{ keyGroup: number; count: number }>;
}

/** A key group's log as stored: its chunks, oldest first. */
export interface DedupLog {
  keyGroup: number;
  chunks: Uint8Array[];
}

/** What the stored logs hold, as seqs of the ID queue, and the changes to them since the last drain. */
export class CheckpointLogs {
  /** Per key group with chunks in its log: the seq of each chunk's last slot, oldest chunk first. */
  private readonly logs = new Map<number, number[]>();
  /** Seq of the first slot remembered since the last drain (not yet in a log). */
  private freshFrom = 1;
  private readonly writer = new ChunkWriter();

  /**
   * The chunk seqs of a restored key group's log, for the restore to fill in as it remembers the chunks'
   * IDs (a chunk of expired IDs only keeps 0 and is dropped at the first drain).
   */
  restored(keyGroup: number): number[] {
    const seqs: number[] = [];
    this.logs.set(keyGroup, seqs);
    return seqs;
  }

  /** Everything remembered before seq `tail` is in the logs (after a restore). */
  savedUpTo(tail: number): void {
    this.freshFrom = tail;
  }

  /** The changes since the last call: a chunk per key group of the IDs since remembered, and trims. */
  delta(ids: IdQueue): DedupDelta {
    const appends = this.appendFresh(ids);
    const frontier = ids.oldestSeq(); // every slot before it is forgotten
    const trims: DedupDelta['trims'] = [];
    for (const [keyGroup, seqs] of this.logs) {
      let n = 0;
      while (n < seqs.length && (seqs[n] as number) < frontier) n++;
      if (n === 0) continue;
      trims.push({ keyGroup, count: n });
      if (n === seqs.length) this.logs.delete(keyGroup);
      else seqs.splice(0, n);
    }
    return { appends, trims };
  }

  /** One chunk per key group of the live IDs remembered since the last drain. */
  private appendFresh(ids: IdQueue): DedupDelta['appends'] {
    const byGroup = ids.since(this.freshFrom);
    this.freshFrom = ids.tail;
    const appends: DedupDelta['appends'] = [];
    for (const [keyGroup, slots] of byGroup) {
      const w = this.writer;
      w.reset(slots.length);
      for (const i of slots) ids.writeTo(w, i);
      appends.push({ keyGroup, chunk: w.finish() });
      let seqs = this.logs.get(keyGroup);
      if (seqs === undefined) {
        seqs = [];
        this.logs.set(keyGroup, seqs);
      }
      seqs.push(ids.seqOf(slots[slots.length - 1] as number));
    }
    return appends;
  }
}
