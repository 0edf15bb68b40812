/**
 * The seam between the engine's steps and the datastore. Every step — start-up, reader, committer,
 * runner — talks to Redis only through this interface; `redis/redisStore.ts` implements it over two
 * connections (a lean RESP connection for the blocking reads, ioredis for the rest), and the unit tests
 * of the steps' decisions run on `test/helpers/fakeStore.ts` without any Redis.
 *
 *   start-up   connect · serverId · checkFingerprint · establishIncarnation · checkOutputKeys
 *              · loadCheckpoint · othersPending · claimIdle
 *   reader     read · resumeAfterError · ackDeleted · verifyIncarnation · groupMovedBack
 *   committer  commit · serverId
 *   runner     trim · groupInfo · close · disconnect · connected
 *
 * Errors are typed (src/errors.ts) and classified once, inside the implementation: a step checks
 * `instanceof FencedError`, never the text of a reply.
 */
import type { CommitFence } from '../commit/applyOps.js';
import type { StaleStateError } from '../errors.js';
import type { RestoredState } from '../shard/protocol.js';
import type { ReadResult } from '../source/redisSource.js';

export type { CommitFence, ReadResult };

/** The two connections a term uses: the reader's (blocking reads) and the main one (everything else). */
export type ConnectionName = 'reader' | 'main';

/** What establishing the incarnation found (commit/incarnation.ts). */
export type IncarnationOutcome = 'same' | 'created' | 'adopted' | 'migrated';

export interface GroupInfo {
  /** Entries delivered to the group and not acked yet. */
  pending: number;
  /** Entries not delivered to the group yet; null when Redis cannot tell (after XDEL/trim). */
  lag: number | null;
}

export interface Store {
  /** Opens both connections. @throws Error naming the (redacted) URL when Redis cannot be reached */
  connect(): Promise<void>;
  /** Whether the connection is up as of its last event. */
  connected(which: ConnectionName): boolean;
  /** Tells `listener` each time a connection goes up or down (`err` when it went down with an error). */
  onConnection(listener: (which: ConnectionName, up: boolean, err?: Error) => void): void;
  /** The server's `run_id` (another one after a restart or failover), or null if it does not report one. */
  serverId(): Promise<string | null>;

  /** The checkpoint was written by a compatible config. @throws ConfigError otherwise */
  checkFingerprint(): Promise<void>;
  /** Creates or adopts the consumer group and records its incarnation. @throws StaleStateError */
  establishIncarnation(): Promise<IncarnationOutcome>;
  /** The group still carries this state's incarnation. @throws StaleStateError when it does not */
  verifyIncarnation(): Promise<void>;
  /** The error that names why the group delivered `first` after `last` (commit/incarnation.ts). */
  groupMovedBack(first: string, last: string): Promise<StaleStateError>;
  /** Output keys that exist must be streams. @throws Error naming the key and its type */
  checkOutputKeys(): Promise<void>;
  /** One shard's state: the open windows, dedup logs and stream time of its key groups. */
  loadCheckpoint(keyGroups: number[]): Promise<RestoredState>;

  /** Other consumers' pending entries: per consumer `[name, count]`, and their total. */
  othersPending(): Promise<{ others: Array<[string, number]>; total: number }>;
  /** Moves every pending entry idle at least `minIdleMs` to this consumer (XAUTOCLAIM … JUSTID). */
  claimIdle(minIdleMs: number): Promise<void>;

  /**
   * One fenced read of at most `source.batchSize` entries, waiting at most `budgetMs` for new ones; own
   * pending entries first. Fails when the reader's connection closes during it.
   * @throws FencedError, NoGroupError, GroupMovedBackError, connection errors
   */
  read(budgetMs: number): Promise<ReadResult>;
  /** After a failed read: the next one re-reads own pending entries after the last ID received. */
  resumeAfterError(): void;
  /** Acks pending entries whose data was deleted from the stream (nothing to process). */
  ackDeleted(ids: Buffer[]): Promise<void>;

  /**
   * Applies one encoded commit (checkpoint delta, outputs, acks) atomically as `<term>#<seq>` of `shard`.
   * Resolves false when that commit had already been applied (its reply was lost).
   * @throws FencedError, StateLostError (continuity), RedisReplyError (refused), connection errors
   */
  commit(fence: CommitFence, shard: number, seq: number, ops: Uint8Array): Promise<boolean>;

  /** Trims input entries no group needs any more. */
  trim(): Promise<{ floor: string; trimmed: number }>;
  /** The group's pending and lag; never waits on Redis longer than a scrape may (see the implementation). */
  groupInfo(): Promise<GroupInfo | null>;

  /** Closes both connections, giving the main one at most `ms` to quit. */
  close(ms: number): Promise<void>;
  /** Drops both connections at once. */
  disconnect(): void;
  /** Drops the reader's connection (a blocking read in flight fails). */
  disconnectReader(): void;
}
