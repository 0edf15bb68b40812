/**
 * The engine: the main thread's loop. It trusts its config (validated at the door by `Pipeline`).
 *
 *   read (blocking connection) → route into per-shard open batches → flush a batch when it holds
 *   `commit.maxEvents` or its oldest entry waited `commit.maxDelay` → worker → commit (in order per shard)
 *
 * Reading pauses while any shard has `maxInFlightPerShard` events read but not committed (backpressure),
 * so memory is bounded by shards × maxInFlightPerShard + one read, whatever the backlog.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { applyOps, type CommitFence, isFenced } from '../commit/applyOps.js';
import { CheckpointKeys, checkFingerprint } from '../commit/checkpointKeys.js';
import { Incarnation, VERIFY_EVERY_MS } from '../commit/incarnation.js';
import {
  CommitRefusedError,
  LeaseLostError,
  NoGroupError,
  StaleStateError,
  StateLostError,
} from '../errors.js';
import { faults, killSelf } from '../fault/faults.js';
import { loadCheckpoint } from '../commit/restore.js';
import type { PipelineConfig } from '../config/load.js';
import type { Metrics } from '../metrics/metrics.js';
import { closeRedis, connectRedis, openRedis, redactUrl } from '../redis/connect.js';
import { isReplyError } from '../redis/errors.js';
import { maskSecrets } from '../redis/url.js';
import { RespConnection } from '../redis/respConnection.js';
import type { Lease } from '../lease/lease.js';
import { keyGroupsOfShard } from '../routing/hash.js';
import { type OpenBatch, Router } from '../routing/router.js';
import type { InitResult, ShardOutput } from '../shard/protocol.js';
import { printRecords } from '../sink/sink.js';
import { fieldOf, GroupMovedBackError, RedisSource } from '../source/redisSource.js';
import { trimSafely } from '../source/trim.js';
import { withTimeout } from '../util/deadline.js';
import type { Logger } from '../util/log.js';
import { Lane } from './lane.js';

/** How long a metrics scrape may wait for XINFO GROUPS before it is served the last known value. */
const GROUP_INFO_TIMEOUT_MS = 500;

/** After the drain's deadline: the least time closing the workers and the main connection gets. */
const CLOSE_MIN_MS = 500;

/** Error replies to a commit before the pipeline gives up (connection errors are retried forever). */
const MAX_COMMIT_REFUSALS = 5;

export class Engine {
  private readonly reader: RespConnection;
  readonly redis: Redis;
  private readonly source: RedisSource;
  private readonly router: Router;
  private readonly keys: CheckpointKeys;
  private readonly shardKeyGroups: number[][];
  private lanes: Lane[] = [];
  /** The lanes' open batches, in shard order (what the router fills). */
  private readonly openBatches: OpenBatch[] = [];
  private running = false;
  private stopping = false;
  private readLoop: Promise<void> = Promise.resolve();
  private flushTimer: NodeJS.Timeout | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private trimTimer: NodeJS.Timeout | null = null;
  private verifyTimer: NodeJS.Timeout | null = null;
  private verifying = false;
  /** Which incarnation of the stream and group the state belongs to (commit/incarnation.ts). */
  private readonly incarnation: Incarnation;
  private wakeReader: (() => void) | null = null;
  private failure: Error | null = null;
  /** True while the read loop waits for shards to make room (backpressure). */
  private readerStalled = false;
  /**
   * Wall ms when the latest read that found the stream caught up (fewer than `source.batchSize` new
   * entries) was sent. Quiet time is counted up to here, not up to now: a read still in flight (a huge
   * reply, a slow Redis) may bring events for a shard, so it is no evidence that the shard is quiet — idle
   * close then lags by at most one read (`source.block`).
   */
  private caughtUpAt = Number.NEGATIVE_INFINITY;
  /** Reads so far that returned entries (for the `hold-read-reply` fault). */
  private readsWithEntries = 0;
  private readonly idleClose: number;
  private groupPresent = false;
  private connected = { reader: false, main: false };
  /** The last group info Redis answered (served while it cannot be asked). */
  private groupInfoLast: { pending: number; lag: number | null } | null = null;
  private groupInfoCache: {
    at: number;
    value: Promise<{ pending: number; lag: number | null } | null>;
  } | null = null;
  /** Called once if the engine hits an unrecoverable error (a bug, a refused commit) or lost its lease. */
  onFatal: (e: Error) => void = () => {};
  private fence: CommitFence | null = null;
  /** Commits sent by this engine (for fault injection). */
  private commitsSent = 0;
  /** The Redis server's run_id at start. */
  private runId: string | null = null;
  /** Resolved while the server is known to be the one this term started on; null after a reconnect. */
  private serverVerified: Promise<void> | null = Promise.resolve();
  /** performance.now() when this leadership term began, until its first commit is applied. */
  private recoveringSince: number | null = null;

