/**
 * The Store over a real Redis (store/store.ts): what every integration test and every deployment runs.
 *
 *   reader connection (redis/respConnection.ts, lean RESP, Buffer replies) ── read · resumeAfterError
 *   main connection   (ioredis)            ── everything else: commit, claim, checkpoint, group info …
 *
 * A blocking read holds its connection, so the two never share one. Both reconnect on their own; the
 * store reports each change through `onConnection` (the runner logs it and re-checks the server).
 */
import type { Redis } from 'ioredis';
import { applyOps, type CommitFence } from '../commit/applyOps.js';
import { checkFingerprint } from '../commit/fingerprint.js';
import { CheckpointKeys } from '../redis/checkpointKeys.js';
import { Incarnation } from '../commit/incarnation.js';
import { loadCheckpoint } from '../commit/restore.js';
import type { PipelineConfig } from '../config/load.js';
import type { StaleStateError } from '../errors.js';
import { closeRedis, connectRedis, openRedis, redactUrl } from '../redis/connect.js';
import { RespConnection } from '../redis/respConnection.js';
import { serverRunId } from '../redis/serverId.js';
import { maskSecrets } from '../redis/url.js';
import type { RestoredState } from '../shard/protocol.js';
import { fieldOf, type ReadResult, RedisSource } from '../source/redisSource.js';
import { trimSafely } from '../source/trim.js';
import { withTimeout } from '../util/deadline.js';
import type { ConnectionName, GroupInfo, IncarnationOutcome, Store } from './store.js';

/** How long a metrics scrape may wait for XINFO GROUPS before it is served the last known value. */
const GROUP_INFO_TIMEOUT_MS = 500;

/** XAUTOCLAIM page size. */
const CLAIM_PAGE = 1000;

export class RedisStore implements Store {
  /** The main connection (commits, claims, checkpoint loads, group info). */
  readonly redis: Redis;
  private readonly reader: RespConnection;
  private readonly source: RedisSource;
  private readonly keys: CheckpointKeys;
  private readonly incarnation: Incarnation;
  private readonly up = { reader: false, main: false };
  private readonly listeners: Array<(which: ConnectionName, up: boolean, err?: Error) => void> = [];
  /** The last group info Redis answered (served while it cannot be asked). */
  private groupInfoLast: GroupInfo | null = null;
  private groupInfoCache: { at: number; value: Promise<GroupInfo | null> } | null = null;

  constructor(
    private readonly config: PipelineConfig,
    /** The fence of the current term: the reader reads new entries only while the lease holds its token. */
    fence: () => CommitFence,
    /** The command that deletes this pipeline's state, for messages. */
    resetCommand: string,
  ) {
    const c = config;
    this.reader = new RespConnection({
      url: c.redis.url,
      name: `streamshard:${c.name}:reader`,
      connectTimeoutMs: c.redis.connectTimeout,
      commandTimeoutMs: c.source.block + 10_000,
      maxRawBulkBytes: c.source.maxEntryBytes,
    });
    this.reader.on('ready', () => this.changed('reader', true));
    this.reader.on('close', () => this.changed('reader', false));
    this.reader.on('error', (e: Error) => this.changed('reader', false, e));
    this.redis = connectRedis({
      url: c.redis.url,
      name: `streamshard:${c.name}:main`,
      connectTimeoutMs: c.redis.connectTimeout,
      onState: (state, err) => this.changed('main', state === 'ready', err),
    });
    this.source = new RedisSource(this.reader, {
      stream: c.source.stream,
      group: c.source.group,
      consumer: c.source.consumer,
      batchSize: c.source.batchSize,
      blockMs: c.source.block,
      fence,
    });
    this.keys = CheckpointKeys.of(c);
    this.incarnation = new Incarnation(this.redis, this.keys, c.source, resetCommand);
  }

  /** Tells the listeners about transitions only: an 'error' and the 'close' after it are one "down". */
  private changed(which: ConnectionName, up: boolean, err?: Error): void {
    const was = this.up[which];
    this.up[which] = up;
    if (was !== up) for (const l of this.listeners) l(which, up, err);
  }

  onConnection(listener: (which: ConnectionName, up: boolean, err?: Error) => void): void {
    this.listeners.push(listener);
  }

  connected(which: ConnectionName): boolean {
    return this.up[which];
  }

  async connect(): Promise<void> {
    const url = this.config.redis.url;
    try {
      await Promise.all([this.reader.connect(), openRedis(this.redis)]);
    } catch (e) {
      this.disconnect();
      const why = maskSecrets((e as Error).message, url);
      throw new Error(`cannot connect to Redis at ${redactUrl(url)}: ${why}`, { cause: e });
    }
  }

