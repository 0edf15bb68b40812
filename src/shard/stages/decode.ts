/**
 * Decode + validate: turns a packed entry into an event, or into a dead-letter reason. The decoder, the
 * path getters and the checks are chosen once when the shard is built, never per event.
 */
import type { Aggregate, BodyConfig } from '../../config/schema.js';
import { DeadLetterCode } from '../../errors.js';
import { type BatchReader, latin1, NO_KEY } from '../../routing/batchCodec.js';
import { MsgpackBodyDecoder } from './msgpackBody.js';

export type Body = Record<string, unknown>;
export type Getter = (body: Body) => unknown;

/** Compiles a dot path (`a.b.c`) into a getter. */
export function compilePath(path: string): Getter {
  const parts = path.split('.');
  if (parts.length === 1) return (b) => b[path];
  return (b) => {
    let v: unknown = b;
    for (const p of parts) {
      if (v === null || typeof v !== 'object') return undefined;
      v = (v as Body)[p];
    }
    return v;
  };
}

/** Epoch ms from a number, a string in decimal notation or an ISO-8601 string; NaN when none of these. */
export function parseTime(v: unknown): number {
  if (typeof v === 'number') return Number.isFinite(v) ? v : Number.NaN;
  if (typeof v !== 'string' || v.length === 0) return Number.NaN;
  const n = parseDecimal(v);
  if (Number.isFinite(n)) return n;
  // Date.parse also accepts non-ISO forms like "Jan 1 2020"; insist on a leading YYYY-MM-DD.
  return /^\d{4}-\d{2}-\d{2}/.test(v) ? Date.parse(v) : Number.NaN;
}

/** A number from a number or a string in decimal notation ({@link parseDecimal}); NaN otherwise. */
export function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return parseDecimal(v);
  return Number.NaN;
}

const PLUS = 0x2b;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/** Index of the first non-digit of `s` at or after `i`. */
function digitsEnd(s: string, i: number): number {
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < ZERO || c > NINE) break;
  }
  return i;
}

/**
 * The number a string in decimal notation stands for, else NaN. Decimal notation: an optional sign, digits
 * with an optional fraction (`12`, `-0.5`, `3.`, `+.25`), an optional exponent (`1e3`, `2.5E-4`); nothing
 * else, not even spaces. `Number()` alone also reads `"0x10"` as 16, `"0b1"`, `"0o7"`, `"Infinity"` and
 * `" 12 "`, and `""` or `" "` as 0. The result can still be ±Infinity (`1e999`): callers check finiteness.
 * A scan of char codes: no regex, no allocation (this runs per aggregated string value).
 */
export function parseDecimal(s: string): number {
  let i = 0;
  const first = s.charCodeAt(0); // NaN for ""
  if (first === PLUS || first === MINUS) i = 1;
  const intEnd = digitsEnd(s, i);
  let digits = intEnd - i;
  i = intEnd;
  if (s.charCodeAt(i) === DOT) {
    const fracEnd = digitsEnd(s, i + 1);
    digits += fracEnd - i - 1;
    i = fracEnd;
  }
  if (digits === 0) return Number.NaN;
  if ((s.charCodeAt(i) | 0x20) === 0x65) {
    // e or E, then an optional sign and at least one digit
    let j = i + 1;
    const sign = s.charCodeAt(j);
    if (sign === PLUS || sign === MINUS) j++;
    const expEnd = digitsEnd(s, j);
    if (expEnd === j) return Number.NaN;
    i = expEnd;
  }
  return i === s.length ? Number(s) : Number.NaN;
}

/** The decoded event; one instance reused for every entry of a shard. */
export interface DecodedEvent {
  /** The key is field `keyField` of the entry: the shard reads its bytes (no string per event). */
  body: Body;
  ts: number;
  id: string;
  /** Values of the window's aggregated fields, in aggregate order (count slots unused). */
  values: Float64Array;
  /** The raw value at `typePath` (per-type metrics), undefined without one or when absent. */
  type: unknown;
}

export interface DecodeFailure {
  code: DeadLetterCode;
  message: string;
}

export interface DecodeOptions {
  body: BodyConfig;
  /** Validate that the event has an ID (a dedup stage needs it). */
  needId: boolean;
  /**
   * A stage reads the whole body (a filter): `event.body` must be the decoded body. When false, msgpack
   * bodies are projected to the fields in use and `event.body` stays empty. @defaultValue true
   */
  needBody?: boolean;
  /** Aggregates whose fields must be numeric (the window stage's). */
  aggregates: Aggregate[];
  /**
   * A `map` stage comes before the window: the aggregated fields are read from the mapped body by
   * {@link EventDecoder.readValues} after the steps, not checked at decode. @defaultValue false
   */
  valuesAfterMap?: boolean;
  /** Read this path into `event.type` (`metrics.eventTypes.field`), projected like the rest. */
  typePath?: string | undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });
