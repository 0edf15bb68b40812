/**
 * What the chaos run's output should have been, and how far the real output is from it.
 *
 * The input is read back from Redis (what the pipelines really read) and checked against the generator's
 * sequence. The expected output comes from the brute-force oracle of test/helpers/reference.ts; the
 * comparisons below count, instead of asserting, so that a failing run reports every kind of damage:
 *
 * - windows: lost (missing), duplicated (a (key, window) emitted twice), wrong (aggregates differ, or a
 *   window the oracle does not have), per-key order violations (a key's results not in window order);
 * - pass-through: per key, lost and duplicated entries and order violations against the input order;
 * - dead letters, matched by `source_id`: lost, duplicated, wrong (code or fields differ, or not
 *   expected), and the counts per code on both sides.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { parseConfig } from '../../src/config/load.js';
import { generateEvents, type GeneratorOptions } from '../../src/tools/produce/generator.js';
import {
  asRecord,
  deadLetterOf,
  diffWindows,
  type ExpectedDeadLetter,
  type FieldPair,
  pairsOf,
  reference,
  type StreamEntry,
} from '../helpers/reference.js';

export interface InputCheck {
  /** Entries in the input stream. */
  entries: number;
  /** Entries the generator was asked for. */
  expected: number;
  /** Every entry has the ID `<idMs>-<i + 1>` and exactly the generated fields, none missing or extra. */
  matchesGenerator: boolean;
  firstMismatch: string | null;
}

/** Reads a stream in chunks (Buffer fields), calling `each` per entry; returns how many there were. */
export async function scanStream(
  redis: Redis,
  key: string,
  each: (id: string, fields: Buffer[]) => void,
  chunk = 10_000,
): Promise<number> {
  let start = '-';
  let n = 0;
  for (;;) {
    const rows = await redis.xrangeBuffer(key, start, '+', 'COUNT', chunk);
    for (const [id, fields] of rows) {
      each(id.toString(), fields);
      n++;
    }
    if (rows.length < chunk) return n;
    start = `(${(rows[rows.length - 1] as [Buffer, Buffer[]])[0].toString()}`;
  }
}

/**
 * Shares small field values (names, keys) between entries: millions of entries stay affordable. Returns
 * the same Buffer for the same bytes of up to 16 bytes; longer values are kept as they are.
 */
export function interner(): (b: Buffer) => Buffer {
  const interned = new Map<string, Buffer>();
  return (b) => {
    if (b.length > 16) return b;
    const s = b.toString('latin1');
    let shared = interned.get(s);
    if (!shared) {
      shared = Buffer.from(b);
      interned.set(s, shared);
    }
    return shared;
  };
}

/**
 * The whole input stream, with small field values (names, keys) shared between entries to keep millions
 * of entries affordable, checked entry by entry against a fresh run of the generator.
 */
export async function readInput(
  redis: Redis,
  stream: string,
  gen: GeneratorOptions,
  idMs: number,
): Promise<{ entries: StreamEntry[]; check: InputCheck }> {
  const intern = interner();
  const generated = generateEvents(gen);
  const entries: StreamEntry[] = [];
  let firstMismatch: string | null = null;
  await scanStream(redis, stream, (id, fields) => {
    const i = entries.length;
    entries.push({ id, fields: fields.map(intern) });
    if (firstMismatch !== null) return;
    const want = generated.next();
    if (want.done) firstMismatch = `entry #${i} (${id}) was never generated`;
    else if (id !== `${idMs}-${i + 1}`) firstMismatch = `entry #${i} has ID ${id}, expected ${idMs}-${i + 1}`;
    else if (
      want.value.fields.length !== fields.length ||
      want.value.fields.some((f, j) => !Buffer.from(f).equals(fields[j] as Buffer))
    ) {
      firstMismatch = `entry #${i} (${id}) differs from the generated one`;
    }
  });
  if (firstMismatch === null && entries.length < gen.count) {
    firstMismatch = `only ${entries.length} of ${gen.count} entries are in the stream`;
  }
  return {
    entries,
    check: {
      entries: entries.length,
      expected: gen.count,
      matchesGenerator: firstMismatch === null,
      firstMismatch,
    },
  };
}

/* ---------------------------------------------------------------------------------------------------- */

export interface OutputCheck {
  expected: number;
  actual: number;
  lost: number;
  duplicated: number;
  wrong: number;
  /** Per key: results (windows) or entries (pass-through) out of order. */
  orderViolations: number;
  /** A few examples of each kind, for the report. */
  examples: Record<string, unknown[]>;
}

