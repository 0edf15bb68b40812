/**
 * One look at a pipeline in Redis: everything `streamshard status` shows, as one plain object (its
 * `--json` output, documented field by field in docs/operations.md). Reads only; works whether the
 * pipeline runs or not.
 */
import type { Redis } from 'ioredis';
import type { PipelineConfig } from '../config/load.js';
import { partitionConfigs } from '../partition/scope.js';
import { CheckpointKeys } from '../redis/checkpointKeys.js';
import { redactUrl } from '../redis/connect.js';
import { type CheckpointSize, checkpointSize, type ShardState, shardStates } from './checkpoint.js';
import { type CodeCounts, countByCode } from './deadLetters.js';
import { type GroupStatus, groupStatus } from './group.js';
import { type Instances, instances, type LeaseStatus, leaseStatus } from './leadership.js';
import { redisTimeMs, type StreamTip, streamTipOrProblem } from './streams.js';

type Tip = StreamTip | { stream: string; problem: string };

export interface PipelineStatus {
  pipeline: string;
  redis: string;
  /** Redis' clock when the snapshot was taken (ISO-8601); every age is measured against it. */
  at: string;
  lease: LeaseStatus;
  /** null when Redis refuses CLIENT LIST. */
  instances: Instances | null;
  input: Tip;
  group: GroupStatus;
  /**
   * Per shard, for the config's shard count as it resolves on this host (`shards: auto` is cores − 1
   * here, which may differ from the running instance's; `status --shards N` overrides it).
   */
  shards: ShardState[];
  /** null when Redis refuses MEMORY USAGE. */
  checkpoint: CheckpointSize | null;
  /** null for a `stdout` sink. */
  output: Tip | null;
  deadLetters: Tip & { counts: CodeCounts | null };
  /**
   * Seconds since the newest output or dead-letter entry was written: commits write those, so the last
   * commit is at most this old. Commits that only ack or update state are not seen; null when neither
   * stream has an entry.
   */
  lastCommitAgeSeconds: number | null;
  /**
   * With `source.partitions` > 1: every partition's stream, leader and group figures (the fields above
   * describe the one partition `status --partition N` chose, 0 by default); null with one partition.
   */
  partitions: PartitionSummary[] | null;
}

export interface PartitionSummary {
  partition: number;
  stream: string;
  /** The consumer name of the instance holding the partition's lease, or null. */
  leader: string | null;
  pending: number;
  lag: number | null;
  oldestPendingAgeSeconds: number | null;
  oldestUnreadAgeSeconds: number | null;
}

export interface SnapshotOptions {
  /** Dead letters counted by code, newest first; 0 = the whole stream. */
  deadLetterScan: number;
}

export async function snapshot(
  redis: Redis,
  keys: CheckpointKeys,
  c: PipelineConfig,
  opts: SnapshotOptions,
): Promise<PipelineStatus> {
  const now = await redisTimeMs(redis);
  const [lease, inst, input, group, output, dlTip] = await Promise.all([
    leaseStatus(redis, keys),
    instances(redis, c.name),
    streamTipOrProblem(redis, c.source.stream, now),
    groupStatus(redis, c.source.stream, c.source.group, now),
    c.sink.type === 'stream' ? streamTipOrProblem(redis, c.sink.stream, now) : Promise.resolve(null),
    streamTipOrProblem(redis, c.deadLetter.stream, now),
  ]);
  const { shards, windowKeys } = await shardStates(redis, keys, c, now);
  const partitions = c.source.partitions > 1 ? await partitionSummaries(redis, c, now) : null;
  const size = await checkpointSize(redis, keys, c.keyGroups, windowKeys);
  const counts =
    'length' in dlTip && dlTip.length > 0
      ? await countByCode(redis, c.deadLetter.stream, c.key.field, opts.deadLetterScan, dlTip.length)
      : null;
  const ages = [output, dlTip]
    .map((t) => (t !== null && 'lastAgeSeconds' in t ? t.lastAgeSeconds : null))
    .filter((a): a is number => a !== null);
  return {
    pipeline: c.name,
    redis: redactUrl(c.redis.url),
    at: new Date(now).toISOString(),
    lease,
    instances: inst,
    input,
    group,
    shards,
    checkpoint: size,
    output,
    deadLetters: { ...dlTip, counts },
    lastCommitAgeSeconds: ages.length > 0 ? Math.min(...ages) : null,
    partitions,
  };
}

async function partitionSummaries(redis: Redis, c: PipelineConfig, now: number): Promise<PartitionSummary[]> {
  return Promise.all(
    partitionConfigs(c).map(async (pc) => {
      const [lease, g] = await Promise.all([
        leaseStatus(redis, CheckpointKeys.of(pc)),
        groupStatus(redis, pc.source.stream, pc.source.group, now),
      ]);
      return {
        partition: pc.partition.index,
        stream: pc.source.stream,
        leader: lease.consumer,
        pending: g.pending,
        lag: g.lag,
        oldestPendingAgeSeconds: g.oldestPendingAgeSeconds,
        oldestUnreadAgeSeconds: g.oldestUnreadAgeSeconds,
      };
    }),
  );
}
