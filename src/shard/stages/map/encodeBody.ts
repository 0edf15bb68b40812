/**
 * The fields a passed-through event is written to the sink with when a `map` stage changed its body: the
 * entry's own fields with the body field's value re-encoded (msgpack or JSON, as configured), or for
 * `flat` bodies every body field as a field (numbers and booleans as text, maps and lists as JSON), the
 * key field first when the body no longer holds it. Chosen once per shard.
 */
import { Encoder } from '@msgpack/msgpack';
import type { BodyConfig } from '../../../config/schema.js';
import type { BatchReader } from '../../../routing/batchCodec.js';
import type { Body } from '../decode.js';

export type BodyFields = (r: BatchReader, body: Body) => Uint8Array[];

const text = new TextEncoder();

function valueText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function bodyFields(body: BodyConfig, keyField: string): BodyFields {
  if (body.encoding === 'flat') {
    const keyName = text.encode(keyField);
    return (r, b) => {
      const out: Uint8Array[] = [];
      if (!Object.hasOwn(b, keyField)) out.push(keyName, r.field(r.keyField));
      for (const k of Object.keys(b)) {
        if (b[k] === undefined) continue;
        out.push(text.encode(k), text.encode(valueText(b[k])));
      }
      return out;
    };
  }
  const name = text.encode(body.field);
  const encode: (b: Body) => Uint8Array =
    body.encoding === 'msgpack'
      ? (
          (e) => (b) =>
            e.encode(b)
        )(new Encoder({ ignoreUndefined: true }))
      : (b) => text.encode(JSON.stringify(b));
  return (r, b) => {
    const out = r.fields();
    for (let i = 0; i + 1 < out.length; i += 2) {
      if (equal(out[i] as Uint8Array, name)) {
        out[i + 1] = encode(b);
        return out;
      }
    }
    return out; // no body field: the decoder dead-letters such an entry before any map
  };
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
