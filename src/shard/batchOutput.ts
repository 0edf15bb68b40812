/**
 * What a shard returns for a batch or a tick (protocol.ts `BatchResult`): the empty output it starts
 * from, and the dead letters it adds with their messages. A dead letter carries the entry's fields, so
 * that the commit copies them to the dead-letter stream — unless the entry is wider than one XADD can
 * copy ({@link MAX_COPY_FIELDS}): then it goes with its key only, as `E_ENTRY_TOO_LARGE`.
 */
import { DeadLetterCode } from '../errors.js';
import { BatchReader, NO_KEY } from '../routing/batchCodec.js';
import { MAX_COPY_FIELDS } from './commitBuilder.js';
import type { BatchResult, StateDelta } from './protocol.js';

/** A checkpoint delta that changes nothing. */
export function emptyStateDelta(): StateDelta {
  return {
    windowWrites: [],
    windowsOpened: [],
    windowsClosed: [],
    windowRemovals: [],
    dedup: { appends: [], trims: [] },
    rateLimit: { writes: [], removals: [], shard: null },
    order: { writes: [], removals: [] },
    streamTime: null,
  };
}

export function emptyOutput(): BatchResult {
  return {
    results: [],
    passThrough: [],
    projections: [],
    deadLetters: [],
    state: emptyStateDelta(),
    counts: {
      processed: 0,
      filtered: 0,
      deduplicated: 0,
      late: 0,
      windowsEmitted: 0,
      stageRetries: 0,
      rateLimited: 0,
      deadLettered: {},
      byType: [],
    },
    entryIds: [],
    releasedIds: [],
    entryFields: [],
    eventTimes: [],
    openWindows: 0,
    closePending: false,
  };
}

/** Dead-letters the current entry of `r` with `code: message` (and its delivery count, when given). */
export function deadLetter(
  out: BatchResult,
  r: BatchReader,
  code: string,
  message: string,
  deliveries?: number,
): void {
  let fields: Uint8Array[];
  if (r.fieldCount <= MAX_COPY_FIELDS) fields = r.fields();
  else {
    // A copy is one XADD: an entry this wide goes without its fields, its key only.
    if (code !== DeadLetterCode.EntryTooLarge)
      message = `${tooManyFields(r.fieldCount)}; ${code}: ${message}`;
    code = DeadLetterCode.EntryTooLarge;
    fields = r.keyField === NO_KEY ? [] : [r.field(r.keyField - 1), r.field(r.keyField)];
  }
  out.deadLetters.push({ index: r.index, error: `${code}: ${message}`, deliveries });
  out.entryFields[r.index] = fields;
  out.counts.deadLettered[code] = (out.counts.deadLettered[code] ?? 0) + 1;
}

export function tooManyFields(n: number): string {
  return `${n} fields (names and values): more than one XADD can copy (${MAX_COPY_FIELDS})`;
}

export function futureMessage(ts: number, now: number, maxFutureSkew: number): string {
  return (
    `event time ${ts} (${new Date(ts).toISOString()}) is ${ts - now} ms ahead of the wall clock ${now} ` +
    `(${new Date(now).toISOString()}), more than body.maxFutureSkew (${maxFutureSkew} ms): fix the ` +
    "producer's clock or the time's offset, or raise body.maxFutureSkew"
  );
}

export function lateMessage(ts: number, streamTime: number): string {
  return `late: every window of event time ${ts} closed (stream time ${streamTime})`;
}

export function rateLimitedMessage(ts: number): string {
  return `over the rate limit: no token left in the bucket at event time ${ts}`;
}

/**
 * A reader on an entry the order stage held (its bytes as the batch format has them), at output index
 * `index`: after the batch's own entries, so its dead letter or copy does not collide with theirs.
 */
export function heldReader(entry: Uint8Array, index: number): BatchReader {
  const buf = new ArrayBuffer(4 + entry.length);
  new DataView(buf).setUint32(0, 1, true);
  new Uint8Array(buf).set(entry, 4);
  const r = new BatchReader(buf);
  r.next();
  r.index = index;
  return r;
}

export function badVersionMessage(): string {
  return 'version missing or not an integer (order.versionPath)';
}

export function versionGapMessage(version: number): string {
  return `version ${version} held while an earlier version was missing; gave up waiting (order.timeout or order.maxBuffered)`;
}
