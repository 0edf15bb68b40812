/** Growable byte buffers: the writers of the batch format, the commit op list and the dedup log. */

/**
 * `buf` itself when `used + extra` bytes fit, else a buffer of at least twice the size holding its first
 * `used` bytes. Callers keep a DataView over the result.
 */
export function ensureRoom(
  buf: Uint8Array<ArrayBuffer>,
  used: number,
  extra: number,
): Uint8Array<ArrayBuffer> {
  if (used + extra <= buf.length) return buf;
  let size = buf.length * 2;
  while (size < used + extra) size *= 2;
  const next = new Uint8Array(size);
  next.set(buf.subarray(0, used));
  return next;
}
