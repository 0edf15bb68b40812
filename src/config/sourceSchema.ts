/**
 * Where events come from and how they are read: the Redis connection, the input stream and its consumer
 * group, the key field and the body (part of the pipeline file's schema, schema.ts).
 */
import { z } from 'zod';
import { redisUrlProblem } from '../redis/url.js';
import { DEFAULT_PARTITION_TEMPLATE } from '../partition/partitionOf.js';
import { duration, name } from './fields.js';
import { envelopeSchema } from './mapSchema.js';

/** Connection to Redis. */
export const redisSchema = z
  .object({
    /**
     * Redis URL (`redis://[user:pass@]host:port[/db]`, `rediss://` for TLS).
     * @defaultValue the `REDIS_URL` environment variable, else `redis://127.0.0.1:6379`
     */
    url: z
      .string()
      .superRefine((url, ctx) => {
        const problem = redisUrlProblem(url); // never echoes the URL: it may hold a password
        if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional()
      .describe('Redis URL. Default: $REDIS_URL, else redis://127.0.0.1:6379.'),
    /** @defaultValue 10s */
    connectTimeout: duration('How long one connection attempt may take.').default(10_000),
    /**
     * Start-up: how long to keep retrying (with backoff, logging each failure's cause) while Redis cannot be
     * reached or refuses the login, before exiting 1. A pipeline started before its Redis waits instead of
     * crash-looping. @defaultValue 60s
     */
    startTimeout: duration('How long start-up retries an unreachable Redis before exiting 1.').default(
      60_000,
    ),
    /** Prefix of every key streamshard writes for its own state (checkpoints). @defaultValue `streamshard` */
    keyPrefix: name('Prefix of the keys holding checkpoints.').default('streamshard'),
  })
  .strict()
  .describe('Connection to Redis.');

/** The input stream and its consumer group. */
export const sourceSchema = z
  .object({
    /** The input stream key. */
    stream: name('The input stream key.'),
    /** Consumer group name; also names the checkpoint keys. @defaultValue `streamshard` */
    group: name('Consumer group name.').default('streamshard'),
    /**
     * Consumer name inside the group, unique per instance. A new leader claims the pending entries of other
     * (dead) consumers, so it need not be stable across restarts. @defaultValue `$HOSTNAME`, else the
     * machine's hostname
     */
    consumer: name('Consumer name, unique per instance. Default: hostname.').optional(),
    /**
     * Create the group (and the stream) when missing and the pipeline has no state yet. A group that
     * disappears while state exists is never re-created (commit/incarnation.ts). @defaultValue true
     */
    createGroup: z.boolean().default(true).describe('Create the group when missing.'),
    /** Where a newly created group starts: `$` = only new entries, `0` = the whole stream. @defaultValue `0` */
    startId: z.enum(['$', '0']).default('0').describe('Where a newly created group starts: "$" or "0".'),
    /** XREADGROUP COUNT: entries fetched per read. @defaultValue 1000 */
    batchSize: z.number().int().min(1).max(100_000).default(1000).describe('Entries per XREADGROUP.'),
    /** XREADGROUP BLOCK: how long one read waits for new entries. @defaultValue 1s */
    block: duration('How long one read waits for new entries.').default(1000),
    /**
     * Taking over: pending entries of other consumers (a dead instance) are claimed (XAUTOCLAIM) once idle
     * this long. @defaultValue 5s
     */
    claimIdle: duration("Claim other consumers' pending entries once idle this long.").default(5000),
    /**
     * An entry delivered more often than this (XPENDING delivery count: every re-read after a restart or
     * take-over counts) is dead-lettered with E_MAX_DELIVERIES instead of being processed again. Worker
     * crashes do not count (see `retry.attempts`). @defaultValue 10
     */
    maxDeliveries: z
      .number()
      .int()
      .min(1)
      .max(32_000)
      .default(10)
      .describe('Dead-letter an entry delivered more often than this.'),
    /**
     * Largest entry processed, in bytes: the sum of its field names and values. A larger entry is
     * dead-lettered as E_ENTRY_TOO_LARGE with only its key (when present), the error and `source_id`; the
     * reader drops the bytes of a longer value as they arrive instead of buffering them, so a read holds
     * about `batchSize` × this at most. @defaultValue 1048576 (1 MiB)
     */
    maxEntryBytes: z
      .number()
      .int()
      .min(1024)
      .max(512 * 1024 * 1024)
      .default(1024 * 1024)
      .describe('Dead-letter (E_ENTRY_TOO_LARGE) an entry whose field names and values sum past this.'),
    /**
     * How many partitions the input is split into (issue "Scale out, part 1"; docs/partitions.md). Each
     * partition is a stream of its own, read by its own consumer group under its own lease, checkpoint and
     * commit sequence, and the instances of a pipeline share the partitions. A producer writes a key's
     * events to partition `floor((fnv1a32(key) mod keyGroups) × partitions / keyGroups)` (`partitionOf`
     * in the package; `streamshard produce --partitions`). Fixed for the life of the pipeline's state.
     * `1` reads `stream` itself, exactly as before partitions existed. @defaultValue 1
     */
    partitions: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .default(1)
      .describe('Number of input partitions (streams), shared by the instances of the pipeline.'),
    /**
     * The stream key of partition p, when `partitions` > 1: `{stream}` and `{p}` are replaced. The default
     * puts every key of a partition under one Redis Cluster hash tag (`orders:{orders:7}`).
     * @defaultValue `{stream}:{{stream}:{p}}`
     */
    partitionStream: z
      .string()
      .min(1)
      .default(DEFAULT_PARTITION_TEMPLATE)
      .superRefine((t, ctx) => {
        if (!t.includes('{p}'))
          ctx.addIssue({ code: 'custom', message: 'must contain {p} (the partition number)' });
      })
      .describe('Stream key of partition p: {stream} and {p} are replaced.'),
    /**
     * Trim the input stream below the oldest entry any group still needs (never an entry that is pending
     * or not yet read by a group), every `every`. Unset: no trimming.
     */
    trim: z
      .object({
        /** How often to trim. @defaultValue 10s */
        every: duration('How often to trim the input stream.', { min: 100 }).default(10_000),
      })
      .strict()
      .optional()
      .describe('Trim acknowledged entries from the input stream.'),
  })
  .strict()
  .describe('The input stream and its consumer group.');

/** Where the aggregate ID travels: its own stream field, never inside the body. */
export const keySchema = z
  .object({
    /** The stream field holding the aggregate ID. @defaultValue `key` */
    field: name('The stream field holding the aggregate ID.').default('key'),
  })
  .strict()
  .default({ field: 'key' });

/** How the event body is encoded and where its ID and event time are. */
export const bodySchema = z
  .object({
    /** `msgpack` or `json`: the body is one field; `flat`: every stream field is a body field. @defaultValue `msgpack` */
    encoding: z.enum(['msgpack', 'json', 'flat']).default('msgpack').describe('Body encoding.'),
    /** The stream field holding the body (ignored for `flat`). @defaultValue `data` */
    field: name('The stream field holding the body.').default('data'),
    /** Dot path of the event ID inside the body (used by dedup). @defaultValue `id` */
    idPath: name('Dot path of the event ID.').default('id'),
    /** Dot path of the event time: epoch milliseconds or an ISO-8601 string. @defaultValue `ts` */
    timePath: name('Dot path of the event time (epoch ms or ISO-8601).').default('ts'),
    /**
     * An event whose time is more than this ahead of the wall clock is dead-lettered (`E_FUTURE_TIME`) and
     * does not move stream time. Stream time is the largest event time a shard has seen, so one event X
     * ahead of the clock (a producer with a bad clock, a wrong offset) would close every window X early and
     * make the events after it late; this bounds what one bad clock can do. `0` turns the check off.
     * @defaultValue 1m
     */
    maxFutureSkew: duration(
      'Dead-letter events whose time is more than this ahead of the wall clock; 0 = off.',
    ).default(60_000),
    // --- envelope (issue 14): its own block ---
    /** Body paths of the envelope fields besides `idPath` and `timePath`. Unset: none. */
    envelope: envelopeSchema.optional(),
  })
  .strict()
  .default({ encoding: 'msgpack', field: 'data', idPath: 'id', timePath: 'ts', maxFutureSkew: 60_000 });
