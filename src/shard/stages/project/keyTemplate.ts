/**
 * A projection's hash key from its template (config/projectSchema.ts checks the template):
 *
 *   "proj:{tag}:customer:{key}"  with stream `orders`, key `c-17`  →  proj:{orders}:customer:c-17
 *
 * `{key}` is the event's key, its exact bytes (a key need not be UTF-8). `{tag}` is a Redis Cluster hash
 * tag that hashes like the input stream's key: the stream's own tag when its name has one
 * (`orders:{orders:7}` → `{orders:7}`, a partition's stream), else the whole name in braces. A hash under it
 * lives in the stream's slot, so the one-script commit can write it in cluster mode.
 */
const encoder = new TextEncoder();

/**
 * The hash tag of a Redis key, braces included: Redis hashes only what is between the first `{` and the
 * next `}` when that is not empty; otherwise the whole key.
 */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return key.slice(open, close + 1);
  }
  return `{${key}}`;
}

/**
 * Builds the key function of a template: the key's latin1 text (one char per byte) → the hash key, as
 * text when the key is ASCII (a string concatenation: a byte array per key cost more than the rest of
 * the op), else as bytes.
 */
export function projectionKey(template: string, tag: string): (key: string) => string | Uint8Array {
  const [before, after] = template.replaceAll('{tag}', tag).split('{key}') as [string, string];
  const head = encoder.encode(before);
  const tail = encoder.encode(after);
  return (key) => {
    if (isAscii(key)) return before + key + after;
    const out = new Uint8Array(head.length + key.length + tail.length);
    out.set(head, 0);
    for (let i = 0; i < key.length; i++) out[head.length + i] = key.charCodeAt(i);
    out.set(tail, head.length + key.length);
    return out;
  };
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}