  constructor(
    private readonly config: PipelineConfig,
    private readonly metrics: Metrics | null,
    private readonly log: Logger,
    private readonly lease: Lease,
    /** The command that deletes this pipeline's state, for messages. */
    resetCommand = 'streamshard reset -c <pipeline file>',
  ) {
    const c = config;
    const onState = (which: 'reader' | 'main') => (state: 'ready' | 'down', err?: Error) => {
      const was = this.connected[which];
      this.connected[which] = state === 'ready';
      if (was && state === 'down' && !this.stopping)
        log.warn({ connection: which, err: err?.message }, 'redis connection lost');
      if (!was && state === 'ready' && this.running) {
        log.info({ connection: which }, 'redis connection restored');
        this.serverVerified = null; // the next read and commit first check it is the same server
      }
    };
    // The reader has a connection of its own, with its own lean reply parser (redis/respConnection.ts).
    this.reader = new RespConnection({
      url: c.redis.url,
      name: `streamshard:${c.name}:reader`,
      connectTimeoutMs: c.redis.connectTimeout,
      commandTimeoutMs: c.source.block + 10_000,
      maxRawBulkBytes: c.source.maxEntryBytes,
    });
    const readerState = onState('reader');
    this.reader.on('ready', () => readerState('ready'));
    this.reader.on('close', () => readerState('down'));
    this.reader.on('error', (e: Error) => readerState('down', e));
    this.redis = connectRedis({
      url: c.redis.url,
      name: `streamshard:${c.name}:main`,
      connectTimeoutMs: c.redis.connectTimeout,
      onState: onState('main'),
    });
    this.source = new RedisSource(this.reader, {
      stream: c.source.stream,
      group: c.source.group,
      consumer: c.source.consumer,
      batchSize: c.source.batchSize,
      blockMs: c.source.block,
      fence: () => this.fence as CommitFence,
    });
    this.idleClose = windowIdleClose(c);
    this.router = new Router(c.key.field, c.keyGroups, c.shards, c.source.maxEntryBytes);
    this.keys = new CheckpointKeys(c.redis.keyPrefix, c.source.stream, c.source.group);
    this.incarnation = new Incarnation(this.redis, this.keys, c.source, resetCommand);
    this.shardKeyGroups = Array.from({ length: c.shards }, (_, s) =>
      keyGroupsOfShard(s, c.keyGroups, c.shards),
    );
  }

  /**
   * Connects, restores every shard from its checkpoint, claims the pending entries of other (dead)
   * consumers, then starts reading (own pending entries first). The caller holds the lease.
   *
   * @param since performance.now() when this term's start-up began, for the recovery-time metric
   */
  async start(since = performance.now()): Promise<void> {
    const c = this.config;
    this.recoveringSince = since;
    this.fence = {
      leaseKey: this.keys.lease(),
      appliedKey: this.keys.applied(),
      token: this.lease.token,
      term: `${this.lease.token}/${randomBytes(4).toString('hex')}`,
    };
    try {
      await Promise.all([this.reader.connect(), openRedis(this.redis)]);
    } catch (e) {
      this.reader.disconnect();
      this.redis.disconnect();
      const why = maskSecrets((e as Error).message, c.redis.url);
      throw new Error(`cannot connect to Redis at ${redactUrl(c.redis.url)}: ${why}`, { cause: e });
    }
    this.runId = await serverRunId(this.redis);
    await checkFingerprint(this.redis, this.keys, c);
    const incarnation = await this.incarnation.establish();
    if (incarnation !== 'same') this.log.info({ incarnation }, INCARNATION_LOG[incarnation]);
    this.groupPresent = true;
    await this.checkOutputKeys();
    for (let s = 0; s < c.shards; s++) {
      const lane = new Lane(s, c.workerHeapMb);
      this.lanes.push(lane);
      this.openBatches.push(lane.batch);
      const restored = await loadCheckpoint(this.redis, this.keys, this.shardKeyGroups[s] as number[]);
      const init = await lane.init(c, restored);
      this.warnIfCapped(s, init);
      this.log.info(
        {
          shard: s,
          openWindows: restored.windows.length,
          dedupIds: init.dedupIds,
          streamTime: restored.streamTime,
        },
        'shard restored',
      );
    }
    await this.claimOthers();
    if (this.stopping) return; // stopped while starting: read nothing
    this.running = true;
    this.readLoop = this.runReadLoop().catch((e) => this.fail(e));
    const trim = c.source.trim;
    if (trim !== undefined) this.trimTimer = setInterval(() => void this.trim(), trim.every);
    this.verifyTimer = setInterval(() => void this.verifyIncarnation(), VERIFY_EVERY_MS);
    if (this.idleClose > 0) {
      this.tickTimer = setInterval(
        () => this.tickQuietLanes(),
        Math.max(20, Math.min(1000, this.idleClose / 4)),
      );
    }
  }

