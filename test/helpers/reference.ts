/**
 * The brute-force reference ("oracle") for a pipeline run: given every entry of the input stream (as read
 * back with XRANGE) and the parsed config, it computes the complete expected output — sink entries,
 * dead-letter entries and counters — by replaying the spec one event at a time.
 *
 * It is written for obviousness, not speed, and shares no code with the engine except the key → shard
 * function (which is part of the wire/checkpoint contract): windows keep the list of their values and
 * aggregate them only at the end, the dedup memory is a plain Map, every check is spelled out.
 *
 * The rules are those of the brief the tests were written from, refined where docs/configuration.md is
 * more precise (filter comparisons, time strings, result field names); each such place says so.
 *
 * Assumption (true for every test that uses it): the idle timeout never fires while input is still being
 * processed, so windows only close because of stream time, and every window is emitted once at the end.
 */
import { Decoder } from '@msgpack/msgpack';
import type { PipelineConfig } from '../../src/config/load.js';
import type {
  Condition,
  DedupConfig,
  OrderConfig,
  RateLimitConfig,
  WindowConfig,
} from '../../src/config/schema.js';
import { fnv1a, keyGroupOf, shardOfKeyGroup } from '../../src/routing/hash.js';
import { type ExpressionOracle, refEnvelope, refMap, refWhen } from './referenceMap.js';
import { ProjectionReference } from './projectionReference.js';

/** A stream entry as XRANGE returns it: its ID and the flat list name, value, name, value… */
export interface StreamEntry {
  id: string;
  fields: Buffer[];
}

/** A field name/value pair; values are decoded as latin1 so that binary bodies compare losslessly. */
export type FieldPair = [name: string, value: string];

export type ErrorCode =
  | 'E_MISSING_KEY'
  | 'E_WRONG_PARTITION'
  | 'E_BAD_BODY'
  | 'E_MISSING_TIME'
  | 'E_BAD_TIME'
  | 'E_MISSING_ID'
  | 'E_BAD_FIELD'
  | 'E_FUTURE_TIME'
  | 'E_LATE'
  | 'E_ENTRY_TOO_LARGE'
  | 'E_OVERFLOW'
  | 'E_RATE_LIMITED'
  | 'E_VERSION_GAP'
  | 'E_BAD_VERSION'
  | 'E_EXPRESSION';

export interface ExpectedDeadLetter {
  /** ID of the input entry (the `source_id` field). */
  sourceId: string;
  code: ErrorCode;
  /** The original fields, in order (without `error` and `source_id`). */
  fields: FieldPair[];
}

export interface ExpectedCounts {
  read: number;
  acked: number;
  filtered: number;
  deduplicated: number;
  late: number;
  /** Events over a rate limit (dropped or dead-lettered). */
  rateLimited: number;
  /** Dead-lettered events by code (E_LATE included); codes that never occurred are absent. */
  deadLettered: Partial<Record<ErrorCode, number>>;
  /** Window results emitted (0 without a window stage). */
  windowsEmitted: number;
  /** Events that reached the sink or a window. */
  passed: number;
  /**
   * `events_processed_total{type, status}` before the label bound: raw type (`metrics.eventTypes.field`;
   * "unknown" when not decoded or absent, "" without the option) → status → count.
   */
  byType: Record<string, Record<string, number>>;
}

export interface Expected {
  /** Sink entries. Window results: fields key, window_start, window_end, count, <fn>_<field>… */
  sink: FieldPair[][];
  deadLetters: ExpectedDeadLetter[];
  counts: ExpectedCounts;
  /**
   * Project stages: hash key (latin1 of its bytes) → its fields, sorted, `sum` fields as the shortest
   * decimal of their double (projectionReference.ts `normalise`).
   */
  projections: Map<string, Record<string, string>>;
}

/** Lossless string form of a raw field value. */
export function raw(b: Buffer): string {
  return b.toString('latin1');
}

export function pairsOf(fields: Buffer[]): FieldPair[] {
  const out: FieldPair[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    out.push([(fields[i] as Buffer).toString('utf8'), raw(fields[i + 1] as Buffer)]);
  }
  return out;
}

/** Value of the first field with this name, or undefined. */
function fieldValue(fields: Buffer[], name: string): Buffer | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if ((fields[i] as Buffer).toString('utf8') === name) return fields[i + 1] as Buffer;
  }
  return undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** Dot-path lookup: `a.b` → body.a.b; undefined when any step is missing or not an object. */
export function getPath(body: Record<string, unknown>, path: string): unknown {
  let cur: unknown = body;
  for (const part of path.split('.')) {
    if (!isPlainObject(cur) || !Object.hasOwn(cur, part)) return undefined;
    cur = cur[part];
  }
  return cur;
}

const msgpack = new Decoder();

