/**
 * The commit script: applies a msgpack-encoded op list (built by CommitBuilder in the worker) in one
 * atomic step. Redis runs a script without interleaving other clients, and an error stops it at the
 * failing op — with XACK last, an entry is never acked when a write before it failed (a MULTI would have
 * run the rest). Redis' built-in `cmsgpack` decodes the list; each op is `{name, args…}`.
 *
 * Three guards run before any write:
 * - **Fencing**: the lease must still hold our token (lease/lease.ts). A paused old owner whose lease
 *   lapsed and was taken over gets `FENCED` and writes nothing.
 * - **Idempotence**: `<ns>:applied` maps each shard to the ID of its last applied commit
 *   (`<term>#<seq>`, where the term is the lease token plus a random part per engine start). A commit is retried only when its reply was lost (connection dropped, or ioredis
 *   re-sending it after a reconnect); if it had been applied, the retry finds its own ID and does nothing.
 *   Commits of a shard are sequential, so only the last one can be retried.
 * - **Continuity**: after its first commit in a term, a shard's commit names the ID of its previous one;
 *   if `<ns>:applied` holds another, Redis lost writes we saw acknowledged (a restart with
 *   `appendfsync everysec`, a failover to a lagging replica) and our in-memory state is ahead of the
 *   checkpoint: `STATELOST`, and the engine reloads everything from Redis instead of writing on top.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export const APPLY_OPS_3 = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED lease held by ' .. tostring(redis.call('GET', KEYS[1])) .. ', not ' .. ARGV[1])
end
local last = redis.call('HGET', KEYS[2], ARGV[2])
if last == ARGV[3] then return -1 end
if ARGV[5] ~= '' and last ~= ARGV[5] then
  return redis.error_reply('STATELOST last applied commit of shard ' .. ARGV[2] .. ' is ' .. tostring(last) .. ', expected ' .. ARGV[5])
end
local ops = cmsgpack.unpack(ARGV[4])
for i = 1, #ops do
  redis.call(unpack(ops[i]))
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return #ops`;

const SHA = createHash('sha1').update(APPLY_OPS_3).digest('hex');

export interface CommitFence {
  /** `<ns>:lease`. */
  leaseKey: string;
  /** `<ns>:applied`. */
  appliedKey: string;
  /** The lease token this instance holds. */
  token: string;
  /**
   * Unique per engine term (the same token can span several terms, e.g. after a reload): commit IDs are
   * `<term>#<seq>`, so a new term's commit 0 never matches an old term's.
   */
  term: string;
}

/** True for the error a fenced commit gets: another instance holds the lease. */
export function isFenced(e: unknown): boolean {
  return String((e as Error)?.message).startsWith('FENCED');
}

/** True when Redis no longer has this shard's previous commit (it lost acknowledged writes). */
export function isStateLost(e: unknown): boolean {
  return String((e as Error)?.message).startsWith('STATELOST');
}

/**
 * Applies one encoded commit with ID `<token>#<seq>` for `shard`; loads the script when the server does not
 * know it (e.g. after a restart). Resolves `false` when the commit had already been applied.
 */
export async function applyOps(
  redis: Redis,
  fence: CommitFence,
  shard: number,
  seq: number,
  blob: Uint8Array,
): Promise<boolean> {
  const arg = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const prev = seq > 0 ? `${fence.term}#${seq - 1}` : '';
  const args = [
    fence.leaseKey,
    fence.appliedKey,
    fence.token,
    String(shard),
    `${fence.term}#${seq}`,
    arg,
    prev,
  ];
  let reply: unknown;
  try {
    reply = await redis.evalsha(SHA, 2, ...args);
  } catch (e) {
    if (!String((e as Error).message).startsWith('NOSCRIPT')) throw e;
    reply = await redis.eval(APPLY_OPS_3, 2, ...args);
  }
  return reply !== -1;
}
