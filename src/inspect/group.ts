/**
 * The consumer group as an operator wants it: how far behind it is, in entries and in seconds.
 *
 * - pending: entries delivered to a consumer and not yet acked (`XINFO GROUPS`); the age of the oldest
 *   is its ID's time against Redis' clock (`XPENDING` summary gives the smallest pending ID).
 * - lag: entries not yet delivered (`XINFO GROUPS` `lag`, Redis ≥ 7; null when Redis cannot tell); the
 *   age of the oldest unread entry is that of the first entry after `last-delivered-id`.
 */
import type { Redis } from 'ioredis';
import { MARKER_PREFIX } from '../commit/incarnation.js';
import { NoGroupError, NoSuchKeyError } from '../errors.js';
import { classifyRedisError } from '../redis/errors.js';
import { fieldOf } from '../source/redisSource.js';
import { ageSeconds } from './streams.js';

export interface ConsumerInfo {
  name: string;
  pending: number;
  /** ms since the consumer last read or claimed (XINFO CONSUMERS `idle`). */
  idleMs: number;
}

export interface GroupStatus {
  name: string;
  /** False when the stream or the group does not exist (then every figure below is 0 or null). */
  exists: boolean;
  pending: number;
  /** Entries not yet delivered; null when Redis cannot tell (before 7.0, or after XDEL/XSETID). */
  lag: number | null;
  lastDeliveredId: string | null;
  oldestPendingId: string | null;
  oldestPendingAgeSeconds: number | null;
  oldestUnreadId: string | null;
  oldestUnreadAgeSeconds: number | null;
  /** The group's consumers, without streamshard's incarnation marker (commit/incarnation.ts). */
  consumers: ConsumerInfo[];
}

export async function groupStatus(
  redis: Redis,
  stream: string,
  group: string,
  nowMs: number,
): Promise<GroupStatus> {
  const none: GroupStatus = {
    name: group,
    exists: false,
    pending: 0,
    lag: null,
    lastDeliveredId: null,
    oldestPendingId: null,
    oldestPendingAgeSeconds: null,
    oldestUnreadId: null,
    oldestUnreadAgeSeconds: null,
    consumers: [],
  };
  let rows: unknown[];
  try {
    rows = (await redis.xinfo('CONSUMERS', stream, group)) as unknown[];
  } catch (e) {
    const err = classifyRedisError(e);
    if (err instanceof NoGroupError || err instanceof NoSuchKeyError) return none;
    throw err;
  }
  const groups = (await redis.xinfo('GROUPS', stream)) as unknown[];
  const g = groups.find((x) => String(fieldOf(x, 'name')) === group);
  if (g === undefined) return none; // destroyed in between
  const pending = Number(fieldOf(g, 'pending'));
  const lagRaw = fieldOf(g, 'lag');
  const lastDeliveredId = String(fieldOf(g, 'last-delivered-id'));
  const s: GroupStatus = {
    ...none,
    exists: true,
    pending,
    lag: lagRaw === null || lagRaw === undefined ? null : Number(lagRaw),
    lastDeliveredId,
    consumers: rows
      .map((r) => ({
        name: String(fieldOf(r, 'name')),
        pending: Number(fieldOf(r, 'pending')),
        idleMs: Number(fieldOf(r, 'idle')),
      }))
      .filter((c) => !c.name.startsWith(MARKER_PREFIX)),
  };
  if (pending > 0) {
    const summary = (await redis.xpending(stream, group)) as [number, string | null, ...unknown[]];
    s.oldestPendingId = summary[1];
    s.oldestPendingAgeSeconds = summary[1] === null ? null : ageSeconds(nowMs, summary[1]);
  }
  const unread = (await redis.xrange(stream, `(${lastDeliveredId}`, '+', 'COUNT', 1)) as Array<
    [string, string[]]
  >;
  const first = unread[0]?.[0] ?? null;
  s.oldestUnreadId = first;
  s.oldestUnreadAgeSeconds = first === null ? null : ageSeconds(nowMs, first);
  return s;
}