/** Decodes the body; undefined when missing or undecodable or not a map. */
function decodeBody(fields: Buffer[], config: PipelineConfig): Record<string, unknown> | undefined {
  if (config.body.encoding === 'flat') {
    const body: Record<string, unknown> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = (fields[i] as Buffer).toString('utf8');
      if (!Object.hasOwn(body, name)) body[name] = (fields[i + 1] as Buffer).toString('utf8');
    }
    return body;
  }
  const rawBody = fieldValue(fields, config.body.field);
  if (rawBody === undefined) return undefined;
  let decoded: unknown;
  try {
    decoded =
      config.body.encoding === 'json' ? JSON.parse(rawBody.toString('utf8')) : msgpack.decode(rawBody);
  } catch {
    return undefined;
  }
  return isPlainObject(decoded) ? decoded : undefined;
}

/**
 * A finite number in decimal notation like "12.5", "-3", "+.5" or "1e3" (not "", not "abc", not "0x10",
 * " 12 " or "Infinity": docs/configuration.md, "Numbers in strings").
 */
function isNumericString(v: unknown): v is string {
  return (
    typeof v === 'string' && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v) && Number.isFinite(Number(v))
  );
}

/**
 * Event time in epoch ms, or an error code: a finite number, a numeric string, or a string starting
 * YYYY-MM-DD read by Date.parse (docs/configuration.md, `body.timePath`), within what a Date can hold.
 */
function eventTime(v: unknown): number | 'E_MISSING_TIME' | 'E_BAD_TIME' {
  const t = anyTime(v);
  return typeof t === 'number' && Math.abs(t) > 8.64e15 ? 'E_BAD_TIME' : t;
}

function anyTime(v: unknown): number | 'E_MISSING_TIME' | 'E_BAD_TIME' {
  if (v === undefined || v === null) return 'E_MISSING_TIME';
  if (typeof v === 'number') return Number.isFinite(v) ? v : 'E_BAD_TIME';
  if (typeof v === 'string') {
    if (isNumericString(v)) return Number(v);
    if (!/^\d{4}-\d{2}-\d{2}/.test(v)) return 'E_BAD_TIME';
    const t = Date.parse(v);
    return Number.isFinite(t) ? t : 'E_BAD_TIME';
  }
  return 'E_BAD_TIME';
}

/** A usable aggregate value, or undefined. */
function numericValue(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (isNumericString(v)) return Number(v);
  return undefined;
}

/**
 * One filter condition, as docs/configuration.md states the rules: when the configured value is a number
 * (for `in`: the list holds one), a numeric-string field value is read as that number; eq/ne/in compare
 * strictly; gt…lte compare number with number or string with string, any other pairing is false;
 * `exists` asks whether the field is present (null counts as present).
 */
function holds(body: Record<string, unknown>, c: Condition): boolean {
  const numeric =
    typeof c.value === 'number' || (Array.isArray(c.value) && c.value.some((x) => typeof x === 'number'));
  const raw = getPath(body, c.field);
  const v = numeric && isNumericString(raw) ? Number(raw) : raw;
  switch (c.op) {
    case 'exists':
      return (raw !== undefined) === (c.value ?? true);
    case 'eq':
      return v === c.value;
    case 'ne':
      return v !== c.value;
    case 'in':
      return (c.value as unknown[]).includes(v);
    default: {
      const want = c.value as string | number;
      const comparable =
        (typeof v === 'number' && typeof want === 'number') ||
        (typeof v === 'string' && typeof want === 'string');
      if (!comparable) return false;
      if (c.op === 'gt') return v > want;
      if (c.op === 'gte') return v >= want;
      if (c.op === 'lt') return v < want;
      return v <= want;
    }
  }
}

/** Every window start s (multiple of advance) with s <= ts < s + size, ascending. */
export function windowStartsOf(ts: number, size: number, advance: number): number[] {
  const starts: number[] = [];
  for (let s = Math.floor(ts / advance) * advance; s > ts - size; s -= advance) {
    if (s <= ts && ts < s + size) starts.unshift(s);
  }
  return starts;
}

interface WindowAcc {
  /** The key's exact bytes, one char per byte (latin1). */
  key: string;
  start: number;
  /** Per aggregate field: the values in stream order. */
  values: Map<string, number[]>;
  /** Per aggregate field: the sum of `values`, added up in the same order (for E_OVERFLOW). */
  sums: Map<string, number>;
  count: number;
}

/** A decoded event on its way through the stages (held by the order stage until its turn). */
interface RefEvent {
  e: StreamEntry;
  body: Record<string, unknown>;
  ts: number;
  key: string;
  id: unknown;
  aggValues: Map<string, number>;
  shard: ShardState;
}

interface RefOrderKey {
  next: number;
  held: Map<number, RefEvent>;
  heldSince: number;
  touched: number;
}

/** A safe integer, or an integer-valued numeric string; else null. */
function integerVersion(v: unknown): number | null {
  const n = typeof v === 'number' ? v : isNumericString(v) ? Number(v) : Number.NaN;
  return Number.isSafeInteger(n) ? n : null;
}