const NO_SLOT = -1;
/** The largest epoch ms a JS Date can hold (±100,000,000 days): a time beyond it is no date at all. */
const MAX_TIME = 8.64e15;

/**
 * The top-level body fields the shard reads, for {@link MsgpackBodyDecoder.project}: the names, and which
 * of them is the time, the ID and each aggregate's field.
 */
interface Projection {
  names: Uint8Array[];
  time: number;
  id: number;
  type: number;
  values: Int32Array;
}

export class EventDecoder {
  readonly event: DecodedEvent;
  private readonly bodyField: string;
  private readonly bodyFieldBytes: Uint8Array;
  private readonly msgpack: MsgpackBodyDecoder | null;
  private readonly getTime: Getter;
  private readonly getId: Getter;
  private readonly getType: Getter | null;
  private readonly needId: boolean;
  private readonly valueGetters: Array<Getter | null>;
  private readonly valuePaths: string[];
  private readonly flat: boolean;
  private readonly projection: Projection | null;
  /** The projected values, by projection name. */
  private readonly projected: unknown[];
  /** The current event's raw time, ID and aggregated values (`[time, id, value per aggregate…]`). */
  private readonly fields: unknown[];
  private readonly valuesAfterMap: boolean;
  /** `event.body` is the current entry's decoded body (false after a failure before it, or when projected). */
  bodyDecoded = false;

  constructor(opts: DecodeOptions) {
    this.bodyField = opts.body.field;
    this.bodyFieldBytes = Buffer.from(opts.body.field, 'utf8');
    this.flat = opts.body.encoding === 'flat';
    this.msgpack = opts.body.encoding === 'msgpack' ? new MsgpackBodyDecoder() : null;
    this.getTime = compilePath(opts.body.timePath);
    this.getId = compilePath(opts.body.idPath);
    this.getType = opts.typePath === undefined ? null : compilePath(opts.typePath);
    this.needId = opts.needId;
    this.valueGetters = opts.aggregates.map((a) =>
      a.fn === 'count' || a.field === undefined ? null : compilePath(a.field),
    );
    this.valuePaths = opts.aggregates.map((a) => a.field ?? '');
    this.event = {
      body: {},
      ts: 0,
      id: '',
      values: new Float64Array(opts.aggregates.length),
      type: undefined,
    };
    const projected = opts.aggregates.map((a) =>
      a.fn === 'count' || a.field === undefined ? null : a.field,
    );
    this.projection =
      this.msgpack !== null && opts.needBody === false
        ? projectionOf(opts.body, opts.needId, projected, opts.typePath)
        : null;
    this.projected = new Array(this.projection?.names.length ?? 0);
    this.fields = new Array(2 + opts.aggregates.length);
    this.valuesAfterMap = opts.valuesAfterMap === true;
  }

