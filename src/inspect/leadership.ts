/**
 * Who processes the pipeline and who stands by.
 *
 * The leader is the holder of the lease (lease/lease.ts): `<ns>:lease` = `<epoch>:<consumer>/<random>`
 * with a TTL. Standbys keep no record in Redis; what shows them is their connection: every instance
 * holds one lease connection named `streamshard:<name>:lease` (pipeline/pipeline.ts), leader and
 * standbys alike, so CLIENT LIST counts the instances that are up. A leader that died without releasing
 * the lease still holds it until its TTL runs out, but has no connection.
 */
import type { Redis } from 'ioredis';
import type { CheckpointKeys } from '../redis/checkpointKeys.js';
import { isReplyError } from '../redis/errors.js';

export interface LeaseStatus {
  held: boolean;
  /** The lease value, the fencing token: `<epoch>:<consumer>/<random>`. */
  token: string | null;
  epoch: number | null;
  /** The leader's consumer name (`source.consumer` of the instance holding the lease). */
  consumer: string | null;
  /** ms until the lease lapses unless renewed. */
  ttlMs: number | null;
}

export async function leaseStatus(redis: Redis, keys: CheckpointKeys): Promise<LeaseStatus> {
  const replies = await redis.multi().get(keys.lease()).pttl(keys.lease()).exec();
  const token = replies?.[0]?.[1];
  if (typeof token !== 'string')
    return { held: false, token: null, epoch: null, consumer: null, ttlMs: null };
  const colon = token.indexOf(':');
  const owner = token.slice(colon + 1);
  const slash = owner.lastIndexOf('/');
  return {
    held: true,
    token,
    epoch: Number(token.slice(0, colon)),
    consumer: slash === -1 ? owner : owner.slice(0, slash),
    ttlMs: Number(replies?.[1]?.[1] ?? 0),
  };
}

export interface Instances {
  /** Instances connected to Redis (leader and standbys): lease connections of this pipeline's name. */
  connected: number;
  /** Their client addresses (`host:port`) and connection ages in seconds. */
  clients: Array<{ addr: string; ageSeconds: number }>;
}

/**
 * The pipeline's instances from CLIENT LIST, or null when Redis refuses the command (an ACL without
 * `client`, a managed Redis that renames it).
 */
export async function instances(redis: Redis, pipelineName: string): Promise<Instances | null> {
  let list: string;
  try {
    list = String(await redis.client('LIST'));
  } catch (e) {
    if (isReplyError(e)) return null;
    throw e;
  }
  const name = `streamshard:${pipelineName}:lease`;
  const clients: Instances['clients'] = [];
  for (const line of list.split('\n')) {
    const f = new Map<string, string>();
    for (const pair of line.trim().split(' ')) {
      const eq = pair.indexOf('=');
      if (eq > 0) f.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    if (f.get('name') === name)
      clients.push({ addr: f.get('addr') ?? '?', ageSeconds: Number(f.get('age')) });
  }
  return { connected: clients.length, clients };
}
