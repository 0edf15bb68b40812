/**
 * Start-up and recovery: everything that rebuilds in-memory state from what Redis has.
 *
 *   open()           connect → note the server (run_id) → the checkpoint's config fingerprint → the
 *                    group's incarnation → output keys are streams → each shard restored from its
 *                    checkpoint into a fresh worker
 *   claimOthers()    take over other (dead) consumers' pending entries, so that the reader's replay of
 *                    its own pending entries re-reads them in ID order
 *   restartWorker()  a worker crashed: a fresh one restored from the checkpoint gets every uncommitted
 *                    batch again, in order
 *
 * The reader re-reads this consumer's pending entries before any new one (source/redisSource.ts): what a
 * previous term read but did not commit is processed again on top of the restored state — exactly once,
 * since the commit that would have acked it also wrote its effects.
 */
import type { InitResult } from '../shard/protocol.js';
import { sleep } from '../util/backoff.js';
import type { Guards } from './guards.js';
import { Lane } from './lane.js';
import type { Term } from './term.js';

const INCARNATION_LOG = {
  created: 'created the consumer group and recorded its incarnation',
  adopted: 'adopted the existing consumer group and recorded its incarnation',
  migrated: 'recorded the incarnation of the consumer group for a checkpoint written before incarnations',
} as const;

export class Recovery {
  constructor(
    private readonly term: Term,
    private readonly guards: Guards,
    /** Each shard's key groups (routing/hash.ts). */
    private readonly shardKeyGroups: number[][],
    /** The shard worker module (a stand-in in unit tests). */
    private readonly worker?: string,
  ) {}

  /** Connects and restores every shard into `term.lanes`. The caller holds the lease. */
  async open(): Promise<void> {
    const { term } = this;
    const { config: c, store, log } = term;
    await store.connect();
    await this.guards.begin();
    await store.checkFingerprint();
    const incarnation = await store.establishIncarnation();
    if (incarnation !== 'same') log.info({ incarnation }, INCARNATION_LOG[incarnation]);
    await store.checkOutputKeys();
    for (let s = 0; s < c.shards; s++) {
      const lane = new Lane(s, c.workerHeapMb, this.worker);
      term.lanes.push(lane);
      const restored = await store.loadCheckpoint(this.shardKeyGroups[s] as number[]);
      const init = await lane.init(c, restored);
      this.warnIfCapped(s, init);
      const fields = { openWindows: restored.windows.length, dedupIds: init.dedupIds };
      log.info({ shard: s, ...fields, streamTime: restored.streamTime }, 'shard restored');
    }
  }

  /**
   * Taking over: moves every other consumer's pending entries to this consumer (XAUTOCLAIM … JUSTID) so
   * that the replay re-reads them in ID order together with our own. Entries idle less than `claimIdle`
   * are waited for: their owner might still be committing them (it will be fenced, but its reads are
   * not). The lease guarantees no other instance reads any more.
   */
  async claimOthers(): Promise<void> {
    const { store, log, metrics, config } = this.term;
    const claimIdle = config.source.claimIdle;
    let before = await store.othersPending();
    let waited = false;
    while (before.total > 0 && !this.term.stopping) {
      // XAUTOCLAIM also moves (to itself) this consumer's own idle entries: harmless, none is in flight yet
      await store.claimIdle(claimIdle);
      const after = await store.othersPending();
      const claimed = before.total - after.total;
      if (claimed > 0) {
        const from = before.others.map(([name, n]) => `${name} (${n})`);
        log.info({ claimed, from }, 'claimed pending entries of other consumers');
        metrics?.entriesClaimed.inc(claimed);
      }
      if (after.total === 0) return;
      if (!waited)
        log.info(
          { claimIdle, left: after.total },
          "waiting for other consumers' pending entries to be idle long enough to claim",
        );
      waited = true;
      await sleep(Math.max(20, Math.min(500, claimIdle / 4)));
      before = after;
    }
  }

  /**
   * The lane's worker crashed (or a task threw): restarts it from the checkpoint and returns every
   * uncommitted batch, resubmitted in order, to commit. Runs as a step of the lane's commit chain, so the
   * lane's later commits wait; other lanes go on. The reader keeps routing into the lane's open batch,
   * which is not flushed until the resubmission is queued (backpressure bounds it).
   */
  async restartWorker(lane: Lane, err: Error): Promise<ReturnType<Lane['resubmit']>> {
    const { term } = this;
    const oldestBatchCrashes = lane.crashed();
    term.metrics?.workerRestarts.inc();
    term.log.warn(
      { shard: lane.shard, err: err.message, generation: lane.generation, oldestBatchCrashes },
      'shard worker crashed; restarting it from the checkpoint',
    );
    const restored = await term.store.loadCheckpoint(this.shardKeyGroups[lane.shard] as number[]);
    this.warnIfCapped(lane.shard, await lane.init(term.config, restored));
    return lane.resubmit(term.config.retry.attempts);
  }

  /** A checkpoint's stream time lay too far in the future (written while the future-time check was off). */
  private warnIfCapped(shard: number, init: InitResult): void {
    const capped = init.streamTimeCapped;
    if (capped === null) return;
    this.term.log.warn(
      {
        shard,
        storedStreamTime: capped.stored,
        storedAs: isoOrNone(capped.stored),
        cappedTo: capped.capped,
        cappedToAs: isoOrNone(capped.capped),
        maxFutureSkew: this.term.config.body.maxFutureSkew,
      },
      'checkpointed stream time is further ahead of the wall clock than body.maxFutureSkew ' +
        '(an event from the future moved it while the check was off or did not exist yet); capped to ' +
        'now + maxFutureSkew, so events more than window size + grace older than that are late',
    );
  }
}

/** An epoch-ms time as ISO-8601, or "(not a date)" beyond what a Date holds (an old checkpoint may say 1e308). */
function isoOrNone(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? '(not a date)' : d.toISOString();
}
