/**
 * Which incarnation of the input stream and consumer group a pipeline's state belongs to.
 *
 * The checkpoint (windows, dedup memory, stream time, `<ns>:applied`) is only right for the group it was
 * written against: the group's pending list and last-delivered ID say which entries the state already
 * contains. If the stream is deleted and re-created, or the group destroyed (and re-created), while the
 * state stays, applying that state to the new group mixes two histories — new events dead-lettered as late
 * against the old stream time, or processed entries read again (duplicates in pass-through pipelines).
 *
 * The mark: when the pipeline creates the group, or first adopts an existing one, it adds a consumer that
 * never reads, `streamshard-incarnation:<random hex>`, and records its name in `<ns>:meta` (field
 * `incarnation`). Consumers live inside their group and vanish with it (XGROUP DESTROY, DEL or expiry of
 * the stream) but travel with it (DUMP/RESTORE, replication, RDB/AOF). So:
 *
 *   recorded marker │ group on the stream          │ at start
 *   ────────────────┼──────────────────────────────┼──────────────────────────────────────────────
 *   yes             │ has the marker               │ the same incarnation: go on
 *   yes             │ lacks it / missing           │ refuse (StaleStateError): `streamshard reset`
 *   no, checkpoint  │ exists                       │ adopt it (checkpoints written before markers)
 *   no, checkpoint  │ missing                      │ refuse: the group the checkpoint belongs to is gone
 *   no, no state    │ exists / missing             │ adopt / create it at `source.startId` (fresh)
 *
 * The marker consumer is created before its name is recorded: a crash (or a Redis that loses the last
 * writes — they are lost in order) in between leaves an unused marker, never a recorded one that is
 * missing. It never reads, so it never has pending entries: XAUTOCLAIM, XPENDING's per-consumer summary
 * (claimOthers), the trim floor (source/trim.ts: per group, not per consumer) and the metrics (XINFO
 * GROUPS pending/lag) never see it. Nothing in streamshard deletes consumers.
 *
 * Mid-run, {@link Incarnation.verify} runs on a NOGROUP read error and every {@link VERIFY_EVERY_MS}
 * (`XINFO CONSUMERS`: one read-only command that fails when the stream or group is gone and lists the
 * consumers otherwise — XPENDING with a consumer filter answers the same for a missing consumer as for an
 * idle one, and XGROUP CREATECONSUMER would write). A group re-created at an earlier position between two
 * reads is caught before anything is processed by the reader itself (source/redisSource.ts: a `>` read
 * never returns an ID at or below one it returned before).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { NoGroupError, NoSuchKeyError, RedisReplyError, StaleStateError, WrongTypeError } from '../errors.js';
import { classifyRedisError } from '../redis/errors.js';
import { fieldOf } from '../source/redisSource.js';
import type { CheckpointKeys } from '../redis/checkpointKeys.js';

/** Name prefix of marker consumers. */
export const MARKER_PREFIX = 'streamshard-incarnation:';

/** How often a running pipeline checks that its group still has the marker (ms). */
export const VERIFY_EVERY_MS = 2000;

/** The field of `<ns>:meta` that holds the marker's name. */
const FIELD = 'incarnation';

export interface IncarnationSource {
  stream: string;
  group: string;
  createGroup: boolean;
  startId: '$' | '0';
}

/** What XINFO CONSUMERS said about the group. */
type GroupLookup =
  | { kind: 'consumers'; names: string[] }
  | { kind: 'no-stream' }
  | { kind: 'no-group' }
  | { kind: 'not-a-stream' };

export class Incarnation {
  /** The marker consumer's name once established. */
  private marker = '';

  constructor(
    private readonly redis: Redis,
    private readonly keys: CheckpointKeys,
    private readonly source: IncarnationSource,
    /** The command that deletes the state, for messages: `streamshard reset -c <file>`. */
    private readonly resetCommand: string,
  ) {}

