/**
 * The commit: applies a msgpack-encoded op list (built by CommitBuilder in the worker) in one atomic step,
 * with the script `APPLY_OPS_3` (redis/scripts/applyOps-2.ts). Redis runs a script without interleaving
 * other clients, and an error stops it at the failing op — with XACK last, an entry is never acked when a write before it failed (a MULTI would have
 * run the rest). Redis' built-in `cmsgpack` decodes the list; each op is `{name, args…}`.
 *
 * Three guards run before any write:
 * - **Fencing**: the lease must still hold our token (lease/lease.ts). A paused old owner whose lease
 *   lapsed and was taken over gets `FENCED` and writes nothing.
 * - **Idempotence**: `<ns>:applied` maps each shard to the ID of its last applied commit
 *   (`<term>#<seq>`, where the term is the lease token plus a random part per engine start). A commit
 *   is retried only when its reply was lost (connection dropped, or ioredis re-sending it after a
 *   reconnect); if it had been applied, the retry finds its own ID and does nothing.
 *   Commits of a shard are sequential, so only the last one can be retried.
 * - **Continuity**: after its first commit in a term, a shard's commit names the ID of its previous one;
 *   if `<ns>:applied` holds another, Redis lost writes we saw acknowledged (a restart with
 *   `appendfsync everysec`, a failover to a lagging replica) and our in-memory state is ahead of the
 *   checkpoint: `STATELOST`, and the engine reloads everything from Redis instead of writing on top.
 */
import type { Redis } from 'ioredis';
import { applyOpsScript } from '../redis/scripts/applyOps-2.js';

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

/**
 * Applies one encoded commit with ID `<term>#<seq>` for `shard` (the script loader sends it again as EVAL
 * when the server does not know the script, e.g. after a restart). Resolves `false` when the commit had
 * already been applied.
 *
 * @throws FencedError, StateLostError (the continuity check), other classified replies (redis/errors.ts)
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
  const reply = await applyOpsScript.run(
    redis,
    [fence.leaseKey, fence.appliedKey],
    [fence.token, String(shard), `${fence.term}#${seq}`, arg, prev],
  );
  return reply !== -1;
}
