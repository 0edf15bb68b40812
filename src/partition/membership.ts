/**
 * Which instances of a pipeline are alive: each one heartbeats into one sorted set every ttl/3, scored by
 * the expiry of its heartbeat on the server's clock (`MEMBERSHIP_1`). A member that stops (kill -9, a
 * pause past the TTL, a lost network) drops out at its expiry; one that stops gracefully leaves at once.
 *
 *   <keyPrefix>:{<stream>:<group>}:members   ZSET  member ID → expiry (server ms)
 */
import type { Redis } from 'ioredis';
import { membershipScript } from '../redis/scripts/membership-1.js';

export class Membership {
  constructor(
    private readonly redis: Redis,
    /** The members key (see above). */
    private readonly key: string,
    /** This instance's ID (the lease owner string: `<consumer>/<random>`). */
    readonly id: string,
    private readonly ttlMs: number,
  ) {}

  /** The pipeline's members key: under its own hash tag, apart from every partition's. */
  static keyOf(keyPrefix: string, stream: string, group: string): string {
    return `${keyPrefix}:{${stream}:${group}}:members`;
  }

  /** Records this instance's heartbeat and returns the live members (sorted, this one included). */
  async heartbeat(): Promise<string[]> {
    const live = await membershipScript.run(this.redis, [this.key], [this.id, 'join', this.ttlMs]);
    return (live as string[]).map(String);
  }

  /** Leaves at once (graceful stop); returns the members left. */
  async leave(): Promise<string[]> {
    const live = await membershipScript.run(this.redis, [this.key], [this.id, 'leave', this.ttlMs]);
    return (live as string[]).map(String);
  }
}
