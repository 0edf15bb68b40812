/**
 * The committer: each lane's outputs are committed in the order their batches were dispatched, one at a
 * time, on the lane's chain (pipeline/lane.ts `enqueue`):
 *
 *   … ─► commit(batch n-1) ─► await output n ─► print (stdout sink) ─► store.commit ─► lane.outputCommitted
 *
 * What can happen to one commit, and what it means:
 *
 *   applied                 → the batch's effects and acks are in Redis; the lane moves on
 *   already applied         → its reply was lost before; counted, not applied twice (commit idempotence)
 *   connection error        → retried with backoff for as long as it takes (Redis restarts, failovers)
 *   FENCED                  → Guards.fenced: retry with the same token, or LeaseLostError (term ends)
 *   STATELOST / new run_id  → StateLostError: the term ends, a new one reloads from Redis
 *   error reply (refused)   → retried MAX_COMMIT_REFUSALS times, then CommitRefusedError (term fails)
 *   the output rejected     → the worker crashed: `onCrash` (start-up/recovery restarts it)
 *   output of an old epoch  → its batch was resubmitted after a crash: dropped
 */
import { CommitRefusedError, FencedError, StateLostError } from '../errors.js';
import { faults, killSelf } from '../fault/faults.js';
import { isReplyError } from '../redis/errors.js';
import type { ShardOutput } from '../shard/protocol.js';
import { printRecords } from '../sink/sink.js';
import type { CommitFence } from '../store/store.js';
import { backoffMs, sleep } from '../util/backoff.js';
import type { Guards } from './guards.js';
import type { Lane } from './lane.js';
import type { Term } from './term.js';

/** Error replies to a commit before the pipeline gives up (connection errors are retried forever). */
export const MAX_COMMIT_REFUSALS = 5;

export interface CommitterHooks {
  /** The lane's worker crashed (its output rejected): restart it and resubmit. Runs on the lane's chain. */
  onCrash(lane: Lane, err: Error): Promise<void>;
  /** A lane's output was committed (or had nothing to commit). */
  onCommitted(lane: Lane, out: ShardOutput): void;
}

export class Committer {
  /** Commits sent by this term (for fault injection). */
  private commitsSent = 0;

  constructor(
    private readonly term: Term,
    private readonly guards: Guards,
    private readonly fence: CommitFence,
    private readonly hooks: CommitterHooks,
  ) {}

  /**
   * Queues the commit of a batch's (`count` events) or a tick's (0) output behind the lane's earlier
   * commits. An output of the current epoch only: a crash meanwhile resubmits the batch.
   */
  enqueue(lane: Lane, count: number, output: Promise<ShardOutput>, isBatch: boolean): void {
    const epoch = lane.epoch;
    output.catch(() => {}); // observed by its commit step, which may run much later
    lane.enqueue(
      () => this.commitOutput(lane, count, output, epoch, isBatch),
      (e) => this.term.fail(e),
    );
  }

  private async commitOutput(
    lane: Lane,
    count: number,
    pending: Promise<ShardOutput>,
    epoch: number,
    isBatch: boolean,
  ): Promise<void> {
    const term = this.term;
    let out: ShardOutput;
    try {
      out = await pending;
    } catch (e) {
      if (term.failure !== null || lane.epoch !== epoch) return; // resubmitted already
      await this.hooks.onCrash(lane, e as Error);
      return;
    }
    if (term.failure !== null) return; // after a failure nothing more is acked: order would break
    if (lane.epoch !== epoch) return; // its batch was resubmitted after a crash
    if (isBatch) lane.outputTaken();
    if (out.printed.length > 0) printRecords(out.printed);
    if (out.commit !== null) await this.commitWithRetry(lane.shard, lane.nextCommitSeq(), out.commit);
    if (term.recoveringSince !== null && out.commit !== null) {
      const seconds = (performance.now() - term.recoveringSince) / 1000;
      term.recoveringSince = null;
      term.metrics?.recoverySeconds.set(seconds);
      term.log.info({ recoveryMs: Math.round(seconds * 1000) }, 'first commit applied');
    }
    lane.outputCommitted(count, out);
    const m = term.metrics;
    if (m !== null) {
      m.recordBatch(count, out.counts, out.busyMs, out.eventTimes, Date.now());
      m.eventsAcked.inc(out.acked);
      m.resultsWritten.inc(out.resultsWritten);
    }
    this.hooks.onCommitted(lane, out);
  }

  /**
   * Retries a commit until it is applied (see the table above). Resolves once applied or found applied.
   * @throws StateLostError, LeaseLostError, CommitRefusedError; the last error when stopping past the deadline
   */
  async commitWithRetry(shard: number, seq: number, commit: Uint8Array): Promise<void> {
    const { term, guards } = this;
    let refusals = 0;
    for (let attempt = 1; ; attempt++) {
      const t0 = performance.now();
      const n = attempt === 1 ? ++this.commitsSent : this.commitsSent;
      if (attempt === 1 && faults.killBeforeCommit === n) killSelf();
      try {
        await guards.sameServer();
        const applied = await term.store.commit(this.fence, shard, seq, commit);
        if (attempt === 1 && faults.killAfterCommit === n) killSelf();
        if (attempt === 1 && faults.loseCommitReply === n) {
          throw Object.assign(new Error('injected fault: commit reply lost'), { name: 'ConnectionError' });
        }
        term.metrics?.commitSeconds.observe((performance.now() - t0) / 1000);
        if (!applied) {
          term.metrics?.commitsDeduplicated.inc();
          term.log.warn(
            { shard, seq },
            'commit had already been applied (its reply was lost); not applied twice',
          );
        }
        return;
      } catch (e) {
        const err = e as Error;
        if (term.failure !== null) throw err;
        if (err instanceof StateLostError) throw err; // the continuity check failed (STATELOST)
        if (err instanceof FencedError) await guards.fenced(err);
        if (term.stopping && term.pastDeadline()) throw err;
        // An error reply (FENCED and STATELOST are not: redis/errors.ts) means Redis refused the writes.
        if (isReplyError(err) && ++refusals >= MAX_COMMIT_REFUSALS)
          throw new CommitRefusedError(refusals, err);
        term.metrics?.commitRetries.inc();
        term.log.warn({ shard, attempt, err: err.message }, 'commit failed; retrying');
        await sleep(backoffMs(attempt));
      }
    }
  }
}