interface ShardState {
  streamTime: number;
  /** id → stream time when inserted, and the insertion's number. */
  seen: Map<string, { seenAt: number; n: number }>;
  /**
   * Every insertion in order (= seenAt order, stream time never goes back). An insertion whose `n` no
   * longer matches `seen` was superseded by a re-insertion. (A plain Map's "first key" would do, but V8
   * finds it by skipping every deleted slot, which makes long runs quadratic.)
   */
  insertions: Array<{ id: string; n: number }>;
  oldest: number;
  inserted: number;
  /** Order stage: state per key. */
  order: Map<string, RefOrderKey>;
  /** Rate-limit buckets by key ('' for `per: shard`). */
  buckets: Map<string, { tokens: number; last: number; touched: number }>;
}

/**
 * Replays the spec over the whole input. `now` is the wall clock of the future-time check
 * (`body.maxFutureSkew`); the tests' event times are either far from it or well within the limit, so
 * any time during the run gives the same answer.
 */
export function reference(
  entries: StreamEntry[],
  config: PipelineConfig,
  /** `expressions`: the meaning of each `filter.when` / `map.set` expression of the config (referenceMap.ts). */
  opts: { now?: number; expressions?: ReadonlyMap<string, ExpressionOracle> } = {},
): Expected {
  const now = opts.now ?? Date.now();
  const oracles = opts.expressions ?? new Map<string, ExpressionOracle>();
  // with a map stage (never after the window), the aggregated fields are read from the mapped body
  const mapped = config.stages.some((s) => 'map' in s);
  const windowStage = config.stages.find((s): s is { window: WindowConfig } => 'window' in s)?.window;
  const hasDedup = config.stages.some((s) => 'dedup' in s && s.dedup.by === 'id');
  // the distinct fields that some aggregate (other than count) reads
  const aggFields = [
    ...new Set((windowStage?.aggregates ?? []).filter((a) => a.fn !== 'count').map((a) => a.field as string)),
  ];
  const advance = windowStage
    ? windowStage.type === 'hopping'
      ? (windowStage.advance as number)
      : (windowStage.size ?? 0)
    : 0;

  const keyed =
    windowStage?.type === 'session'
      ? new SessionReference(windowStage, aggFields)
      : windowStage?.type === 'sliding'
        ? new SlidingReference(windowStage, aggFields)
        : null;
  const shards = new Map<number, ShardState>();
  const windows = new Map<string, WindowAcc>();
  const sink: FieldPair[][] = [];
  const deadLetters: ExpectedDeadLetter[] = [];
  const projections = new ProjectionReference(config.source.stream);
  const counts: ExpectedCounts = {
    read: entries.length,
    acked: entries.length,
    filtered: 0,
    deduplicated: 0,
    late: 0,
    rateLimited: 0,
    deadLettered: {},
    windowsEmitted: 0,
    passed: 0,
    byType: {},
  };
  // the type of the event being decided (docs/metrics.md): read from a decoded, valid event only
  const typeField = config.metrics.eventTypes?.field;
  let curType = typeField === undefined ? '' : 'unknown';
  const typeOf = (body: Record<string, unknown>): string => {
    if (typeField === undefined) return '';
    const v = getPath(body, typeField);
    const t = typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
    return t === '' ? 'unknown' : t;
  };
  const fate = (status: string) => {
    const row = (counts.byType[curType] ??= {});
    row[status] = (row[status] ?? 0) + 1;
  };
  // An entry is copied (passed through, dead-lettered) as ONE XADD of at most this many fields; a wider
  // one, or one over source.maxEntryBytes, is dead-lettered E_ENTRY_TOO_LARGE with its key only (when
  // there is one of at most 4,096 bytes — the oversized case — or any key — the too-wide case).
  const MAX_COPY_FIELDS = 5988;
  const tooLarge = (e: StreamEntry, keyLimit: number) => {
    const key = fieldValue(e.fields, config.key.field);
    const fields: FieldPair[] =
      key === undefined || key.length > keyLimit ? [] : [[config.key.field, raw(key)]];
    deadLetters.push({ sourceId: e.id, code: 'E_ENTRY_TOO_LARGE', fields });
    fate('dead_lettered');
    counts.deadLettered.E_ENTRY_TOO_LARGE = (counts.deadLettered.E_ENTRY_TOO_LARGE ?? 0) + 1;
  };
  /** `body`: the decoded body (as decoded, before any map), whose envelope fields the entry carries. */
  const deadLetter = (e: StreamEntry, code: ErrorCode, body?: Record<string, unknown>) => {
    if (e.fields.length > MAX_COPY_FIELDS) return tooLarge(e, Number.POSITIVE_INFINITY);
    const fields = pairsOf(e.fields);
    // the envelope fields come when the copy has room for all five (MAX_COPY_FIELDS less 10)
    if (body !== undefined && e.fields.length <= MAX_COPY_FIELDS - 10) {
      fields.push(...refEnvelope(config.body.envelope, body, getPath));
    }
    deadLetters.push({ sourceId: e.id, code, fields });
    fate('dead_lettered');
    counts.deadLettered[code] = (counts.deadLettered[code] ?? 0) + 1;
  };

  /** Runs the stages from index `from` for one decoded event (steps 3–6). */
  const runFrom = (ev: RefEvent, from: number): void => {
    const { e, ts, key, id, shard } = ev;
    let { body, aggValues } = ev;
    curType = typeOf(body);
    // 3.–5. the stages, in config order (from `from`: an event the order stage releases goes on after it)
    let dropped = false;
    for (let si = from; si < config.stages.length; si++) {
      const stage = config.stages[si] as (typeof config.stages)[number];
      if ('order' in stage) {
        offerInOrder(ev, stage.order, si);
        return;
      }
      if ('map' in stage) {
        const out = refMap(stage.map, body, oracles);
        if (out === 'E_EXPRESSION') {
          deadLetter(e, 'E_EXPRESSION', ev.body);
          return;
        }
        body = out;
        continue;
      }
      if ('window' in stage && mapped) {
        // the window's values come from the mapped body; a bad one is E_BAD_FIELD here, not at decode
        aggValues = new Map<string, number>();
        for (const f of aggFields) {
          const v = numericValue(getPath(body, f));
          if (v === undefined) {
            deadLetter(e, 'E_BAD_FIELD', ev.body);
            return;
          }
          aggValues.set(f, v);
        }
      }
      if ('filter' in stage && stage.filter.when !== undefined) {
        const keep = refWhen(stage.filter.when, body, oracles);
        if (keep === 'E_EXPRESSION') {
          deadLetter(e, 'E_EXPRESSION', ev.body);
          return;
        }
        if (!keep) {
          counts.filtered++;
          dropped = true;
          break;
        }
      } else if ('filter' in stage) {
        if (!(stage.filter.where ?? []).every((c) => holds(body, c))) {
          counts.filtered++;
          fate('filtered');
          dropped = true;
          break;
        }
      } else if ('dedup' in stage) {
        const same =
          stage.dedup.by === 'id' ? `id:${String(id)}` : contentIdentity(e, body, stage.dedup, config);
        if (isDuplicate(shard, same, stage.dedup)) {
          counts.deduplicated++;
          fate('duplicate');
          dropped = true;
          break;
        }
      } else if ('rateLimit' in stage) {
        if (!rateAdmits(shard, stage.rateLimit, key, ts)) {
          counts.rateLimited++;
          if (stage.rateLimit.onExcess === 'deadLetter') deadLetter(e, 'E_RATE_LIMITED', ev.body);
          else fate('rate_limited');
          dropped = true;
          break;
        }
      } else if ('project' in stage) {
        if (!projections.apply(stage.project, body, ts, key, e.id)) {
          deadLetter(e, 'E_BAD_FIELD', ev.body);
          dropped = true;
          break;
        }
      } else if (stage.window.type === 'session' || stage.window.type === 'sliding') {
        const verdict = keyed?.add(key, ts, aggValues, shard.streamTime);
        if (verdict !== 'added') {
          if (verdict === 'E_LATE') counts.late++;
          deadLetter(e, verdict ?? 'E_LATE', ev.body);
          dropped = true;
          break;
        }
      } else {
        const w = stage.window as WindowConfig & { size: number };
        const starts = windowStartsOf(ts, w.size, advance);
        const open = starts.filter((s) => shard.streamTime < s + w.size + w.grace);
        if (open.length === 0) {
          counts.late++;
          deadLetter(e, 'E_LATE', ev.body);
          dropped = true;
          break;
        }
        // a sum (sum or avg) of any of its windows that would not be finite: the event changes none
        const summed = w.aggregates.filter((a) => a.fn === 'sum' || a.fn === 'avg').map((a) => a.field);
        const overflows = open.some((s) => {
          const acc = windows.get(`${key}\u0000${s}`);
          return summed.some(
            (f) =>
              acc &&
              !Number.isFinite(
                (acc.sums.get(f as string) as number) + (aggValues.get(f as string) as number),
              ),
          );
        });
        if (overflows) {
          deadLetter(e, 'E_OVERFLOW', ev.body);
          dropped = true;
          break;
        }
        for (const s of open) {
          const wk = `${key}\u0000${s}`;
          let acc = windows.get(wk);
          if (!acc) {
            const values = new Map(aggFields.map((f) => [f, [] as number[]]));
            acc = { key, start: s, values, sums: new Map(aggFields.map((f) => [f, 0])), count: 0 };
            windows.set(wk, acc);
          }
          acc.count++;
          for (const f of aggFields) {
            const v = aggValues.get(f) as number;
            acc.values.get(f)?.push(v);
            acc.sums.set(f, (acc.sums.get(f) as number) + v);
          }
        }
      }
    }
    if (dropped) return;
    // 6. pass-through when there is no window stage
    if (!windowStage && e.fields.length > MAX_COPY_FIELDS) {
      tooLarge(e, Number.POSITIVE_INFINITY);
      return;
    }
    if (!windowStage && mapped) throw new Error('the reference does not model a mapped pass-through body');
    counts.passed++;
    fate('ok');
    if (!windowStage) sink.push(pairsOf(e.fields));
  };

  /**
   * The order stage of docs/configuration.md, spelled out per key: the next version (a new key starts at
   * its first), the held events by version and since when the lowest waits, the last event's stream time.
   */
  const offerInOrder = (ev: RefEvent, o: OrderConfig, si: number): void => {
    const version = integerVersion(getPath(ev.body, o.versionPath));
    if (version === null) {
      deadLetter(ev.e, 'E_BAD_VERSION', ev.body);
      return;
    }
    const keys = ev.shard.order;
    const S = ev.shard.streamTime;
    let k = keys.get(ev.key);
    if (!k) {
      k = { next: version, held: new Map(), heldSince: 0, touched: S };
      keys.set(ev.key, k);
    }
    k.touched = S;
    const stale = (kk: RefOrderKey) => version < kk.next || kk.held.has(version);
    if (stale(k)) {
      counts.deduplicated++;
      curType = typeOf(ev.body);
      fate('duplicate');
      return;
    }
    if (version !== k.next && k.held.size >= o.maxBuffered) {
      resolveGap(k, o, si, S);
      if (stale(k)) {
        counts.deduplicated++;
        curType = typeOf(ev.body);
        fate('duplicate');
        return;
      }
    }
    if (version === k.next) {
      runFrom(ev, si + 1);
      k.next++;
      releaseRun(k, si, S);
      return;
    }
    if (k.held.size === 0) k.heldSince = S;
    k.held.set(version, ev);
  };

  const releaseRun = (k: RefOrderKey, si: number, S: number): void => {
    let released = false;
    for (let ev = k.held.get(k.next); ev !== undefined; ev = k.held.get(k.next)) {
      k.held.delete(k.next);
      k.next++;
      released = true;
      runFrom(ev, si + 1);
    }
    if (released && k.held.size > 0) k.heldSince = S;
  };

  const resolveGap = (k: RefOrderKey, o: OrderConfig, si: number, S: number): void => {
    const versions = [...k.held.keys()].sort((a, b) => a - b);
    k.touched = S;
    if (o.onGap === 'deadLetter') {
      for (const v of versions) {
        const held = k.held.get(v) as RefEvent;
        curType = typeOf(held.body);
        deadLetter(held.e, 'E_VERSION_GAP');
      }
      k.held.clear();
      k.next = (versions[versions.length - 1] as number) + 1;
    } else {
      k.next = versions[0] as number;
      releaseRun(k, si, S);
    }
  };

  /** Stream time moved: every gap whose timeout passed is resolved, idle keys with nothing held forgotten. */
  const advanceOrder = (shard: ShardState): void => {
    const si = config.stages.findIndex((s) => 'order' in s);
    if (si < 0) return;
    const o = (config.stages[si] as { order: OrderConfig }).order;
    const S = shard.streamTime;
    // several due at once: by the time they started waiting, then by key (docs/configuration.md)
    const due = [...shard.order]
      .filter(([, k]) => k.held.size > 0 && k.heldSince + o.timeout <= S)
      .sort(([ka, a], [kb, b]) => a.heldSince - b.heldSince || (ka < kb ? -1 : ka > kb ? 1 : 0));
    for (const [, k] of due) resolveGap(k, o, si, S);
    for (const [key, k] of shard.order) {
      if (k.held.size === 0 && k.touched + o.keyTtl <= S) shard.order.delete(key);
    }
  };

  for (const e of entries) {
    curType = typeField === undefined ? '' : 'unknown';
    // 0. size: an entry over source.maxEntryBytes (names and values summed) is not processed at all
    if (e.fields.reduce((n, f) => n + f.length, 0) > config.source.maxEntryBytes) {
      tooLarge(e, 4096);
      continue;
    }
    // 1. validation, first failure wins
    const keyBuf = fieldValue(e.fields, config.key.field);
    const key = keyBuf === undefined ? '' : raw(keyBuf); // the exact bytes: keys need not be UTF-8
    if (key === '') {
      deadLetter(e, 'E_MISSING_KEY');
      continue;
    }
    // a key of another partition's key-group range (written to the wrong partition's stream)
    const keyGroupOfEntry = keyGroupOf(fnv1a(keyBuf as Buffer), config.keyGroups);
    if (keyGroupOfEntry < config.partition.from || keyGroupOfEntry >= config.partition.to) {
      deadLetter(e, 'E_WRONG_PARTITION');
      continue;
    }
    const body = decodeBody(e.fields, config);
    if (body === undefined) {
      deadLetter(e, 'E_BAD_BODY');
      continue;
    }
    const ts = eventTime(getPath(body, config.body.timePath));
    if (typeof ts !== 'number') {
      deadLetter(e, ts, body);
      continue;
    }
    const id = getPath(body, config.body.idPath);
    if (hasDedup && typeof id !== 'string' && typeof id !== 'number') {
      deadLetter(e, 'E_MISSING_ID', body);
      continue;
    }
    const aggValues = new Map<string, number>();
    let badField = false;
    for (const f of mapped ? [] : aggFields) {
      const v = numericValue(getPath(body, f));
      if (v === undefined) badField = true;
      else aggValues.set(f, v);
    }
    if (badField) {
      deadLetter(e, 'E_BAD_FIELD', body);
      continue;
    }
    curType = typeOf(body);
    const skew = config.body.maxFutureSkew;
    if (skew > 0 && ts > now + skew) {
      deadLetter(e, 'E_FUTURE_TIME', body); // moves no stream time
      continue;
    }

    // 2. stream time of the key's shard
    const keyGroup = keyGroupOf(fnv1a(keyBuf as Buffer), config.keyGroups);
    const { from, to } = config.partition;
    const shardNo = shardOfKeyGroup(keyGroup, config.keyGroups, config.shards, from, to);
    let shard = shards.get(shardNo);
    if (!shard) {
      shard = {
        streamTime: Number.NEGATIVE_INFINITY,
        seen: new Map(),
        insertions: [],
        oldest: 0,
        inserted: 0,
        buckets: new Map(),
        order: new Map(),
      };
      shards.set(shardNo, shard);
    }
    shard.streamTime = Math.max(shard.streamTime, ts);

    advanceOrder(shard);
    runFrom({ e, body, ts, key, id, aggValues, shard }, 0);
  }

  if (keyed !== null && windowStage) {
    for (const acc of keyed.results()) sink.push(windowResult(acc, windowStage, acc.end));
    counts.windowsEmitted = sink.length;
  } else if (windowStage) {
    for (const acc of windows.values()) sink.push(windowResult(acc, windowStage));
    counts.windowsEmitted = windows.size;
  }
  const sumFields = new Set(
    config.stages.flatMap((s) =>
      'project' in s
        ? Object.entries(s.project.fields)
            .filter(([, r]) => r.fn === 'sum')
            .map(([n]) => n)
        : [],
    ),
  );
  return { sink, deadLetters, counts, projections: projections.result(sumFields) };
}