export interface DeadLetterCheck {
  expected: number;
  actual: number;
  lost: number;
  duplicated: number;
  wrong: number;
  byCode: { expected: Record<string, number>; actual: Record<string, number> };
  examples: Record<string, unknown[]>;
}

function note(examples: Record<string, unknown[]>, kind: string, what: unknown): void {
  const list = (examples[kind] ??= []);
  if (list.length < 5) list.push(what);
}

/** Expected output of one pipeline in the shape the comparisons take. */
export interface Expectation {
  /** Windows: the oracle's results. Pass-through: per key, one token per entry in input order. */
  windows?: FieldPair[][];
  passThrough?: Map<string, string[]>;
  deadLetters: ExpectedDeadLetter[];
}

/** The windows pipeline's expectation: the oracle over the whole input. */
export function expectWindows(entries: StreamEntry[], yaml: string): Expectation {
  const expected = reference(entries, parseConfig(yaml, '(chaos windows)', { env: {} }));
  return { windows: expected.sink, deadLetters: expected.deadLetters };
}

/** A compact stand-in for a pass-through entry: a hash of its fields (the same fields, the same token). */
function token(pairs: FieldPair[]): string {
  return createHash('md5').update(JSON.stringify(pairs)).digest('base64').slice(0, 16);
}

function keyOf(pairs: FieldPair[], keyField: string): string {
  return pairs.find((p) => p[0] === keyField)?.[1] ?? '';
}

/**
 * The pass-through pipeline's expectation. Without stages the oracle keeps no state that matters (no
 * window, no dedup; stream time decides nothing), so it runs over slices of the input and the results are
 * concatenated — the same output as one run over everything, without holding every entry's copy at once.
 */
export function expectPassThrough(entries: StreamEntry[], yaml: string, keyField = 'key'): Expectation {
  const config = parseConfig(yaml, '(chaos order)', { env: {} });
  if (config.stages.length > 0) throw new Error('expectPassThrough: the pipeline has stages');
  const passThrough = new Map<string, string[]>();
  const deadLetters: ExpectedDeadLetter[] = [];
  const SLICE = 50_000;
  for (let i = 0; i < entries.length; i += SLICE) {
    const part = reference(entries.slice(i, i + SLICE), config);
    for (const pairs of part.sink) {
      const key = keyOf(pairs, keyField);
      let list = passThrough.get(key);
      if (!list) passThrough.set(key, (list = []));
      list.push(token(pairs));
    }
    deadLetters.push(...part.deadLetters);
  }
  return { passThrough, deadLetters };
}

/** Compares the windows sink with the oracle's results. */
export async function checkWindows(
  redis: Redis,
  sink: string,
  expected: FieldPair[][],
): Promise<OutputCheck> {
  const actual: FieldPair[][] = [];
  await scanStream(redis, sink, (_id, fields) => actual.push(pairsOf(fields)));
  const diff = diffWindows(expected, actual);
  const examples: Record<string, unknown[]> = {};
  if (diff.missing > 0) examples.lost = diff.examples.missing;
  if (diff.duplicated > 0) examples.duplicated = diff.examples.duplicated;
  if (diff.changed > 0) examples.wrong = diff.examples.changed;
  if (diff.extra > 0) examples.unexpected = diff.examples.extra;
  // Per key, results must come in window order (a shard emits windows as they close, by start). A repeat
  // of the same window is counted as duplicated above, not here.
  const lastStart = new Map<string, number>();
  let orderViolations = 0;
  for (const r of actual) {
    const rec = asRecord(r);
    const key = rec.key ?? '';
    const start = Number(rec.window_start);
    const before = lastStart.get(key);
    if (before !== undefined && start < before) {
      orderViolations++;
      note(examples, 'orderViolations', { key, windowStart: start, after: before });
    }
    lastStart.set(key, start);
  }
  return {
    expected: expected.length,
    actual: actual.length,
    lost: diff.missing,
    duplicated: diff.duplicated,
    wrong: diff.changed + diff.extra,
    orderViolations,
    examples,
  };
}

/**
 * Compares the pass-through sink with the input, per key. The n-th copy of an entry in the output is
 * matched with the n-th occurrence of the same fields in the input (the generator's duplicates are
 * identical entries); copies beyond the input's count are duplicated, input entries without a match are
 * lost, output entries that match nothing are wrong, and an order violation is a matched entry that
 * comes after one that followed it in the input.
 */
