/**
 * Reading dead-letter entries back. The commit (shard/commitBuilder.ts) writes a dead letter as
 *
 *   <the input entry's fields…>  [deliveries <n>]  error "<CODE>: <message>"  source_id <input entry ID>
 *
 * with `deliveries` for the codes in {@link WITH_DELIVERIES} only — so the original fields are what is
 * left once that trailer is taken off the end. Except for `E_ENTRY_TOO_LARGE`: the shard writes such an
 * entry without its fields, with its key only (shard/shard.ts), so its original fields are not there.
 */
import type { Redis } from 'ioredis';
import { DeadLetterCode } from '../errors.js';
import { entriesNewestFirst, type RawEntry } from './streams.js';

/** The codes whose dead letters carry `deliveries` before `error`. */
const WITH_DELIVERIES: ReadonlySet<string> = new Set([
  DeadLetterCode.StageFailed,
  DeadLetterCode.MaxDeliveries,
  DeadLetterCode.WorkerCrash,
]);

export interface DeadLetter {
  /** The dead-letter entry's ID. */
  id: string;
  /** `E_…`; '' when the entry has no `error` field of that form (not written by streamshard). */
  code: string;
  message: string;
  /** The input entry's ID, or null when missing. */
  sourceId: string | null;
  /** For the codes that record it: the input entry's delivery count. */
  deliveries: number | null;
  /** The input entry's fields, exactly; null when the dead letter does not carry them all. */
  original: Buffer[] | null;
  /** Why {@link original} is null. */
  incomplete: string | null;
  /** The key field's value when the entry has one. */
  key: Buffer | null;
}

const named = (fields: readonly Buffer[], at: number, name: string): boolean =>
  at >= 0 && (fields[at] as Buffer).toString() === name;

/** Takes a dead-letter entry apart; `keyField` is the pipeline's `key.field`. */
export function parseDeadLetter(e: RawEntry, keyField: string): DeadLetter {
  const f = e.fields;
  const n = f.length - (f.length % 2);
  const dl: DeadLetter = {
    id: e.id,
    code: '',
    message: '',
    sourceId: null,
    deliveries: null,
    original: null,
    incomplete: null,
    key: null,
  };
  if (!named(f, n - 2, 'source_id') || !named(f, n - 4, 'error')) {
    dl.incomplete = 'not a streamshard dead letter: it does not end with the fields error and source_id';
    dl.key = keyOf(f, n, keyField);
    return dl;
  }
  dl.sourceId = (f[n - 1] as Buffer).toString();
  const error = (f[n - 3] as Buffer).toString();
  const colon = error.indexOf(': ');
  dl.code = colon === -1 ? error : error.slice(0, colon);
  dl.message = colon === -1 ? '' : error.slice(colon + 2);
  let end = n - 4;
  if (WITH_DELIVERIES.has(dl.code) && named(f, end - 2, 'deliveries')) {
    dl.deliveries = Number((f[end - 1] as Buffer).toString());
    end -= 2;
  }
  dl.key = keyOf(f, end, keyField);
  if (dl.code === DeadLetterCode.EntryTooLarge) {
    dl.incomplete = 'written without its fields (E_ENTRY_TOO_LARGE keeps only the key)';
  } else if (!/^E_[A-Z_]+$/.test(dl.code)) {
    dl.incomplete = `its error field does not start with a code: "${error.slice(0, 40)}"`;
  } else {
    dl.original = f.slice(0, end);
  }
  return dl;
}

/** The value of `keyField` among the first `end` fields, or null. */
function keyOf(f: readonly Buffer[], end: number, keyField: string): Buffer | null {
  for (let i = 0; i + 1 < end; i += 2) if (named(f, i, keyField)) return f[i + 1] as Buffer;
  return null;
}

export interface CodeCounts {
  /** Dead letters by code, most frequent first; entries without a code count under "(none)". */
  byCode: Record<string, number>;
  /** Entries looked at: the newest `limit`, or the whole stream. */
  scanned: number;
  /** True when every entry of the stream was counted. */
  complete: boolean;
}

/**
 * Counts the dead letters of `stream` by code, from the newest back, reading at most `limit` entries
 * (0 = the whole stream), in pages (XREVRANGE).
 */
export async function countByCode(
  redis: Redis,
  stream: string,
  keyField: string,
  limit: number,
  length: number,
): Promise<CodeCounts> {
  const counts = new Map<string, number>();
  let scanned = 0;
  for await (const e of entriesNewestFirst(redis, stream, { page: 1000, limit })) {
    const code = parseDeadLetter(e, keyField).code || '(none)';
    counts.set(code, (counts.get(code) ?? 0) + 1);
    scanned++;
  }
  const byCode = Object.fromEntries([...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)));
  return { byCode, scanned, complete: scanned >= length };
}