function isDuplicate(shard: ShardState, id: string, dedup: DedupConfig): boolean {
  const seen = shard.seen.get(id);
  if (seen !== undefined && shard.streamTime - seen.seenAt < dedup.ttl) return true;
  // (re-)insert as the newest, then forget the oldest while over the bound
  const n = shard.inserted++;
  shard.seen.set(id, { seenAt: shard.streamTime, n });
  shard.insertions.push({ id, n });
  while (shard.seen.size > dedup.maxEntries) {
    const oldest = shard.insertions[shard.oldest++] as { id: string; n: number };
    if (shard.seen.get(oldest.id)?.n === oldest.n) shard.seen.delete(oldest.id);
  }
  return false;
}

/**
 * What makes two events the same for `dedup.by: content` (docs/configuration.md): the body's exact bytes
 * (for `flat`, every field name and value), or the values of `fields` compared as data — whatever the
 * encoding, key order or number formatting; of different type never equal, a missing field ≠ null. The
 * identity itself, not a hash of it (the engine hashes; a collision would be a bug found here).
 */
function contentIdentity(
  e: StreamEntry,
  body: Record<string, unknown>,
  dedup: DedupConfig,
  config: PipelineConfig,
): string {
  if (dedup.fields !== undefined)
    return `fields:${JSON.stringify(dedup.fields.map((f) => typed(getPath(body, f))))}`;
  if (config.body.encoding === 'flat') return `flat:${JSON.stringify(e.fields.map(raw))}`;
  return `body:${raw(fieldValue(e.fields, config.body.field) as Buffer)}`;
}

