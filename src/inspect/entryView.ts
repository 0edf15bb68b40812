/**
 * A stream entry of a pipeline as one JSON-ready object, with its body decoded the way the shard decodes
 * it (body.encoding: the msgpack decoder of shard/stages/msgpackBody.ts, or JSON): what `tap` and
 * `dlq list --json` print.
 *
 *   {"stream":"input","id":"…","fields":{"key":"k1"},"body":{"id":"o1","ts":…,"amount":5}}
 *   {"stream":"dead-letters","id":"…","fields":{…},"body":…,"code":"E_LATE","message":"…","source_id":"…"}
 *
 * `fields` holds every field but the decoded body field, values as text or `{hex}` when not UTF-8 (as
 * the stdout sink prints them). A body that does not decode stays in `fields` and `bodyError` says why.
 * Window results and `flat` bodies have no body field: their fields are everything. Results of a
 * pass-through pipeline (no window stage) are copies of input entries: their body is decoded too.
 */
import type { PipelineConfig } from '../config/load.js';
import { MsgpackBodyDecoder } from '../shard/stages/msgpackBody.js';
import { parseDeadLetter } from './deadLetters.js';
import { fieldObject, type RawEntry } from './streams.js';

export type StreamKind = 'input' | 'results' | 'dead-letters';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class EntryView {
  private readonly msgpack = new MsgpackBodyDecoder();
  /** Results are copies of input entries (no window stage). */
  private readonly passThrough: boolean;

  constructor(private readonly config: PipelineConfig) {
    this.passThrough = !config.stages.some((s) => 'window' in s);
  }

  of(kind: StreamKind, e: RawEntry): Record<string, unknown> {
    const view: Record<string, unknown> = { stream: kind, id: e.id };
    const body = this.config.body;
    const decodes = body.encoding !== 'flat' && (kind !== 'results' || this.passThrough);
    let bodyAt = -1;
    if (decodes) {
      for (let i = 0; i + 1 < e.fields.length; i += 2) {
        if ((e.fields[i] as Buffer).toString() === body.field) bodyAt = i + 1;
      }
    }
    let decoded: unknown;
    let bodyError: string | null = null;
    if (bodyAt >= 0) {
      try {
        decoded = this.decode(e.fields[bodyAt] as Buffer);
      } catch (err) {
        bodyError = (err as Error).message;
        bodyAt = -1;
      }
    }
    view.fields = fieldObject(
      bodyAt >= 0 ? e.fields.filter((_, i) => i !== bodyAt && i !== bodyAt - 1) : e.fields,
    );
    if (bodyAt >= 0) view.body = jsonSafe(decoded);
    if (bodyError !== null) view.bodyError = bodyError;
    if (kind === 'dead-letters') {
      const dl = parseDeadLetter(e, this.config.key.field);
      view.code = dl.code;
      view.message = dl.message;
      view.source_id = dl.sourceId;
    }
    return view;
  }

  private decode(value: Buffer): unknown {
    if (this.config.body.encoding === 'msgpack') return this.msgpack.decode(value);
    return JSON.parse(utf8.decode(value));
  }
}

/** A decoded body as JSON can hold it: 64-bit integers as decimal strings, binary as `{hex}`. */
function jsonSafe(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return { hex: Buffer.from(v.buffer, v.byteOffset, v.length).toString('hex') };
  if (v instanceof Date) return v.toISOString(); // the msgpack timestamp extension
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), jsonSafe(x)]));
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonSafe(x)]));
  }
  return v;
}
