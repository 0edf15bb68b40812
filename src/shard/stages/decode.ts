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

/** Epoch ms from a number, a numeric string or an ISO-8601 string; NaN when none of these. */
export function parseTime(v: unknown): number {
  if (typeof v === 'number') return Number.isFinite(v) ? v : Number.NaN;
  if (typeof v !== 'string' || v.length === 0) return Number.NaN;
  const n = Number(v);
  if (Number.isFinite(n)) return n;
  // Date.parse also accepts non-ISO forms like "Jan 1 2020"; insist on a leading YYYY-MM-DD.
  return /^\d{4}-\d{2}-\d{2}/.test(v) ? Date.parse(v) : Number.NaN;
}

/** A finite number from a number or numeric string; NaN otherwise. */
export function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') return Number(v);
  return Number.NaN;
}

/** The decoded event; one instance reused for every entry of a shard. */
export interface DecodedEvent {
  /** The key is field `keyField` of the entry: the shard reads its bytes (no string per event). */
  body: Body;
  ts: number;
  id: string;
  /** Values of the window's aggregated fields, in aggregate order (count slots unused). */
  values: Float64Array;
}

export interface DecodeFailure {
  code: DeadLetterCode;
  message: string;
}

export interface DecodeOptions {
  body: BodyConfig;
  /** Validate that the event has an ID (a dedup stage needs it). */
  needId: boolean;
  /** Aggregates whose fields must be numeric (the window stage's). */
  aggregates: Aggregate[];
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

export class EventDecoder {
  readonly event: DecodedEvent;
  private readonly bodyField: string;
  private readonly bodyFieldBytes: Uint8Array;
  private readonly decodeBody: (bytes: Uint8Array) => unknown;
  private readonly getTime: Getter;
  private readonly getId: Getter;
  private readonly needId: boolean;
  private readonly valueGetters: Array<Getter | null>;
  private readonly valuePaths: string[];
  private readonly flat: boolean;

  constructor(opts: DecodeOptions) {
    this.bodyField = opts.body.field;
    this.bodyFieldBytes = Buffer.from(opts.body.field, 'utf8');
    this.flat = opts.body.encoding === 'flat';
    if (opts.body.encoding === 'msgpack') {
      const decoder = new MsgpackBodyDecoder();
      this.decodeBody = (bytes) => decoder.decode(bytes);
    } else {
      this.decodeBody = (bytes) => JSON.parse(utf8.decode(bytes));
    }
    this.getTime = compilePath(opts.body.timePath);
    this.getId = compilePath(opts.body.idPath);
    this.needId = opts.needId;
    this.valueGetters = opts.aggregates.map((a) =>
      a.fn === 'count' || a.field === undefined ? null : compilePath(a.field),
    );
    this.valuePaths = opts.aggregates.map((a) => a.field ?? '');
    this.event = { body: {}, ts: 0, id: '', values: new Float64Array(opts.aggregates.length) };
  }

  /** Decodes the reader's current entry into `this.event`; returns a failure instead of throwing. */
  decode(r: BatchReader): DecodeFailure | null {
    const ev = this.event;
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
      const raw = this.findField(r);
      if (raw === undefined)
        return { code: DeadLetterCode.BadBody, message: `body field "${this.bodyField}" missing` };
      try {
        body = this.decodeBody(raw);
      } catch (e) {
        return { code: DeadLetterCode.BadBody, message: `cannot decode body: ${(e as Error).message}` };
      }
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        return { code: DeadLetterCode.BadBody, message: 'body is not a map' };
      }
    }
    ev.body = body as Body;

    const t = this.getTime(ev.body);
    if (t === undefined || t === null)
      return { code: DeadLetterCode.MissingTime, message: 'event time missing' };
    const ts = parseTime(t);
    if (Number.isNaN(ts)) {
      return {
        code: DeadLetterCode.BadTime,
        message: `event time is not epoch ms or ISO-8601: ${preview(t)}`,
      };
    }
    ev.ts = ts;

    if (this.needId) {
      const id = this.getId(ev.body);
      if (typeof id === 'string' && id !== '') ev.id = id;
      else if (typeof id === 'number' && Number.isFinite(id)) ev.id = String(id);
      else return { code: DeadLetterCode.MissingId, message: 'event id missing or not a string/number' };
    }

    for (let i = 0; i < this.valueGetters.length; i++) {
      const g = this.valueGetters[i];
      if (g === null || g === undefined) continue;
      const n = toNumber(g(ev.body));
      if (!Number.isFinite(n)) {
        return { code: DeadLetterCode.BadField, message: `field "${this.valuePaths[i]}" is not a number` };
      }
      ev.values[i] = n;
    }
    return null;
  }

  private findField(r: BatchReader): Uint8Array | undefined {
    for (let i = 0; i + 1 < r.fieldCount; i += 2)
      if (r.fieldIs(i, this.bodyFieldBytes)) return r.field(i + 1);
    return undefined;
  }
}

function preview(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
