/**
 * The running pipeline's look at itself in Redis, for gauges and the stats log line: refreshed in the
 * background every {@link SAMPLE_EVERY_MS} (the checkpoint's size every {@link SIZE_EVERY} samples), so
 * that a scrape reads the last sample at once and never waits on Redis. The same read helpers as
 * `streamshard status` (group.ts, streams.ts, checkpoint.ts): the two never disagree on what a figure means.
 *
 *   lag seconds      age of the oldest entry not yet acked — pending, or not yet delivered to the group
 *   stream lengths   input, output (stream sink) and dead-letter streams (XLEN)
 *   checkpoint bytes MEMORY USAGE of every checkpoint key (its window hashes found through their indexes)
 */
import type { Redis } from 'ioredis';
import type { PipelineConfig } from '../config/load.js';
import type { CheckpointKeys } from '../redis/checkpointKeys.js';
import { withTimeout } from '../util/deadline.js';
import { checkpointSize } from './checkpoint.js';
import { groupStatus } from './group.js';
import { redisTimeMs, streamTip } from './streams.js';

export const SAMPLE_EVERY_MS = 5000;
/** Checkpoint size every this many samples (it reads every key's MEMORY USAGE). */
const SIZE_EVERY = 6;
/** A sample that takes longer is dropped (the previous one stays). */
const SAMPLE_TIMEOUT_MS = 4000;

export interface Sample {
  /** Redis' clock when sampled (epoch ms). */
  at: number;
  /** Seconds since the oldest entry not yet acked was added; 0 when every entry is acked. */
  lagSeconds: number;
  pending: number;
  /** Entries not yet delivered to the group; null when Redis cannot tell. */
  lag: number | null;
  lengths: { input: number; output: number | null; deadLetter: number };
  /** null until measured, or when Redis refuses MEMORY USAGE. */
  checkpointBytes: number | null;
}

export class Sampler {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private samples = 0;
  private last: Sample | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly keys: CheckpointKeys,
    private readonly config: PipelineConfig,
    /** Told about a failed sample (the previous sample stays). */
    private readonly onError: (e: Error) => void = () => {},
  ) {}

  /** The latest sample, or null before the first (or after `stop`). */
  get latest(): Sample | null {
    return this.last;
  }

  start(): void {
    if (this.timer !== null) return;
    void this.sampleOnce();
    this.timer = setInterval(() => void this.sampleOnce(), SAMPLE_EVERY_MS);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.last = null;
  }

  private async sampleOnce(): Promise<void> {
    if (this.running || this.redis.status !== 'ready') return; // one at a time; never queue on a down link
    this.running = true;
    try {
      const done = await withTimeout(
        this.take().then((s) => {
          if (this.timer !== null) this.last = s;
        }),
        SAMPLE_TIMEOUT_MS,
      );
      if (!done) this.onError(new Error(`sampling took longer than ${SAMPLE_TIMEOUT_MS} ms`));
    } catch (e) {
      this.onError(e as Error);
    } finally {
      this.running = false;
    }
  }

  private async take(): Promise<Sample> {
    const { redis, config: c, keys } = this;
    const now = await redisTimeMs(redis);
    const [group, input, output, deadLetter] = await Promise.all([
      groupStatus(redis, c.source.stream, c.source.group, now),
      streamTip(redis, c.source.stream, now),
      c.sink.type === 'stream' ? streamTip(redis, c.sink.stream, now) : Promise.resolve(null),
      streamTip(redis, c.deadLetter.stream, now),
    ]);
    const ages = [group.oldestPendingAgeSeconds, group.oldestUnreadAgeSeconds].filter(
      (a): a is number => a !== null,
    );
    let checkpointBytes = this.last?.checkpointBytes ?? null;
    if (this.samples++ % SIZE_EVERY === 0) {
      const windowKeys = await openWindowKeys(redis, keys, c.keyGroups);
      checkpointBytes = (await checkpointSize(redis, keys, c.keyGroups, windowKeys))?.bytes ?? null;
    }
    return {
      at: now,
      lagSeconds: ages.length > 0 ? Math.max(...ages) : 0,
      pending: group.pending,
      lag: group.lag,
      lengths: { input: input.length, output: output?.length ?? null, deadLetter: deadLetter.length },
      checkpointBytes,
    };
  }
}

/** The open window hashes, from the key groups' window indexes (no window is read). */
async function openWindowKeys(redis: Redis, keys: CheckpointKeys, keyGroups: number): Promise<string[]> {
  const p = redis.pipeline();
  for (let g = 0; g < keyGroups; g++) p.smembers(keys.windowIndex(g));
  const replies = (await p.exec()) ?? [];
  const out: string[] = [];
  replies.forEach(([err, starts], g) => {
    if (err) throw err;
    for (const s of starts as string[]) out.push(keys.window(g, Number(s)));
  });
  return out;
}
