/**
 * The dedup key of `dedup.by: content`: a SHA-256 of what makes two events the same, chosen once when the
 * shard is built.
 *
 * - whole body: the body field's exact bytes (`body.encoding: json | msgpack`), or, for `flat`, every
 *   field name and value of the entry, each prefixed with its length (so `ab|c` ≠ `a|bc`);
 * - `fields: [...]`: the canonical encoding ({@link canonical}) of the named body fields' values, in the
 *   order listed — independent of the body's encoding, key order and number formatting.
 *
 * The key is the digest's first 132 bits in base64url (22 ASCII characters): short in the dedup memory and
 * its checkpoint log, with no collision to expect below ~10^19 remembered events.
 */
import { createHash } from 'node:crypto';
import type { BodyConfig } from '../../../config/schema.js';
import type { BatchReader } from '../../../routing/batchCodec.js';
import { compilePath, type DecodedEvent } from '../decode.js';

/** The dedup key of the reader's current (decoded) event. */
export type DedupKeyOf = (r: BatchReader, ev: DecodedEvent) => string;

const KEY_CHARS = 22;

/** The key function for `by: content`, with `fields` or over the whole body. */
export function contentKey(body: BodyConfig, fields: readonly string[] | undefined): DedupKeyOf {
  if (fields !== undefined) {
    const getters = fields.map(compilePath);
    return (_r, ev) => digest(canonical(getters.map((g) => g(ev.body))));
  }
  if (body.encoding === 'flat') {
    const len = new Uint8Array(4);
    const view = new DataView(len.buffer);
    return (r) => {
      const h = createHash('sha256');
      for (let i = 0; i < r.fieldCount; i++) {
        view.setUint32(0, r.fieldLength(i));
        h.update(len).update(r.field(i));
      }
      return h.digest('base64url').slice(0, KEY_CHARS);
    };
  }
  const name = Buffer.from(body.field, 'utf8');
  return (r) => {
    // decode succeeded, so the body field is there
    for (let i = 0; i + 1 < r.fieldCount; i += 2) {
      if (r.fieldIs(i, name))
        return createHash('sha256')
          .update(r.field(i + 1))
          .digest('base64url')
          .slice(0, KEY_CHARS);
    }
    throw new Error(`body field "${body.field}" missing after decoding`);
  };
}

function digest(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('base64url').slice(0, KEY_CHARS);
}

/**
 * A canonical text form of a decoded value: equal for equal values whatever the body's encoding or key
 * order, different for values of different types (`1` ≠ `"1"`, a missing field ≠ `null`). Objects are
 * written with sorted keys; byte strings (msgpack `bin`) as hex.
 */
export function canonical(v: unknown): string {
  if (v === undefined) return 'u';
  if (v === null) return 'n';
  switch (typeof v) {
    case 'number':
      return Object.is(v, -0) ? 'd0' : `d${v}`;
    case 'bigint':
      return `d${v}`;
    case 'string':
      return `s${JSON.stringify(v)}`;
    case 'boolean':
      return v ? 't' : 'f';
  }
  if (v instanceof Uint8Array)
    return `b${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')};`;
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return `?${String(v)}`;
}