  /**
   * Taking over: moves every other consumer's pending entries to this consumer (XAUTOCLAIM … JUSTID) so
   * that the replay re-reads them in ID order together with our own. Entries idle less than `claimIdle`
   * are waited for: their owner might still be committing them (it will be fenced, but its reads are
   * not). The lease guarantees no other instance reads any more.
   */
  private async claimOthers(): Promise<void> {
    const c = this.config;
    const { stream, group, consumer } = c.source;
    const othersPending = async () => {
      const summary = (await this.redis.xpending(stream, group)) as [number, unknown, unknown, unknown];
      const others = ((summary[3] as Array<[string, string]> | null) ?? []).filter(
        ([name]) => name !== consumer,
      );
      return { others, total: others.reduce((n, [, count]) => n + Number(count), 0) };
    };
    let before = await othersPending();
    let waited = false;
    while (before.total > 0) {
      // XAUTOCLAIM also moves (to itself) this consumer's own idle entries: harmless, none is in flight yet
      let cursor = '0-0';
      do {
        const reply = (await this.redis.xautoclaim(
          stream,
          group,
          consumer,
          c.source.claimIdle,
          cursor,
          'COUNT',
          1000,
          'JUSTID',
        )) as [string, string[], string[]?];
        cursor = reply[0];
      } while (cursor !== '0-0');
      const after = await othersPending();
      const claimed = before.total - after.total;
      if (claimed > 0) {
        this.log.info(
          { claimed, from: before.others.map(([name, n]) => `${name} (${n})`) },
          'claimed pending entries of other consumers',
        );
        this.metrics?.entriesClaimed.inc(claimed);
      }
      if (after.total === 0) return;
      if (!waited)
        this.log.info(
          { claimIdle: c.source.claimIdle, left: after.total },
          "waiting for other consumers' pending entries to be idle long enough to claim",
        );
      waited = true;
      await sleep(Math.max(20, Math.min(500, c.source.claimIdle / 4)));
      before = after;
    }
  }

