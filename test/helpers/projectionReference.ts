/**
 * The brute-force reference of the project stage (docs/configuration.md, "Projections"): per hash key,
 * every field as the spec defines it, from the events applied in stream order per key. Written from the
 * docs, sharing nothing with the engine: sums are one running JS number (the same left fold the commit
 * script does), min/max/last_seen compared as numbers, `first` the first value present, `_pos` the last
 * applied entry's ID.
 */
import type { ProjectConfig } from '../../src/config/schema.js';
import { getPath } from './reference.js';

/** The numeric form of a body value (a finite number, or a string in decimal notation), or undefined. */
function numberOf(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v)) {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** A body value as the hash stores it (latin1 text of its bytes); undefined for absent or null. */
function textOf(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return Buffer.from(v, 'utf8').toString('latin1');
  if (v instanceof Uint8Array) return Buffer.from(v).toString('latin1');
  if (typeof v === 'object') return Buffer.from(JSON.stringify(v), 'utf8').toString('latin1');
  return String(v);
}

interface RefHash {
  fields: Record<string, string>;
  sums: Map<string, number>;
}

export class ProjectionReference {
  /** Hash key (latin1 of its bytes) → its fields (latin1 values), `sum` fields as numbers in `sums`. */
  private readonly hashes = new Map<string, RefHash>();

  constructor(private readonly stream: string) {}

  /**
   * Applies one event (key as latin1 of its bytes); returns false — nothing changed — when a sum, min or
   * max field is not a number (the engine dead-letters it E_BAD_FIELD).
   */
  apply(p: ProjectConfig, body: Record<string, unknown>, ts: number, key: string, entryId: string): boolean {
    const fields = Object.entries(p.fields);
    for (const [, r] of fields) {
      if (
        (r.fn === 'sum' || r.fn === 'min' || r.fn === 'max') &&
        numberOf(getPath(body, r.field as string)) === undefined
      )
        return false;
    }
    const tag = this.stream.includes('{')
      ? this.stream.replace(/^[^{]*(\{[^}]+\}).*$/, '$1')
      : `{${this.stream}}`;
    const template = Buffer.from(
      p.key.replaceAll('{tag}', () => tag),
      'utf8',
    ).toString('latin1');
    const hashKey = template.replace('{key}', () => key);
    let h = this.hashes.get(hashKey);
    if (!h) {
      h = { fields: {}, sums: new Map() };
      this.hashes.set(hashKey, h);
    }
    for (const [name, r] of fields) {
      const v = r.field === undefined ? undefined : getPath(body, r.field);
      const cur = h.fields[name];
      switch (r.fn) {
        case 'count':
          h.fields[name] = String(Number(cur ?? '0') + 1);
          break;
        case 'latest':
          if (textOf(v) !== undefined) h.fields[name] = textOf(v) as string;
          break;
        case 'first':
          if (cur === undefined && textOf(v) !== undefined) h.fields[name] = textOf(v) as string;
          break;
        case 'sum':
          h.sums.set(name, (h.sums.get(name) ?? 0) + (numberOf(v) as number));
          break;
        case 'min':
          if (cur === undefined || (numberOf(v) as number) < Number(cur))
            h.fields[name] = String(numberOf(v));
          break;
        case 'max':
          if (cur === undefined || (numberOf(v) as number) > Number(cur))
            h.fields[name] = String(numberOf(v));
          break;
        case 'last_seen':
          if (cur === undefined || ts > Number(cur)) h.fields[name] = String(ts);
          break;
      }
    }
    h.fields._pos = entryId;
    return true;
  }

  /**
   * Every hash: its fields, `sum` fields as their numbers' shortest decimal (compare with
   * {@link normalise} of what Redis holds: the script may write more digits for the same double).
   */
  result(sumFields: ReadonlySet<string>): Map<string, Record<string, string>> {
    const out = new Map<string, Record<string, string>>();
    for (const [key, h] of this.hashes) {
      const rec = { ...h.fields };
      for (const [name, s] of h.sums) rec[name] = String(s);
      out.set(key, normalise(rec, sumFields));
    }
    return out;
  }
}

/** The hash with its `sum` fields rewritten as the shortest decimal of their double, fields sorted. */
export function normalise(
  rec: Record<string, string>,
  sumFields: ReadonlySet<string>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(rec).sort()) {
    const v = rec[name] as string;
    out[name] = sumFields.has(name) ? String(Number(v)) : v;
  }
  return out;
}