/** A value as JSON-able data with its type spelled out, object keys sorted. */
function typed(v: unknown): unknown {
  if (v === undefined) return ['missing'];
  if (v === null) return ['null'];
  if (typeof v === 'number' || typeof v === 'bigint') return ['number', String(v === 0 ? 0 : v)];
  if (typeof v === 'string') return ['string', v];
  if (typeof v === 'boolean') return ['boolean', v];
  if (v instanceof Uint8Array) return ['bytes', Buffer.from(v).toString('hex')];
  if (Array.isArray(v)) return ['array', v.map(typed)];
  const o = v as Record<string, unknown>;
  return [
    'object',
    Object.keys(o)
      .sort()
      .map((k) => [k, typed(o[k])]),
  ];
}

/**
 * The token bucket of docs/configuration.md, spelled out: first forget every bucket untouched for a full
 * refill (burst / rate) of stream time — checked over all of them, per event; a key without a bucket has
 * a full one at its event time; refill by event time elapsed since the bucket's latest event time (never
 * backwards), capped at burst; pass and take a token if there is one, touching the bucket.
 */
function rateAdmits(shard: ShardState, c: RateLimitConfig, key: string, ts: number): boolean {
  const perMs = c.rate.events / c.rate.perMs;
  if (c.per === 'key') {
    for (const [k, b] of shard.buckets) {
      if (b.touched + c.burst / perMs <= shard.streamTime) shard.buckets.delete(k);
    }
  }
  const name = c.per === 'key' ? key : '';
  const b = shard.buckets.get(name) ?? { tokens: c.burst, last: ts, touched: shard.streamTime };
  let tokens = b.tokens;
  let last = b.last;
  if (ts > last) {
    tokens = Math.min(c.burst, tokens + (ts - last) * perMs);
    last = ts;
  }
  if (tokens < 1) return false;
  shard.buckets.set(name, { tokens: tokens - 1, last, touched: shard.streamTime });
  return true;
}

