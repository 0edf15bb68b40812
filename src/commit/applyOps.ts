/**
 * The commit script: applies a msgpack-encoded op list (built by CommitBuilder in the worker) in one
 * atomic step. Redis runs a script without interleaving other clients, and an error stops it at the
 * failing op — with XACK last, an entry is never acked when a write before it failed (a MULTI would have
 * run the rest). Redis' built-in `cmsgpack` decodes the list; each op is `{name, args…}`.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export const APPLY_OPS_0 = `local ops = cmsgpack.unpack(ARGV[1])
for i = 1, #ops do
  redis.call(unpack(ops[i]))
end
return #ops`;

const SHA = createHash('sha1').update(APPLY_OPS_0).digest('hex');

/** Applies one encoded commit; loads the script when the server does not know it (e.g. after a restart). */
export async function applyOps(redis: Redis, blob: Uint8Array): Promise<void> {
  const arg = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  try {
    await redis.evalsha(SHA, 0, arg);
  } catch (e) {
    if (!String((e as Error).message).startsWith('NOSCRIPT')) throw e;
    await redis.eval(APPLY_OPS_0, 0, arg);
  }
}
