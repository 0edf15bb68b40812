/**
 * The project stage, worker side: per key, a Redis hash whose fields reducers keep (latest, first, count,
 * sum, min, max, last_seen) plus `_pos`, the ID of the last entry applied to it.
 *
 * Where the state lives — decided for Redis, not the worker:
 *
 *   worker (per batch, then forgotten)              commit script (APPLY_OPS_3, one PROJECT op per key)
 *   key → { count, latest, first, min, max,   ──►   HMGET the min/max/sum fields → compare / add in order
 *           sum values in stream order, pos }        → one HSET of what changed → PEXPIRE
 *
 * A worker-held copy would have to be restored at start (a SCAN of every projected key: unbounded, and a
 * projection outlives the pipeline's key space), and it would disagree with Redis once a `ttl` expired a
 * hash on the wall clock. Merged in the script instead, the hash is the only state: nothing to restore,
 * nothing to checkpoint, and an expired hash simply starts again. The cost is a few Redis calls per key
 * per batch (bench/micro.ts, BENCHMARKS.md), not per event.
 *
 * Exactly once: the op runs in the commit that acks the entries (same script, same applied-commit ID), so
 * a replay after a crash re-applies exactly the events whose ack was lost with it. Sums are added one
 * value at a time in stream order (a batch's values travel as a list), so a sum is the same left fold of
 * doubles however the input was cut into batches — a crash and replay give the same bits.
 */
import type { ProjectConfig } from '../../../config/schema.js';
import type { OpArg } from '../../opsCodec.js';
import { type Body, compilePath, type Getter, toNumber } from '../decode.js';
import { projectionKey } from './keyTemplate.js';

/** A PROJSPEC or PROJECT op of the commit script (redis/scripts/applyOps-2.ts); null = msgpack false. */
export type ProjectOp = Array<OpArg | null>;

/** The script's code per reducer: set, set if absent, add an integer, keep the smaller/larger, add in order. */
const CODE = { latest: 's', first: 'f', count: 'c', min: 'n', max: 'x', last_seen: 'x', sum: '+' } as const;

const EMPTY = new Uint8Array(0);

/** Sum values per op before a key's op is cut in two (ops merge in order): well under MAX_OP_ARGS (6000). */
const MAX_SUM_VALUES = 4000;

interface Reducer {
  fn: ProjectConfig['fields'][string]['fn'];
  /** The hash field it writes. */
  name: string;
  /** The body path it reads (null for count and last_seen), and the path's text for messages. */
  get: Getter | null;
  path: string;
}

/** One key's changes within a batch. */
interface Acc {
  key: string;
  count: number;
  pos: Uint8Array;
  /** latest/first values by reducer (undefined: none seen). */
  text: Array<OpArg | undefined>;
  /** min/max/last_seen by reducer (NaN: none seen). */
  num: number[];
  /** sum values by reducer, in stream order. */
  sums: number[][];
  sumValues: number;
}

export class ProjectStage {
  private readonly reducers: Reducer[];
  private readonly keyOf: (key: string) => OpArg;
  /** The current event's values (filled by {@link check}, read by {@link add}). */
  private readonly text: Array<OpArg | undefined>;
  private readonly num: Float64Array;
  private readonly accs = new Map<string, Acc>();
  /** Accs of earlier batches, reused: a fresh one per key per batch was a third of the stage's time. */
  private readonly pool: Acc[] = [];
  private readonly ops: ProjectOp[] = [];
  /** `PROJSPEC ttl (code field)…`: the stage's reducers, sent once per commit before its PROJECT ops. */
  private readonly spec: ProjectOp;
  private failure = '';

  /** @param tag the input stream's Redis Cluster hash tag, for `{tag}` (keyTemplate.ts) */
  constructor(cfg: ProjectConfig, tag: string) {
    this.reducers = Object.entries(cfg.fields).map(([name, r]) => ({
      fn: r.fn,
      name,
      get: r.field === undefined ? null : compilePath(r.field),
      path: r.field ?? '',
    }));
    this.spec = ['PROJSPEC', cfg.ttl === undefined ? '' : String(cfg.ttl)];
    for (const r of this.reducers) this.spec.push(CODE[r.fn], r.name);
    this.keyOf = projectionKey(cfg.key, tag);
    this.text = new Array(this.reducers.length);
    this.num = new Float64Array(this.reducers.length);
  }

