/**
 * Which dead letters `dlq list` and `dlq replay` work on: the dead-letter stream from `--since` (an ID,
 * inclusive) in ID order, those of the `--code`s given, up to `--limit` — each with its replay mark.
 *
 * Replay marks live in one HASH per pipeline, `<ns>:replayed` (dead-letter ID → ID of the input entry
 * its replay added), next to the pipeline's checkpoint keys but not part of the checkpoint: `reset` keeps
 * it, as it keeps the dead-letter stream whose entries it marks.
 */
import type { Redis } from 'ioredis';
import type { PipelineConfig } from '../../config/load.js';
import type { CheckpointKeys } from '../../redis/checkpointKeys.js';
import { type DeadLetter, parseDeadLetter } from '../../inspect/deadLetters.js';
import { entriesFrom, type RawEntry } from '../../inspect/streams.js';

/** The replay marks' key. */
export function replayMarksKey(keys: CheckpointKeys): string {
  return `${keys.ns}:replayed`;
}

export interface Selection {
  /** Codes to include; empty = all. */
  codes: string[];
  /** First dead-letter ID to look at (inclusive); '-' = the oldest. */
  since: string;
  /** Most dead letters to yield; 0 = no limit. */
  limit: number;
}

export interface Selected {
  raw: RawEntry;
  dl: DeadLetter;
  /** The ID of the input entry an earlier replay added, or null when never replayed. */
  replayedAs: string | null;
}

const PAGE = 500;

export async function* selectDeadLetters(
  redis: Redis,
  keys: CheckpointKeys,
  config: PipelineConfig,
  sel: Selection,
): AsyncGenerator<Selected> {
  const marks = replayMarksKey(keys);
  let page: Array<{ raw: RawEntry; dl: DeadLetter }> = [];
  let n = 0;
  const flush = async function* (): AsyncGenerator<Selected> {
    if (page.length === 0) return;
    const done = await redis.hmget(marks, ...page.map((p) => p.dl.id));
    for (let i = 0; i < page.length; i++) {
      yield { ...(page[i] as { raw: RawEntry; dl: DeadLetter }), replayedAs: done[i] ?? null };
    }
    page = [];
  };
  for await (const raw of entriesFrom(redis, config.deadLetter.stream, sel.since, { page: PAGE })) {
    const dl = parseDeadLetter(raw, config.key.field);
    if (sel.codes.length > 0 && !sel.codes.includes(dl.code)) continue;
    page.push({ raw, dl });
    n++;
    if (page.length >= PAGE) yield* flush();
    if (sel.limit > 0 && n >= sel.limit) break;
  }
  yield* flush();
}