export async function checkPassThrough(
  redis: Redis,
  sink: string,
  expected: Map<string, string[]>,
  keyField = 'key',
): Promise<OutputCheck> {
  const actual = new Map<string, { tokens: string[]; ids: string[] }>();
  let actualCount = 0;
  await scanStream(redis, sink, (id, fields) => {
    const pairs = pairsOf(fields);
    const key = keyOf(pairs, keyField);
    let list = actual.get(key);
    if (!list) actual.set(key, (list = { tokens: [], ids: [] }));
    list.tokens.push(token(pairs));
    list.ids.push(id);
    actualCount++;
  });
  const out: OutputCheck = {
    expected: 0,
    actual: actualCount,
    lost: 0,
    duplicated: 0,
    wrong: 0,
    orderViolations: 0,
    examples: {},
  };
  for (const [key, want] of expected) {
    out.expected += want.length;
    const position = new Map<string, number>(); // `<token>#<occurrence>` → index in the input order
    const occurrences = new Map<string, number>();
    want.forEach((t, i) => {
      const n = occurrences.get(t) ?? 0;
      occurrences.set(t, n + 1);
      position.set(`${t}#${n}`, i);
    });
    const seen = new Map<string, number>();
    let matched = 0;
    let previous = -1;
    let previousId = '';
    const got = actual.get(key) ?? { tokens: [], ids: [] };
    got.tokens.forEach((t, j) => {
      const sinkId = got.ids[j] as string;
      const n = seen.get(t) ?? 0;
      seen.set(t, n + 1);
      const at = position.get(`${t}#${n}`);
      if (at === undefined) {
        if (occurrences.has(t)) {
          out.duplicated++;
          note(out.examples, 'duplicated', { key, inputPosition: position.get(`${t}#0`), sinkId });
        } else {
          out.wrong++;
          note(out.examples, 'wrong', { key, sinkId });
        }
        return;
      }
      matched++;
      if (at < previous) {
        out.orderViolations++;
        // positions count the key's entries in input order; sink IDs tell when each was written
        note(out.examples, 'orderViolations', {
          key,
          inputPosition: at,
          sinkId,
          after: previous,
          afterSinkId: previousId,
        });
      }
      previous = at;
      previousId = sinkId;
    });
    if (matched < want.length) {
      out.lost += want.length - matched;
      note(out.examples, 'lost', { key, expected: want.length, matched });
    }
  }
  for (const [key, got] of actual) {
    if (expected.has(key)) continue;
    out.wrong += got.tokens.length;
    note(out.examples, 'wrong', { key, entries: got.tokens.length, note: 'key not expected at all' });
  }
  return out;
}

function countCodes(rows: Array<{ code: string }>): Record<string, number> {
  const c: Record<string, number> = {};
  for (const r of rows) c[r.code] = (c[r.code] ?? 0) + 1;
  return c;
}

/** Compares a dead-letter stream with the oracle's dead letters, by source entry ID. */
export async function checkDeadLetters(
  redis: Redis,
  dlq: string,
  expected: ExpectedDeadLetter[],
): Promise<DeadLetterCheck> {
  const actual: ReturnType<typeof deadLetterOf>[] = [];
  await scanStream(redis, dlq, (id, fields) => actual.push(deadLetterOf({ id, fields })));
  const want = new Map(expected.map((d) => [d.sourceId, d]));
  const matched = new Set<string>();
  const out: DeadLetterCheck = {
    expected: expected.length,
    actual: actual.length,
    lost: 0,
    duplicated: 0,
    wrong: 0,
    byCode: { expected: countCodes(expected), actual: countCodes(actual) },
    examples: {},
  };
  for (const d of actual) {
    const w = want.get(d.sourceId);
    const well =
      d.tail.join() === 'error,source_id' &&
      /^E_[A-Z_]+: \S/.test(d.error) &&
      w !== undefined &&
      w.code === d.code &&
      JSON.stringify(w.fields) === JSON.stringify(d.fields);
    if (matched.has(d.sourceId)) {
      out.duplicated++;
      note(out.examples, 'duplicated', { sourceId: d.sourceId, code: d.code });
    } else if (!well) {
      out.wrong++;
      note(out.examples, 'wrong', { sourceId: d.sourceId, error: d.error, expectedCode: w?.code ?? null });
    }
    if (w !== undefined) matched.add(d.sourceId);
  }
  for (const w of expected) {
    if (matched.has(w.sourceId)) continue;
    out.lost++;
    note(out.examples, 'lost', { sourceId: w.sourceId, code: w.code });
  }
  return out;
}