  /** Reads the event's values; false when a sum/min/max field is not a number ({@link failureMessage}). */
  check(body: Body, ts: number): boolean {
    const rs = this.reducers;
    for (let i = 0; i < rs.length; i++) {
      const r = rs[i] as Reducer;
      if (r.fn === 'count') continue;
      if (r.fn === 'last_seen') {
        this.num[i] = ts;
        continue;
      }
      const v = (r.get as Getter)(body);
      if (r.fn === 'latest' || r.fn === 'first') {
        this.text[i] = textOf(v);
        continue;
      }
      const n = toNumber(v);
      if (!Number.isFinite(n)) {
        this.failure = `field "${r.path}" is not a number (project field ${r.name})`;
        return false;
      }
      this.num[i] = n;
    }
    return true;
  }

  failureMessage(): string {
    return this.failure;
  }

  /** Applies the checked event to key `key` (latin1) from entry `pos`. */
  add(key: string, pos: Uint8Array): void {
    let acc = this.accs.get(key);
    if (acc === undefined) {
      acc = this.newAcc(key);
      this.accs.set(key, acc);
    }
    acc.count++;
    acc.pos = pos;
    const rs = this.reducers;
    for (let i = 0; i < rs.length; i++) {
      const fn = (rs[i] as Reducer).fn;
      if (fn === 'latest') {
        if (this.text[i] !== undefined) acc.text[i] = this.text[i];
      } else if (fn === 'first') {
        if (acc.text[i] === undefined) acc.text[i] = this.text[i];
      } else if (fn === 'sum') {
        (acc.sums[i] as number[]).push(this.num[i] as number);
        acc.sumValues++;
      } else if (fn === 'min') {
        if (!(acc.num[i] <= (this.num[i] as number))) acc.num[i] = this.num[i] as number;
      } else if (fn === 'max' || fn === 'last_seen') {
        if (!(acc.num[i] >= (this.num[i] as number))) acc.num[i] = this.num[i] as number;
      }
    }
    if (acc.sumValues >= MAX_SUM_VALUES) {
      this.accs.delete(key);
      this.ops.push(this.opOf(acc));
      this.pool.push(acc);
    }
  }

  /**
   * The batch's ops, then resets: the PROJSPEC op, then a PROJECT op per key (more for a key with very many
   * sum values); none when no event was applied.
   */
  drain(): ProjectOp[] {
    for (const acc of this.accs.values()) {
      this.ops.push(this.opOf(acc));
      this.pool.push(acc);
    }
    this.accs.clear();
    if (this.ops.length === 0) return [];
    const out = [this.spec, ...this.ops];
    this.ops.length = 0;
    return out;
  }

  private newAcc(key: string): Acc {
    const n = this.reducers.length;
    const acc = this.pool.pop();
    if (acc === undefined) {
      const text = new Array<OpArg | undefined>(n).fill(undefined);
      const num = new Array<number>(n).fill(Number.NaN);
      return { key, count: 0, pos: EMPTY, text, num, sums: this.reducers.map(() => []), sumValues: 0 };
    }
    acc.key = key;
    acc.count = 0;
    acc.pos = EMPTY;
    acc.text.fill(undefined);
    acc.num.fill(Number.NaN);
    for (const s of acc.sums) s.length = 0;
    acc.sumValues = 0;
    return acc;
  }

  /** `PROJECT key pos value…`: per reducer of the spec, its value or null (none), for `sum` `n v1…vn`. */
  private opOf(acc: Acc): ProjectOp {
    const op: ProjectOp = ['PROJECT', this.keyOf(acc.key), acc.pos];
    const rs = this.reducers;
    for (let i = 0; i < rs.length; i++) {
      const fn = (rs[i] as Reducer).fn;
      if (fn === 'count') op.push(String(acc.count));
      else if (fn === 'latest' || fn === 'first') op.push(acc.text[i] ?? null);
      else if (fn === 'sum') {
        const values = acc.sums[i] as number[];
        op.push(String(values.length));
        for (const v of values) op.push(String(v));
      } else {
        const n = acc.num[i] as number;
        op.push(Number.isNaN(n) ? null : String(n));
      }
    }
    return op;
  }
}

/** A body value as a hash value: text as it is, numbers and booleans as text, objects as JSON; absent = undefined. */
function textOf(v: unknown): OpArg | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'object') {
    try {
      return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
    } catch {
      return String(v);
    }
  }
  return String(v);
}