  serverId(): Promise<string | null> {
    return serverRunId(this.redis);
  }

  checkFingerprint(): Promise<void> {
    return checkFingerprint(this.redis, this.keys, this.config);
  }

  establishIncarnation(): Promise<IncarnationOutcome> {
    return this.incarnation.establish();
  }

  verifyIncarnation(): Promise<void> {
    return this.incarnation.verify();
  }

  groupMovedBack(first: string, last: string): Promise<StaleStateError> {
    return this.incarnation.movedBack(first, last);
  }

  /** A sink or dead-letter key of another type would make XADD fail inside the commit: refuse at start. */
  async checkOutputKeys(): Promise<void> {
    const c = this.config;
    const keys = [c.deadLetter.stream, ...(c.sink.type === 'stream' ? [c.sink.stream] : [])];
    for (const k of keys) {
      const type = await this.redis.type(k);
      if (type !== 'none' && type !== 'stream')
        throw new Error(`output key "${k}" exists and is a ${type}, not a stream`);
    }
  }

  loadCheckpoint(keyGroups: number[]): Promise<RestoredState> {
    return loadCheckpoint(this.redis, this.keys, keyGroups);
  }

  async othersPending(): Promise<{ others: Array<[string, number]>; total: number }> {
    const { stream, group, consumer } = this.config.source;
    const summary = (await this.redis.xpending(stream, group)) as [number, unknown, unknown, unknown];
    const others = ((summary[3] as Array<[string, string]> | null) ?? [])
      .filter(([name]) => name !== consumer)
      .map(([name, n]): [string, number] => [name, Number(n)]);
    return { others, total: others.reduce((n, [, count]) => n + count, 0) };
  }

  async claimIdle(minIdleMs: number): Promise<void> {
    const { stream, group, consumer } = this.config.source;
    let cursor = '0-0';
    do {
      const reply = (await this.redis.xautoclaim(
        stream,
        group,
        consumer,
        minIdleMs,
        cursor,
        'COUNT',
        CLAIM_PAGE,
        'JUSTID',
      )) as [string, string[], string[]?];
      cursor = reply[0];
    } while (cursor !== '0-0');
  }

  /**
   * One read that fails when the reader's connection closes — also when the close happens between the
   * read's round trips (its cursors then stay where they were).
   */
  read(budgetMs: number): Promise<ReadResult> {
    return new Promise((resolve, reject) => {
      const abort = { aborted: false };
      const onClose = () => {
        abort.aborted = true;
        reject(new Error('the reader connection closed during a read'));
      };
      this.reader.once('close', onClose);
      this.source
        .read(budgetMs, abort)
        .then(resolve, reject)
        .finally(() => this.reader.off('close', onClose));
    });
  }

  resumeAfterError(): void {
    this.source.resumeAfterError();
  }

  async ackDeleted(ids: Buffer[]): Promise<void> {
    const { stream, group } = this.config.source;
    await this.redis.xack(stream, group, ...ids);
  }

  commit(fence: CommitFence, shard: number, seq: number, ops: Uint8Array): Promise<boolean> {
    return applyOps(this.redis, fence, shard, seq, ops);
  }

  trim(): Promise<{ floor: string; trimmed: number }> {
    return trimSafely(this.redis, this.config.source.stream);
  }

  /**
   * XINFO GROUPS for this group, cached for 1 s (several gauges read it per scrape). A scrape never waits
   * on Redis: while the main connection is down it gets the last known value at once (a command would wait
   * in ioredis' queue until Redis is back), and a query gets {@link GROUP_INFO_TIMEOUT_MS}.
   */
  groupInfo(): Promise<GroupInfo | null> {
    const now = Date.now();
    if (!this.up.main) return Promise.resolve(this.groupInfoLast);
    if (this.groupInfoCache && now - this.groupInfoCache.at < 1000) return this.groupInfoCache.value;
    const { stream, group } = this.config.source;
    const query = this.redis.xinfo('GROUPS', stream).then(
      (groups) => {
        const g = (groups as unknown[]).find((x) => fieldOf(x, 'name') === group);
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

  async close(ms: number): Promise<void> {
    this.reader.disconnect();
    await closeRedis(this.redis, ms);
  }

  disconnect(): void {
    this.reader.disconnect();
    this.redis.disconnect();
  }

  disconnectReader(): void {
    this.reader.disconnect();
  }
}