  /**
   * At start (the caller holds the lease): checks that the group is the one the state belongs to, or
   * creates / adopts it for a fresh or pre-marker state (see the table above).
   *
   * @returns what was done, for the log
   * @throws StaleStateError when the state belongs to another incarnation
   */
  async establish(): Promise<'same' | 'created' | 'adopted' | 'migrated'> {
    const { stream, group } = this.source;
    const recorded = await this.redis.hget(this.keys.meta(), FIELD);
    const found = await this.lookup();
    if (found.kind === 'not-a-stream') throw this.notAStream();
    if (recorded !== null) {
      this.marker = recorded;
      if (found.kind === 'consumers' && found.names.includes(recorded)) return 'same';
      throw this.mismatch(found.kind === 'consumers' ? 'no-marker' : found.kind);
    }
    // No marker recorded: a fresh pipeline, or a checkpoint written before markers existed.
    const hasCheckpoint = (await this.redis.exists(this.keys.applied(), this.keys.streamTime())) > 0;
    let done: 'created' | 'adopted' | 'migrated' = hasCheckpoint ? 'migrated' : 'adopted';
    if (found.kind !== 'consumers') {
      if (hasCheckpoint) throw this.mismatch(found.kind);
      if (!this.source.createGroup) {
        throw new Error(
          `consumer group "${group}" does not exist on stream "${stream}" (and source.createGroup is false): ` +
            `create it (XGROUP CREATE ${stream} ${group} 0 MKSTREAM) or set source.createGroup: true`,
        );
      }
      try {
        await this.redis.xgroup('CREATE', stream, group, this.source.startId, 'MKSTREAM');
        done = 'created';
      } catch (e) {
        const err = classifyRedisError(e);
        if (!(err instanceof RedisReplyError && err.reply === 'BUSYGROUP')) throw err; // created meanwhile: adopt it
      }
    }
    const marker = `${MARKER_PREFIX}${randomBytes(8).toString('hex')}`;
    await this.redis.xgroup('CREATECONSUMER', stream, group, marker);
    await this.redis.hset(this.keys.meta(), FIELD, marker);
    this.marker = marker;
    return done;
  }

  /**
   * Mid-run: resolves when the group still has the marker; throws StaleStateError when the stream or
   * group is gone or re-created; rethrows connection errors (the caller tries again later).
   */
  async verify(): Promise<void> {
    const found = await this.lookup();
    if (found.kind === 'not-a-stream') throw this.notAStream();
    if (found.kind === 'consumers' && found.names.includes(this.marker)) return;
    throw this.mismatch(found.kind === 'consumers' ? 'no-marker' : found.kind);
  }

  /**
   * The reader got an entry at or below one it had already got from this group: the group's position
   * moved back. Names the cause: a re-created group (no marker) or XGROUP SETID (marker still there).
   */
  async movedBack(first: string, last: string): Promise<StaleStateError> {
    try {
      await this.verify();
    } catch (e) {
      if (e instanceof StaleStateError) return e;
    }
    const { stream, group } = this.source;
    return new StaleStateError(
      `consumer group "${group}" on stream "${stream}" delivered entry ${first} after ${last}: its position ` +
        'was moved back (XGROUP SETID) while this pipeline ran. Stopped before processing anything twice. ' +
        'Start it again to re-read from the new position with the current state, or delete the state and ' +
        `the group with \`${this.resetCommand}\` to start over.`,
    );
  }

  private async lookup(): Promise<GroupLookup> {
    try {
      const rows = (await this.redis.xinfo('CONSUMERS', this.source.stream, this.source.group)) as unknown[];
      return { kind: 'consumers', names: rows.map((row) => String(fieldOf(row, 'name'))) };
    } catch (e) {
      const err = classifyRedisError(e);
      if (err instanceof NoGroupError) return { kind: 'no-group' };
      if (err instanceof NoSuchKeyError) return { kind: 'no-stream' };
      if (err instanceof WrongTypeError) return { kind: 'not-a-stream' };
      throw err;
    }
  }

  private notAStream(): StaleStateError {
    return new StaleStateError(
      `the input key "${this.source.stream}" is not a stream (deleted and re-created as another type?): ` +
        `fix or rename it; if it was replaced on purpose, \`${this.resetCommand}\` deletes the old state`,
    );
  }

  private mismatch(kind: 'no-marker' | 'no-stream' | 'no-group'): StaleStateError {
    const { stream, group } = this.source;
    const what =
      kind === 'no-stream'
        ? `the input stream "${stream}" no longer exists (deleted, or expired)`
        : kind === 'no-group'
          ? `the consumer group "${group}" no longer exists on stream "${stream}" (destroyed with XGROUP DESTROY, or the stream was deleted and re-created)`
          : `the consumer group "${group}" on stream "${stream}" is not the one the state was written for: it was destroyed and re-created, or the stream was deleted and re-created`;
    return new StaleStateError(
      `${what}, but this pipeline's state under ${this.keys.ns}:* (checkpoint, stream time, dedup memory) ` +
        'belongs to the old one. Stopped instead of applying stale state (events would be dead-lettered as ' +
        'late, or processed twice). If the stream or group was replaced on purpose, delete the state and ' +
        `the group with \`${this.resetCommand}\`, then start again; otherwise restore the ` +
        'original stream (with its group) and start again.',
    );
  }
}