  /** Decodes the reader's current entry into `this.event`; returns a failure instead of throwing. */
  decode(r: BatchReader): DecodeFailure | null {
    const ev = this.event;
    this.bodyDecoded = false;
    if (r.keyField === NO_KEY) return { code: DeadLetterCode.MissingKey, message: 'key field missing' };
    if (r.fieldLength(r.keyField) === 0)
      return { code: DeadLetterCode.MissingKey, message: 'key field empty' };

    let body: unknown;
    if (this.flat) {
      const b: Body = {};
      for (let i = 0; i + 1 < r.fieldCount; i += 2) {
        const name = r.field(i);
        b[latin1(name, 0, name.length)] = utf8.decode(r.field(i + 1));
      }
      body = b;
    } else {
      const at = this.bodyIndex(r);
      if (at < 0) return { code: DeadLetterCode.BadBody, message: `body field "${this.bodyField}" missing` };
      const [start, end] = [r.fieldStart(at), r.fieldEnd(at)];
      const p = this.projection;
      if (
        p !== null &&
        (this.msgpack as MsgpackBodyDecoder).project(r.bytes, start, end, p.names, this.projected)
      )
        return this.checkProjected(p);
      try {
        body =
          this.msgpack !== null
            ? this.msgpack.decode(r.bytes, start, end)
            : JSON.parse(utf8.decode(r.bytes.subarray(start, end)));
      } catch (e) {
        return { code: DeadLetterCode.BadBody, message: `cannot decode body: ${(e as Error).message}` };
      }
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        return { code: DeadLetterCode.BadBody, message: 'body is not a map' };
      }
    }
    ev.body = body as Body;
    this.bodyDecoded = true;
    ev.type = this.getType?.(ev.body);
    const f = this.fields;
    f[0] = this.getTime(ev.body);
    f[1] = this.needId ? this.getId(ev.body) : undefined;
    for (let i = 0; i < this.valueGetters.length; i++) f[2 + i] = this.valueGetters[i]?.(ev.body);
    return this.check();
  }

  /** The projected fields into {@link fields}, then {@link check}. */
  private checkProjected(p: Projection): DecodeFailure | null {
    const f = this.fields;
    const v = this.projected;
    this.event.type = p.type === NO_SLOT ? undefined : v[p.type];
    f[0] = v[p.time];
    f[1] = this.needId ? v[p.id] : undefined;
    for (let i = 0; i < p.values.length; i++) {
      const slot = p.values[i] as number;
      f[2 + i] = slot === NO_SLOT ? undefined : v[slot];
    }
    return this.check();
  }

  /** Validates the time, ID and aggregated values in {@link fields} into `this.event`. */
  private check(): DecodeFailure | null {
    const ev = this.event;
    const f = this.fields;
    const t = f[0];
    if (t === undefined || t === null)
      return { code: DeadLetterCode.MissingTime, message: 'event time missing' };
    const ts = parseTime(t);
    if (Number.isNaN(ts)) {
      return {
        code: DeadLetterCode.BadTime,
        message: `event time is not epoch ms or ISO-8601: ${preview(t)}`,
      };
    }
    if (!(ts >= -MAX_TIME && ts <= MAX_TIME)) {
      return {
        code: DeadLetterCode.BadTime,
        message: `event time ${preview(t)} is outside the range of dates (±${MAX_TIME} epoch ms)`,
      };
    }
    ev.ts = ts;
    if (this.needId) {
      const id = f[1];
      if (typeof id === 'string' && id !== '') ev.id = id;
      else if (typeof id === 'number' && Number.isFinite(id)) ev.id = String(id);
      else return { code: DeadLetterCode.MissingId, message: 'event id missing or not a string/number' };
    }
    return this.valuesAfterMap ? null : this.checkValues();
  }

  /**
   * With `valuesAfterMap`: reads and checks the aggregated fields of `event.body` (the mapped body) into
   * `event.values`; the failure (E_BAD_FIELD) or null.
   */
  readValues(): DecodeFailure | null {
    const body = this.event.body;
    for (let i = 0; i < this.valueGetters.length; i++) this.fields[2 + i] = this.valueGetters[i]?.(body);
    return this.checkValues();
  }

  /** Checks the aggregated values in {@link fields} into `event.values`. */
  private checkValues(): DecodeFailure | null {
    const ev = this.event;
    const f = this.fields;
    for (let i = 0; i < this.valueGetters.length; i++) {
      if (this.valueGetters[i] === null) continue; // count: no field
      const n = toNumber(f[2 + i]);
      if (!Number.isFinite(n)) {
        return { code: DeadLetterCode.BadField, message: `field "${this.valuePaths[i]}" is not a number` };
      }
      ev.values[i] = n;
    }
    return null;
  }

  /** Index of the body's value in the entry's fields; -1 when the entry has no body field. */
  private bodyIndex(r: BatchReader): number {
    for (let i = 0; i + 1 < r.fieldCount; i += 2) if (r.fieldIs(i, this.bodyFieldBytes)) return i + 1;
    return -1;
  }
}

/**
 * The projection for these paths, or null when one is not a plain top-level name (a dotted path) or is
 * a name `Object.prototype` has (the decoded object would answer it by inheritance).
 */
function projectionOf(
  body: BodyConfig,
  needId: boolean,
  valuePaths: Array<string | null>,
  typePath: string | undefined,
): Projection | null {
  const names: string[] = [];
  const slot = (path: string): number => {
    if (path.includes('.') || path in Object.prototype || path.includes('\uFFFD')) return Number.NaN;
    const i = names.indexOf(path);
    if (i >= 0) return i;
    names.push(path);
    return names.length - 1;
  };
  const time = slot(body.timePath);
  const id = needId ? slot(body.idPath) : NO_SLOT;
  const values = valuePaths.map((p) => (p === null ? NO_SLOT : slot(p)));
  const type = typePath === undefined ? NO_SLOT : slot(typePath);
  if ([time, id, type, ...values].some(Number.isNaN)) return null;
  const encoder = new TextEncoder();
  return { names: names.map((n) => encoder.encode(n)), time, id, type, values: Int32Array.from(values) };
}

function preview(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
