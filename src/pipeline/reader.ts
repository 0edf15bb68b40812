/**
 * The reader step: one loop that reads the input and routes it into the lanes' open batches.
 *
 *   room in every lane? ──no──► wait for a commit to make room (backpressure)
 *   lease certainly ours for the read? ──no──► wait for the renewal (never read unfenced)
 *   same server as the term's? ──no──► StateLostError (Guards.sameServer)
 *   read (own pending entries first, then new ones, fenced) → route → ack deleted → flush what is due
 *
 * Memory stays bounded by shards × maxInFlightPerShard + one read, whatever the backlog. What a failed
 * read means:
 *
 *   FENCED                 → Guards.fenced: read again with the same token, or LeaseLostError
 *   group moved back       → StaleStateError naming the cause; the term stops
 *   NOGROUP                → the group or stream is gone: StaleStateError if it was re-created, else retry
 *   anything else          → retry with backoff (Redis unreachable: the shards are starved, not quiet)
 */
import { FencedError, GroupMovedBackError, NoGroupError, StaleStateError } from '../errors.js';
import { faults } from '../fault/faults.js';
import type { OpenBatch, Router } from '../routing/router.js';
import type { ReadResult } from '../store/store.js';
import { backoffMs, sleep } from '../util/backoff.js';
import type { FlushPolicy } from './flushPolicy.js';
import type { Guards } from './guards.js';
import type { Term } from './term.js';

/** How long the reader waits before asking again whether the lease allows a read. */
const LEASE_WAIT_MS = 20;

export class Reader {
  private loop: Promise<void> = Promise.resolve();
  private wake: (() => void) | null = null;
  private waitingForRoom = false;
  /** Reads so far that returned entries (for the `hold-read-reply` fault). */
  private readsWithEntries = 0;

  constructor(
    private readonly term: Term,
    private readonly guards: Guards,
    private readonly policy: FlushPolicy,
    private readonly router: Router,
    /** The lanes' open batches, in shard order (what the router fills). */
    private readonly openBatches: OpenBatch[],
    /** The state belongs to another incarnation of the group: stop reading and fail the term. */
    private readonly stale: (e: StaleStateError) => void,
  ) {}

  start(): void {
    this.loop = this.run().catch((e: unknown) => this.term.fail(e));
  }

  /** Resolves when the loop has ended (the term stopped running). */
  done(): Promise<void> {
    return this.loop;
  }

  /** True while the loop waits for the lanes to make room. */
  get stalled(): boolean {
    return this.waitingForRoom;
  }

  /** Wakes the loop if it waits for room and there is some now (or the term stopped). */
  signalCapacity(): void {
    const wake = this.wake;
    if (wake !== null && (this.hasRoom() || !this.term.running)) {
      this.wake = null;
      wake();
    }
  }

  private hasRoom(): boolean {
    const max = this.term.config.maxInFlightPerShard;
    for (const l of this.term.lanes) if (l.inFlight + l.batch.size >= max) return false;
    return true;
  }

  private async run(): Promise<void> {
    const { term, policy } = this;
    let failures = 0;
    while (term.running) {
      if (!this.hasRoom()) {
        await this.waitForRoom();
        continue;
      }
      const budget = term.lease.readBudget();
      if (budget <= 0) {
        // The lease may lapse before a read would end: wait for the renewal rather than read unfenced.
        policy.notQuietUntilNow();
        await sleep(LEASE_WAIT_MS);
        continue;
      }
      let read: ReadResult;
      const readStart = Date.now();
      try {
        await this.guards.sameServer();
        read = await term.store.read(budget);
        // After a failure the next read re-reads our own pending entries (resumeAfterError), which works
        // when reading new ones does not (Redis out of memory refuses the fenced read's transaction):
        // only a read of new entries, or one that returned entries, ends the backoff — resetting on the
        // replay made every other read fail at once, a warning every 100 ms.
        if (!read.replay || read.entries.count > 0) failures = 0;
        const hold = faults.holdReadReply;
        if (hold !== null && read.entries.count > 0 && ++this.readsWithEntries === hold.read)
          await sleep(hold.ms);
      } catch (e) {
        if (!term.running) break;
        if (await this.readFailed(e as Error, ++failures)) break;
        continue;
      }
      const n = read.entries.count;
      if (n > 0) {
        term.metrics?.eventsRead.inc(n);
        this.router.route(read.entries, this.openBatches, Date.now(), read.deliveries);
      }
      policy.afterRead(n, readStart, read.replay);
      if (read.deleted.length > 0) await this.ackDeleted(read.deleted);
    }
  }

  private async waitForRoom(): Promise<void> {
    const lanes = this.term.lanes;
    this.term.log.debug(
      { inFlight: lanes.map((l) => l.inFlight), open: lanes.map((l) => l.batch.size) },
      'reader waits for shards to make room',
    );
    this.waitingForRoom = true;
    await new Promise<void>((resolve) => {
      this.wake = resolve;
    });
    this.waitingForRoom = false;
    this.policy.notQuietUntilNow();
  }

  /** Handles a failed read (see the table above); resolves true when the loop must end. */
  private async readFailed(e: Error, failures: number): Promise<boolean> {
    const { term } = this;
    term.store.resumeAfterError();
    if (e instanceof FencedError) {
      await this.guards.fenced(e).catch((lost: unknown) => term.fail(lost));
      return false;
    }
    if (e instanceof GroupMovedBackError) {
      this.stale(await term.store.groupMovedBack(e.first, e.last));
      return true;
    }
    this.policy.notQuietUntilNow(); // Redis unreachable: the shards are starved, not quiet
    term.log.warn({ err: e.message, attempt: failures }, 'read failed; retrying');
    if (e instanceof NoGroupError) {
      // The group or stream is gone: never re-created here (the state would be applied to another one).
      const stale = await term.store.verifyIncarnation().then(
        () => null,
        (v: unknown) => (v instanceof StaleStateError ? v : null),
      );
      if (stale !== null) {
        this.stale(stale);
        return true;
      }
    }
    await sleep(backoffMs(failures));
    return false;
  }

  /** Pending entries whose data is gone have nothing to process; if the ack fails they are re-read later. */
  private async ackDeleted(ids: Buffer[]): Promise<void> {
    const { term } = this;
    try {
      await term.store.ackDeleted(ids);
      term.metrics?.eventsAcked.inc(ids.length);
      term.log.warn({ count: ids.length }, 'acked pending entries that were deleted from the stream');
    } catch (e) {
      term.log.warn(
        { count: ids.length, err: (e as Error).message },
        'could not ack deleted pending entries',
      );
    }
  }
}