function windowResult(acc: WindowAcc, w: WindowConfig, end = acc.start + (w.size ?? 0)): FieldPair[] {
  const out: FieldPair[] = [
    ['key', acc.key],
    ['window_start', String(acc.start)],
    ['window_end', String(end)],
    ['count', String(acc.count)],
  ];
  for (const a of w.aggregates) {
    if (a.fn === 'count') continue;
    const f = a.field as string;
    const vs = acc.values.get(f) as number[];
    let v: number;
    if (a.fn === 'sum') v = vs.reduce((x, y) => x + y, 0);
    else if (a.fn === 'avg') v = vs.reduce((x, y) => x + y, 0) / vs.length;
    else if (a.fn === 'min') v = Math.min(...vs);
    else v = Math.max(...vs);
    out.push([`${a.fn}_${f.replaceAll('.', '_')}`, String(v)]); // sum of order.total → sum_order_total
  }
  return out;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Session and sliding windows: per key, from the definitions in docs/configuration.md                      */
/* ------------------------------------------------------------------------------------------------------ */

type KeyedVerdict = 'added' | 'E_LATE' | 'E_OVERFLOW';

/** A window of a key with the values of its events, and its (exclusive or inclusive) end. */
type KeyedAcc = WindowAcc & { end: number };

function newAcc(key: string, start: number, end: number, fields: string[]): KeyedAcc {
  const values = new Map(fields.map((f) => [f, [] as number[]]));
  return { key, start, end, values, sums: new Map(fields.map((f) => [f, 0])), count: 0 };
}

function addTo(acc: KeyedAcc, vals: Map<string, number>): void {
  acc.count++;
  for (const [f, v] of vals) acc.values.get(f)?.push(v);
}

/**
 * Sessions: a key's events less than `gap` apart form one session `[first, last + gap)`; a session is
 * closed once stream time reaches `last + gap + grace`, and closed sessions never change. An event is late
 * when its own session `[ts, ts + gap)` would be closed; otherwise it merges every open session of its key
 * that it falls within `gap` of (E_OVERFLOW when a summed field of the merged session is not finite).
 */
class SessionReference {
  private readonly all: Array<{ acc: KeyedAcc; first: number; last: number; alive: boolean }> = [];
  private readonly byKey = new Map<
    string,
    Array<{ acc: KeyedAcc; first: number; last: number; alive: boolean }>
  >();
  private readonly gap: number;
  private readonly summed: string[];

  constructor(
    private readonly w: WindowConfig,
    private readonly fields: string[],
  ) {
    this.gap = w.gap as number;
    this.summed = w.aggregates.filter((a) => a.fn === 'sum' || a.fn === 'avg').map((a) => a.field as string);
  }

  add(key: string, ts: number, vals: Map<string, number>, streamTime: number): KeyedVerdict {
    const { gap, w } = this;
    if (ts + gap + w.grace <= streamTime) return 'E_LATE';
    const sessions = this.byKey.get(key) ?? [];
    this.byKey.set(key, sessions);
    const hits = sessions.filter(
      (s) => s.alive && s.last + gap + w.grace > streamTime && s.first - gap < ts && ts < s.last + gap,
    );
    for (const f of this.summed) {
      const total = hits.reduce(
        (n, s) => n + (s.acc.values.get(f) as number[]).reduce((x, y) => x + y, 0),
        0,
      );
      if (!Number.isFinite(total + (vals.get(f) as number))) return 'E_OVERFLOW';
    }
    const merged = { acc: newAcc(key, ts, ts, this.fields), first: ts, last: ts, alive: true };
    for (const s of hits) {
      s.alive = false;
      merged.first = Math.min(merged.first, s.first);
      merged.last = Math.max(merged.last, s.last);
      merged.acc.count += s.acc.count;
      for (const f of this.fields) merged.acc.values.get(f)?.push(...(s.acc.values.get(f) as number[]));
    }
    addTo(merged.acc, vals);
    sessions.push(merged);
    this.all.push(merged);
    return 'added';
  }

  results(): KeyedAcc[] {
    return this.all.filter((s) => s.alive).map((s) => ({ ...s.acc, start: s.first, end: s.last + this.gap }));
  }
}

/**
 * Sliding windows (Kafka Streams' SlidingWindows): for each accepted event at t of a key, the windows
 * [t - size, t] and [t + 1, t + 1 + size], inclusive, each emitted once if it holds an event. An event is
 * late when stream time > t + grace; E_OVERFLOW when the magnitudes of the key's accepted events in
 * [t - size, t + 1 + size] plus its own, added in time order, are not finite.
 */
class SlidingReference {
  private readonly events = new Map<string, Array<{ ts: number; vals: Map<string, number> }>>();
  private readonly size: number;
  private readonly summed: string[];

  constructor(
    private readonly w: WindowConfig,
    private readonly fields: string[],
  ) {
    this.size = w.size as number;
    this.summed = w.aggregates.filter((a) => a.fn === 'sum' || a.fn === 'avg').map((a) => a.field as string);
  }

  add(key: string, ts: number, vals: Map<string, number>, streamTime: number): KeyedVerdict {
    if (streamTime > ts + this.w.grace) return 'E_LATE';
    const evs = this.events.get(key) ?? [];
    this.events.set(key, evs);
    const near = evs.filter((e) => e.ts >= ts - this.size && e.ts <= ts + 1 + this.size);
    near.sort((a, b) => a.ts - b.ts); // stable: equal times stay in arrival order
    for (const f of this.summed) {
      let total = 0;
      for (const e of near) {
        total += Math.abs(e.vals.get(f) as number);
        if (!Number.isFinite(total)) return 'E_OVERFLOW';
      }
      if (!Number.isFinite(total + Math.abs(vals.get(f) as number))) return 'E_OVERFLOW';
    }
    evs.push({ ts, vals });
    return 'added';
  }

  results(): KeyedAcc[] {
    const out: KeyedAcc[] = [];
    for (const [key, evs] of this.events) {
      const starts = new Set(evs.flatMap((e) => [e.ts - this.size, e.ts + 1]));
      for (const s of starts) {
        const acc = newAcc(key, s, s + this.size, this.fields);
        for (const e of evs) if (e.ts >= s && e.ts <= s + this.size) addTo(acc, e.vals);
        if (acc.count > 0) out.push(acc);
      }
    }
    return out;
  }
}

/* ------------------------------------------------------------------------------------------------------ */
/* Comparing actual output with the expected one                                                            */
/* ------------------------------------------------------------------------------------------------------ */

/** A window result as a record (field order checked separately by `fieldNames`). */
export function asRecord(pairs: FieldPair[]): Record<string, string> {
  return Object.fromEntries(pairs);
}

/** Sorts window results by key, then window_start (numerically). */
export function sortWindows(rows: FieldPair[][]): FieldPair[][] {
  const decorated = rows.map((r) => {
    const rec = asRecord(r);
    return { r, key: rec.key ?? '', start: Number(rec.window_start) };
  });
  decorated.sort((a, b) => (a.key !== b.key ? (a.key < b.key ? -1 : 1) : a.start - b.start));
  return decorated.map((d) => d.r);
}

export interface WindowDiff {
  missing: number;
  extra: number;
  changed: number;
  duplicated: number;
  /** Up to 5 examples of each kind. */
  examples: { missing: unknown[]; extra: unknown[]; changed: unknown[]; duplicated: unknown[] };
}

/** A readable summary of how the actual window results differ from the expected ones. */
export function diffWindows(expected: FieldPair[][], actual: FieldPair[][]): WindowDiff {
  const id = (r: FieldPair[]) => {
    const rec = asRecord(r);
    return `${rec.key}@${rec.window_start}`;
  };
  const exp = new Map(expected.map((r) => [id(r), r]));
  const act = new Map<string, FieldPair[]>();
  const diff: WindowDiff = {
    missing: 0,
    extra: 0,
    changed: 0,
    duplicated: 0,
    examples: { missing: [], extra: [], changed: [], duplicated: [] },
  };
  const note = (kind: 'missing' | 'extra' | 'changed' | 'duplicated', what: unknown) => {
    diff[kind]++;
    if (diff.examples[kind].length < 5) diff.examples[kind].push(what);
  };
  for (const r of actual) {
    const k = id(r);
    if (act.has(k)) note('duplicated', asRecord(r));
    act.set(k, r);
  }
  for (const [k, r] of exp) {
    const a = act.get(k);
    if (!a) note('missing', asRecord(r));
    else if (JSON.stringify(a) !== JSON.stringify(r)) note('changed', { expected: r, actual: a });
  }
  for (const [k, r] of act) if (!exp.has(k)) note('extra', asRecord(r));
  return diff;
}

export const NO_DIFF: WindowDiff = {
  missing: 0,
  extra: 0,
  changed: 0,
  duplicated: 0,
  examples: { missing: [], extra: [], changed: [], duplicated: [] },
};

/** A dead-letter entry as read from the DLQ stream, in the oracle's shape. */
export function deadLetterOf(entry: StreamEntry): ExpectedDeadLetter & { error: string; tail: string[] } {
  const pairs = pairsOf(entry.fields);
  const tail = pairs.slice(-2).map((p) => p[0]);
  const record = asRecord(pairs.slice(-2));
  const error = record.error ?? '';
  return {
    sourceId: record.source_id ?? '',
    code: error.split(':')[0] as ErrorCode,
    fields: pairs.slice(0, -2),
    error,
    tail,
  };
}

/** Sorts dead letters by source entry ID (numerically: ms-seq). */
export function sortBySourceId<T extends { sourceId: string }>(rows: T[]): T[] {
  const decorated = rows.map((r) => {
    const [ms, seq] = r.sourceId.split('-').map(Number) as [number, number];
    return { r, ms, seq };
  });
  decorated.sort((a, b) => a.ms - b.ms || a.seq - b.seq);
  return decorated.map((d) => d.r);
}