  /** Trims input entries no group needs any more (source/trim.ts); a failure is retried next time. */
  private async trim(): Promise<void> {
    try {
      const { floor, trimmed } = await trimSafely(this.redis, this.config.source.stream);
      if (trimmed > 0) {
        this.metrics?.entriesTrimmed.inc(trimmed);
        this.log.debug({ floor, trimmed }, 'trimmed the input stream');
      }
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'trimming the input stream failed');
    }
  }

  /**
   * The group still has the marker of the state's incarnation (a destroy + re-create between two reads
   * is not seen by the reader otherwise). Unreachable Redis: tried again at the next tick.
   */
  private async verifyIncarnation(): Promise<void> {
    // One at a time, and not while the main connection is down: ioredis would queue a check per tick.
    if (!this.running || this.failure !== null || this.verifying || !this.connected.main) return;
    this.verifying = true;
    try {
      await this.incarnation.verify();
    } catch (e) {
      if (e instanceof StaleStateError && this.running) this.stale(e);
    } finally {
      this.verifying = false;
    }
  }

  /** The state belongs to another incarnation of the stream or group: stop reading and fail. */
  private stale(e: StaleStateError): void {
    this.groupPresent = false;
    this.running = false; // no further reads; nothing more is committed once failed
    this.signalCapacity();
    this.fail(e);
  }

  /** A sink or dead-letter key of another type would make XADD fail inside the commit: refuse at start. */
  private async checkOutputKeys(): Promise<void> {
    const c = this.config;
    const keys = [c.deadLetter.stream, ...(c.sink.type === 'stream' ? [c.sink.stream] : [])];
    for (const k of keys) {
      const type = await this.redis.type(k);
      if (type !== 'none' && type !== 'stream')
        throw new Error(`output key "${k}" exists and is a ${type}, not a stream`);
    }
  }

  private async runReadLoop(): Promise<void> {
    const c = this.config;
    let failures = 0;
    while (this.running) {
      if (!this.hasCapacity()) {
        this.log.debug(
          { inFlight: this.lanes.map((l) => l.inFlight), open: this.lanes.map((l) => l.batch.size) },
          'reader waits for shards to make room',
        );
        this.readerStalled = true;
        await new Promise<void>((resolve) => {
          this.wakeReader = resolve;
        });
        this.readerStalled = false;
        this.notQuietUntilNow();
        continue;
      }
      const budget = this.lease.readBudget();
      if (budget <= 0) {
        // The lease may lapse before a read would end: wait for the renewal rather than read unfenced.
        this.notQuietUntilNow();
        await sleep(20);
        continue;
      }
      let read: Awaited<ReturnType<RedisSource['read']>>;
      const readStart = Date.now();
      try {
        await this.sameServer();
        read = await this.readOrAbort(budget);
        // After a failure the next read re-reads our own pending entries (resumeAfterError), which works
        // when reading new ones does not (Redis out of memory refuses the fenced read's transaction):
        // only a read of new entries, or one that returned entries, ends the backoff — resetting on the
        // replay made every other read fail at once, a warning every 100 ms.
        if (!read.replay || read.entries.count > 0) failures = 0;
        const hold = faults.holdReadReply;
        if (hold !== null && read.entries.count > 0 && ++this.readsWithEntries === hold.read)
          await sleep(hold.ms);
      } catch (e) {
        if (!this.running) break;
        this.source.resumeAfterError();
        if (isFenced(e)) {
          await this.leaseFenced(e as Error).catch((lost: unknown) => this.fail(lost));
          continue;
        }
        if (e instanceof GroupMovedBackError) {
          this.stale(await this.incarnation.movedBack(e.first, e.last));
          break;
        }
        this.notQuietUntilNow(); // Redis unreachable: the shards are starved, not quiet
        failures++;
        this.log.warn({ err: (e as Error).message, attempt: failures }, 'read failed; retrying');
        if (e instanceof NoGroupError) {
          // The group or stream is gone: never re-created here (the state would be applied to another one).
          const stale = await this.incarnation.verify().then(
            () => null,
            (v: unknown) => (v instanceof StaleStateError ? v : null),
          );
          if (stale !== null) {
            this.stale(stale);
            break;
          }
        }
        await sleep(Math.min(2000, 50 * 2 ** Math.min(failures, 6)));
        continue;
      }
      const now = Date.now();
      const n = read.entries.count;
      if (!read.replay && n < c.source.batchSize) this.caughtUpAt = readStart;
      if (n > 0) {
        this.metrics?.eventsRead.inc(n);
        this.router.route(read.entries, this.openBatches, now, read.deliveries);
      }
      if (read.deleted.length > 0) await this.ackDeleted(read.deleted);
      // A read of fewer than `batchSize` entries got everything there was: the reader has caught up, and
      // more reads would not fill the batches soon. An idle lane sends what it has at once rather than after
      // `commit.maxDelay` (a busy one sends it when its commit is done, see `partialDue`).
      const caughtUp = n < c.source.batchSize;
      for (const lane of this.lanes) {
        if (lane.batch.size >= c.commit.maxEvents || (caughtUp && this.partialDue(lane))) this.flush(lane);
      }
      this.scheduleFlush();
    }
  }

  /**
   * One read that fails when the reader's connection closes — also when the close happens between the
   * read's round trips (its cursors then stay where they were).
   */
  private readOrAbort(budget: number): ReturnType<RedisSource['read']> {
    return new Promise((resolve, reject) => {
      const abort = { aborted: false };
      const onClose = () => {
        abort.aborted = true;
        reject(new Error('the reader connection closed during a read'));
      };
      this.reader.once('close', onClose);
      this.source
        .read(budget, abort)
        .then(resolve, reject)
        .finally(() => this.reader.off('close', onClose));
    });
  }

  /**
   * A read or commit was fenced: our lease lapsed (e.g. the event loop or Redis stalled past the TTL). If
   * nobody took it, the same token is valid again and the call can be retried; otherwise we must stand
   * down (`LeaseLostError`).
   */
  private async leaseFenced(err: Error): Promise<void> {
    const token = (this.fence as CommitFence).token;
    const state = await this.lease.tryAcquire().catch(() => null);
    if (state !== null && !state.held) throw new LeaseLostError(state.holder);
    if (state !== null && state.token !== token) throw new LeaseLostError(state.token);
    this.log.warn({ err: err.message }, 'lease had lapsed; renewed with the same token');
  }

  /**
   * After a reconnect, before reading or committing again: if Redis restarted or failed over (another
   * run_id), it may have lost writes, and the term must restart from what it has (`StateLostError`), before
   * a stale read or commit can mix old in-memory state with the restored data.
   */
  private sameServer(): Promise<void> {
    this.serverVerified ??= serverRunId(this.redis).then(
      (now) => {
        if (now !== null && this.runId !== null && now !== this.runId) {
          const e = StateLostError.serverChanged(this.runId, now);
          this.fail(e);
          throw e;
        }
      },
      (e: unknown) => {
        this.serverVerified = null; // could not ask: ask again next time
        throw e;
      },
    );
    return this.serverVerified;
  }

  /** A checkpoint's stream time lay too far in the future (written while the future-time check was off). */
  private warnIfCapped(shard: number, init: InitResult): void {
    const capped = init.streamTimeCapped;
    if (capped === null) return;
    this.log.warn(
      {
        shard,
        storedStreamTime: capped.stored,
        storedAs: isoOrNone(capped.stored),
        cappedTo: capped.capped,
        cappedToAs: isoOrNone(capped.capped),
        maxFutureSkew: this.config.body.maxFutureSkew,
      },
      'checkpointed stream time is further ahead of the wall clock than body.maxFutureSkew ' +
        '(an event from the future moved it while the check was off or did not exist yet); capped to ' +
        'now + maxFutureSkew, so events more than window size + grace older than that are late',
    );
  }

  /** After the reader could not read, no shard counts as quiet for the time it was starved. */
  private notQuietUntilNow(): void {
    const now = Date.now();
    for (const lane of this.lanes) lane.starvedUntil(now);
  }

  /** Pending entries whose data is gone have nothing to process; if the ack fails they are re-read later. */
  private async ackDeleted(ids: Buffer[]): Promise<void> {
    try {
      await this.redis.xack(this.config.source.stream, this.config.source.group, ...ids);
      this.metrics?.eventsAcked.inc(ids.length);
      this.log.warn({ count: ids.length }, 'acked pending entries that were deleted from the stream');
    } catch (e) {
      this.log.warn(
        { count: ids.length, err: (e as Error).message },
        'could not ack deleted pending entries',
      );
    }
  }

  private hasCapacity(): boolean {
    const max = this.config.maxInFlightPerShard;
    for (const l of this.lanes) if (l.inFlight + l.batch.size >= max) return false;
    return true;
  }

  private signalCapacity(): void {
    const wake = this.wakeReader;
    if (wake !== null && (this.hasCapacity() || !this.running)) {
      this.wakeReader = null;
      wake();
    }
  }

  /**
   * Group commit: a partial batch (below `commit.maxEvents`) is sent only while its lane has nothing in
   * flight (after `commit.maxDelay`, or at once when a read found nothing new). A busy lane's next batch
   * keeps filling until its commit is done, and goes then (`commitOutput`), so under load commits grow
   * instead of queueing behind each other — at 20k events/s, small
   * batches cut every `maxDelay` queued up and made the latency worse than at a higher rate.
   */
  private partialDue(lane: Lane): boolean {
    return lane.batch.size > 0 && lane.inFlight === 0;
  }

  /** One timer for all idle lanes: fires when the oldest of their open batches reaches `commit.maxDelay`. */
  private scheduleFlush(): void {
    if (this.flushTimer !== null) return;
    let oldest = Number.POSITIVE_INFINITY;
    for (const l of this.lanes) if (this.partialDue(l) && l.batch.since < oldest) oldest = l.batch.since;
    if (oldest === Number.POSITIVE_INFINITY) return;
    const delay = Math.max(0, oldest + this.config.commit.maxDelay - Date.now());
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      const now = Date.now();
      for (const l of this.lanes) {
        if (this.partialDue(l) && now - l.batch.since >= this.config.commit.maxDelay) this.flush(l);
      }
      this.scheduleFlush();
    }, delay);
  }

  private flush(lane: Lane): void {
    if (lane.batch.size === 0 || this.failure !== null || lane.recovering) return;
    const { count, output } = lane.dispatch(Date.now());
    this.enqueueCommit(lane, count, output, true);
  }

  /** Queues the commit of a batch's (or tick's) output behind the lane's earlier commits. */
  private enqueueCommit(lane: Lane, count: number, output: Promise<ShardOutput>, isBatch: boolean): void {
    const epoch = lane.epoch;
    output.catch(() => {}); // observed by its commit step, which may run much later
    lane.enqueue(
      () => this.commitOutput(lane, count, output, epoch, isBatch),
      (e) => this.fail(e),
    );
  }

  private tickQuietLanes(): void {
    if (!this.running || this.failure !== null) return;
    if (this.readerStalled) return;
    if (!this.connected.reader || !this.connected.main) {
      this.notQuietUntilNow(); // Redis unreachable: reads wait in the client's queue; shards are starved
      return;
    }
    const quietUntil = this.caughtUpAt;
    for (const lane of this.lanes) {
      if (!lane.idle || lane.openWindows === 0 || quietUntil - lane.quietSince < this.idleClose) continue;
      this.tick(lane);
    }
  }

  /** Lets the lane's shard advance idle stream time and emit due windows, then commits that. */
  private tick(lane: Lane): void {
    const output = lane.tick(this.caughtUpAt);
    this.enqueueCommit(lane, 0, output, false);
  }

  private async commitOutput(
    lane: Lane,
    count: number,
    pending: Promise<ShardOutput>,
    epoch: number,
    isBatch: boolean,
  ): Promise<void> {
    let out: ShardOutput;
    try {
      out = await pending;
    } catch (e) {
      if (this.failure !== null || lane.epoch !== epoch) return; // resubmitted already
      await this.restartWorker(lane, e as Error);
      return;
    }
    if (this.failure !== null) return; // after a failure nothing more is acked: order would break
    if (lane.epoch !== epoch) return; // its batch was resubmitted after a crash
    if (isBatch) lane.outputTaken();
    if (out.printed.length > 0) printRecords(out.printed);
    if (out.commit !== null) await this.commitWithRetry(lane.shard, lane.nextCommitSeq(), out.commit);
    if (this.recoveringSince !== null && out.commit !== null) {
      const seconds = (performance.now() - this.recoveringSince) / 1000;
      this.recoveringSince = null;
      this.metrics?.recoverySeconds.set(seconds);
      this.log.info({ recoveryMs: Math.round(seconds * 1000) }, 'first commit applied');
    }
    lane.outputCommitted(count, out);
    // What gathered while the lane was busy has waited for a whole commit already: it goes now.
    if (this.partialDue(lane) && this.running) this.flush(lane);
    const m = this.metrics;
    if (m !== null) {
      m.recordBatch(count, out.counts, out.busyMs, out.eventTimes, Date.now());
      m.eventsAcked.inc(out.acked);
      m.resultsWritten.inc(out.resultsWritten);
    }
    // A window close spread over commits goes on with the next batch, or with a tick if none is coming.
    if (out.closePending && lane.idle && this.running && this.failure === null) this.tick(lane);
    this.signalCapacity();
  }

  /**
   * The lane's worker crashed (or a task threw): restart it from the checkpoint and resubmit every
   * uncommitted batch in order. Runs as a step of the lane's commit chain, so the lane's later commits wait;
   * other lanes go on. The reader keeps routing into the lane's open batch, which is not flushed until the
   * resubmission is queued (backpressure bounds it).
   */
  private async restartWorker(lane: Lane, err: Error): Promise<void> {
    const c = this.config;
    const oldestBatchCrashes = lane.crashed();
    this.metrics?.workerRestarts.inc();
    this.log.warn(
      {
        shard: lane.shard,
        err: err.message,
        generation: lane.generation,
        oldestBatchCrashes,
      },
      'shard worker crashed; restarting it from the checkpoint',
    );
    const restored = await loadCheckpoint(this.redis, this.keys, this.shardKeyGroups[lane.shard] as number[]);
    this.warnIfCapped(lane.shard, await lane.init(c, restored));
    const batches = lane.resubmit(c.retry.attempts);
    for (const b of batches) this.enqueueCommit(lane, b.count, b.output, true);
    this.flush(lane);
  }

  /**
   * Retries a commit until it is applied. Connection errors are retried for as long as it takes (Redis
   * restarts, failovers); an error *reply* means Redis refused the writes (wrong key type, out of memory,
   * a bug) and is retried a few times only, then fails the pipeline: its entries stay pending.
   */
  private async commitWithRetry(shard: number, seq: number, commit: Uint8Array): Promise<void> {
    let refusals = 0;
    const fence = this.fence as CommitFence;
    for (let attempt = 1; ; attempt++) {
      const t0 = performance.now();
      const n = attempt === 1 ? ++this.commitsSent : this.commitsSent;
      if (attempt === 1 && faults.killBeforeCommit === n) killSelf();
      try {
        await this.sameServer();
        const applied = await applyOps(this.redis, fence, shard, seq, commit);
        if (attempt === 1 && faults.killAfterCommit === n) killSelf();
        if (attempt === 1 && faults.loseCommitReply === n) {
          throw Object.assign(new Error('injected fault: commit reply lost'), { name: 'ConnectionError' });
        }
        this.metrics?.commitSeconds.observe((performance.now() - t0) / 1000);
        if (!applied) {
          this.metrics?.commitsDeduplicated.inc();
          this.log.warn(
            { shard, seq },
            'commit had already been applied (its reply was lost); not applied twice',
          );
        }
        return;
      } catch (e) {
        const err = e as Error;
        if (this.failure !== null) throw err;
        if (err instanceof StateLostError) throw err; // the continuity check failed (STATELOST)
        if (isFenced(err)) await this.leaseFenced(err);
        if (this.stopping && this.pastDeadline()) throw err;
        // An error reply (FENCED and STATELOST are not: redis/errors.ts) means Redis refused the writes.
        if (isReplyError(err) && ++refusals >= MAX_COMMIT_REFUSALS)
          throw new CommitRefusedError(refusals, err);
        this.metrics?.commitRetries.inc();
        this.log.warn({ shard, attempt, err: err.message }, 'commit failed; retrying');
        await sleep(Math.min(2000, 50 * 2 ** Math.min(attempt, 6)));
      }
    }
  }

  private deadline = Number.POSITIVE_INFINITY;
  private pastDeadline(): boolean {
    return Date.now() > this.deadline;
  }

  private fail(e: unknown): void {
    if (this.failure !== null) return;
    this.failure = e instanceof Error ? e : new Error(String(e));
    // Stale state is an operator's mistake, not a bug: its message says what to do, a stack would bury it.
    const stack = e instanceof StaleStateError ? undefined : this.failure.stack;
    if (!(this.failure instanceof LeaseLostError) && !(this.failure instanceof StateLostError))
      this.log.error({ err: this.failure.message, stack }, 'pipeline failed');
    this.onFatal(this.failure);
  }

  /**
   * Stops at once without committing anything more (the lease is lost: another instance owns the
   * pipeline now and will re-read whatever we did not commit). Workers and connections are closed.
   */
  async abandon(holder: string): Promise<void> {
    if (this.failure === null) this.failure = new LeaseLostError(holder);
    this.stopping = true;
    this.running = false;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.trimTimer) clearInterval(this.trimTimer);
    if (this.verifyTimer) clearInterval(this.verifyTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.signalCapacity();
    this.reader.disconnect();
    await Promise.all(this.lanes.map((l) => l.close().catch(() => {})));
    this.redis.disconnect();
  }

  /**
   * Graceful stop: stop reading, process and commit everything already read, close workers and
   * connections. Whatever is not committed by `timeoutMs` stays pending for the next start.
   */
  async stop(timeoutMs: number): Promise<{ clean: boolean }> {
    if (this.stopping) return { clean: false };
    this.stopping = true;
    this.deadline = Date.now() + timeoutMs;
    this.running = false;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.trimTimer) clearInterval(this.trimTimer);
    if (this.verifyTimer) clearInterval(this.verifyTimer);
    this.signalCapacity();
    // A blocking read in flight ends within `block` ms; entries it returns are flushed below.
    const readDone = await withTimeout(this.readLoop, Math.min(timeoutMs, this.config.source.block + 1000));
    if (!readDone) this.reader.disconnect();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    for (const lane of this.lanes) this.flush(lane);
    const drained = await withTimeout(
      Promise.all(this.lanes.map((l) => l.drained())),
      Math.max(0, this.deadline - Date.now()),
    );
    // Each step has a deadline: with Redis unreachable a QUIT would wait in ioredis' queue forever.
    const closing = Math.max(CLOSE_MIN_MS, this.deadline - Date.now());
    await withTimeout(Promise.all(this.lanes.map((l) => l.close())), closing);
    this.reader.disconnect();
    await closeRedis(this.redis, Math.max(CLOSE_MIN_MS, this.deadline - Date.now()));
    return { clean: drained && this.failure === null };
  }

  /** Readiness checks for /readyz. */
  readiness(): Record<string, boolean> {
    return {
      redis: this.connected.reader && this.connected.main,
      group: this.groupPresent,
      workers: this.running && this.failure === null && this.lanes.length === this.config.shards,
    };
  }

  inFlight(shard: number): number {
    const l = this.lanes[shard];
    return l ? l.inFlight + l.batch.size : 0;
  }

  utilization(shard: number): number {
    return this.lanes[shard]?.utilization() ?? 0;
  }

  /** The shard worker's V8 heap (used, size) in bytes as of its last answer; zeros before any. */
  workerHeap(shard: number): [number, number] {
    const lane = this.lanes[shard];
    return lane === undefined ? [0, 0] : [lane.heapUsed, lane.heapSize];
  }

  /**
   * XINFO GROUPS for this group, cached for 1 s (several gauges read it per scrape). A scrape never waits
   * on Redis: while the main connection is down it gets the last known value at once (a command would wait
   * in ioredis' queue until Redis is back), and a query gets {@link GROUP_INFO_TIMEOUT_MS}.
   */
  groupInfo(): Promise<{ pending: number; lag: number | null } | null> {
    const now = Date.now();
    if (!this.connected.main) return Promise.resolve(this.groupInfoLast);
    if (this.groupInfoCache && now - this.groupInfoCache.at < 1000) return this.groupInfoCache.value;
    const query = this.redis.xinfo('GROUPS', this.config.source.stream).then(
      (groups) => {
        const g = (groups as unknown[]).find((x) => fieldOf(x, 'name') === this.config.source.group);
        if (g === undefined) return null;
        const lag = fieldOf(g, 'lag');
        const info = {
          pending: Number(fieldOf(g, 'pending')),
          lag: lag === null || lag === undefined ? null : Number(lag),
        };
        this.groupInfoLast = info;
        return info;
      },
      () => this.groupInfoLast,
    );
    const value = withTimeout(query, GROUP_INFO_TIMEOUT_MS).then(() => this.groupInfoLast);
    this.groupInfoCache = { at: now, value };
    return value;
  }
}

const INCARNATION_LOG = {
  created: 'created the consumer group and recorded its incarnation',
  adopted: 'adopted the existing consumer group and recorded its incarnation',
  migrated: 'recorded the incarnation of the consumer group for a checkpoint written before incarnations',
} as const;

function windowIdleClose(c: PipelineConfig): number {
  for (const s of c.stages) if ('window' in s) return s.window.idleClose;
  return 0;
}

/** An epoch-ms time as ISO-8601, or "(not a date)" beyond what a Date holds (an old checkpoint may say 1e308). */
function isoOrNone(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? '(not a date)' : d.toISOString();
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The server's `run_id` (changes when Redis restarts or another server answers), or null if not reported. */
async function serverRunId(redis: Redis): Promise<string | null> {
  const info = await redis.info('server');
  return /run_id:(\w+)/.exec(info)?.[1] ?? null;
}
