/**
 * `dlq replay`: re-drives dead letters into the input stream with their original fields, once each.
 *
 * The original fields are the dead letter's minus the trailer the commit added (inspect/deadLetters.ts).
 * `E_ENTRY_TOO_LARGE` dead letters hold only the key: for those the input entry is read again by its
 * `source_id` while the input stream still has it (and refused if it is still larger than
 * `source.maxEntryBytes`, which would dead-letter it again); once trimmed, they cannot be replayed.
 *
 * Each replay is one script call (`REPLAY_DEAD_LETTER_1`) that checks the dead letter's mark, XADDs, and
 * marks it, atomically: running a replay twice — or two at once, or again after one that was interrupted
 * — adds nothing for what was replayed. Entries go in one at a time, in dead-letter order, so replayed
 * events of one key keep their order.
 */
import type { Redis } from 'ioredis';
import { inputStreamOf } from '../../partition/scope.js';
import type { PipelineConfig } from '../../config/load.js';
import { DeadLetterCode } from '../../errors.js';
import type { CheckpointKeys } from '../../redis/checkpointKeys.js';
import { replayDeadLetterScript } from '../../redis/scripts/replayDeadLetter-2.js';
import { MAX_COPY_FIELDS } from '../../shard/commitBuilder.js';
import { printable } from '../../sink/sink.js';
import type { DeadLetter } from '../../inspect/deadLetters.js';
import { replayMarksKey, type Selected, type Selection, selectDeadLetters } from './select.js';

export type Outcome =
  | { kind: 'replayed'; newId: string }
  | { kind: 'would replay' }
  | { kind: 'already replayed'; newId: string }
  | { kind: 'refused'; reason: string };

export interface ReplaySummary {
  replayed: number;
  already: number;
  refused: number;
}

/** Replays (or, with `dryRun`, shows) the selected dead letters; prints one line per dead letter. */
export async function replay(
  redis: Redis,
  keys: CheckpointKeys,
  config: PipelineConfig,
  sel: Selection,
  dryRun: boolean,
  say: (line: string) => void,
): Promise<ReplaySummary> {
  const sum: ReplaySummary = { replayed: 0, already: 0, refused: 0 };
  for await (const s of selectDeadLetters(redis, keys, config, sel)) {
    const outcome = await replayOne(redis, keys, config, s, dryRun);
    if (outcome.kind === 'refused') sum.refused++;
    else if (outcome.kind === 'already replayed') sum.already++;
    else sum.replayed++;
    say(describe(s.dl, outcome));
  }
  return sum;
}

async function replayOne(
  redis: Redis,
  keys: CheckpointKeys,
  config: PipelineConfig,
  s: Selected,
  dryRun: boolean,
): Promise<Outcome> {
  if (s.replayedAs !== null) return { kind: 'already replayed', newId: s.replayedAs };
  const fields = await originalFields(redis, config, s.dl);
  if ('reason' in fields) return { kind: 'refused', reason: fields.reason };
  if (dryRun) return { kind: 'would replay' };
  const [added, id] = (await replayDeadLetterScript.run(
    redis,
    [replayMarksKey(keys), inputStreamOf(config, s.dl.key)],
    [s.dl.id, ...fields.fields],
  )) as [number, string];
  return added === 1 ? { kind: 'replayed', newId: id } : { kind: 'already replayed', newId: id };
}

/** The input entry's fields, from the dead letter or, for an oversized entry, from the input stream. */
async function originalFields(
  redis: Redis,
  config: PipelineConfig,
  dl: DeadLetter,
): Promise<{ fields: Buffer[] } | { reason: string }> {
  if (dl.original !== null) {
    return dl.original.length > 0 ? { fields: dl.original } : { reason: 'the dead letter carries no fields' };
  }
  if (dl.code !== DeadLetterCode.EntryTooLarge || dl.sourceId === null) {
    return { reason: dl.incomplete ?? 'its original fields are unknown' };
  }
  const input = inputStreamOf(config, dl.key);
  const [entry] = await redis.xrangeBuffer(input, dl.sourceId, dl.sourceId);
  if (entry === undefined || entry[1].length === 0) {
    return {
      reason: `E_ENTRY_TOO_LARGE dead letters hold only the key, and the input entry ${dl.sourceId} is no longer in "${input}" (trimmed or deleted)`,
    };
  }
  if (entry[1].length > MAX_COPY_FIELDS) {
    return {
      reason: `the input entry ${dl.sourceId} has ${entry[1].length} fields (names and values), more than one XADD can copy (${MAX_COPY_FIELDS})`,
    };
  }
  const size = entry[1].reduce((n, f) => n + f.length, 0);
  if (size > config.source.maxEntryBytes) {
    return {
      reason: `the input entry ${dl.sourceId} has ${size} bytes, still more than source.maxEntryBytes (${config.source.maxEntryBytes}): raise it first`,
    };
  }
  return { fields: entry[1] };
}

function describe(dl: DeadLetter, o: Outcome): string {
  const key = dl.key === null ? 'no key' : `key ${JSON.stringify(printable(dl.key))}`;
  const head = `${o.kind.padEnd(16)} ${dl.id} ${dl.code || '(no code)'} ${key}`;
  switch (o.kind) {
    case 'replayed':
      return `${head} → ${o.newId}`;
    case 'already replayed':
      return `${head}: replayed before as ${o.newId}`;
    case 'refused':
      return `${head}: ${o.reason}`;
    case 'would replay':
      return head;
  }
}
