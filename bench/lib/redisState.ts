/**
 * What the bench asks Redis about a contender from the outside, identically for every contender: how far
 * its consumer group got (XINFO GROUPS), which entries are certainly acked (the ack watermark), how much
 * CPU Redis itself spent, and clean-up between runs.
 */
import type { Redis } from 'ioredis';

export interface GroupState {
  /** `entries-read`: entries delivered to the group so far (exact: the bench never deletes entries). */
  entriesRead: number;
  /** Entries delivered and not acked. */
  pending: number;
  lastDelivered: StreamId;
}

/** A stream ID as two numbers; the ms part is exact in a double. */
export interface StreamId {
  ms: number;
  seq: number;
}

export function parseId(id: string): StreamId {
  const dash = id.indexOf('-');
  return dash < 0
    ? { ms: Number(id), seq: 0 }
    : { ms: Number(id.slice(0, dash)), seq: Number(id.slice(dash + 1)) };
}

/** a ≤ b */
export function idLe(aMs: number, aSeq: number, b: StreamId): boolean {
  return aMs < b.ms || (aMs === b.ms && aSeq <= b.seq);
}

function fields(reply: unknown): Map<string, unknown> {
  const m = new Map<string, unknown>();
  if (Array.isArray(reply))
    for (let i = 0; i + 1 < reply.length; i += 2) m.set(String(reply[i]), reply[i + 1]);
  return m;
}

function findGroup(groups: unknown, group: string): GroupState | null {
  for (const g of (groups as unknown[]) ?? []) {
    const m = fields(g);
    if (m.get('name') !== group) continue;
    return {
      entriesRead: Number(m.get('entries-read') ?? 0),
      pending: Number(m.get('pending')),
      lastDelivered: parseId(String(m.get('last-delivered-id'))),
    };
  }
  return null;
}

export async function groupState(redis: Redis, stream: string, group: string): Promise<GroupState> {
  const state = findGroup(await redis.xinfo('GROUPS', stream), group);
  if (state === null) throw new Error(`consumer group ${group} on ${stream} is gone`);
  return state;
}

/**
 * The ack watermark: the highest ID W such that every entry ≤ W is certainly acked. An entry that was
 * delivered (≤ last-delivered-id, read first) and is below the smallest pending ID (XPENDING, read second)
 * was acked by the time the second reply arrived — whatever the contender's threads and connections. It is
 * an upper bound on each entry's ack time: an entry acked early waits for every earlier entry.
 */
export async function ackWatermark(redis: Redis, stream: string, group: string): Promise<StreamId> {
  const replies = await redis.pipeline().xinfo('GROUPS', stream).xpending(stream, group).exec();
  if (replies === null) throw new Error('watermark pipeline discarded');
  for (const [err] of replies) if (err) throw err;
  const g = findGroup(replies[0]?.[1], group);
  if (g === null) throw new Error(`consumer group ${group} on ${stream} is gone`);
  const summary = replies[1]?.[1] as [number, string | null, string | null, unknown];
  if (Number(summary[0]) === 0 || summary[1] === null) return g.lastDelivered;
  const min = parseId(summary[1]);
  // Everything strictly below the smallest pending ID (and delivered) is acked.
  const below =
    min.seq > 0 ? { ms: min.ms, seq: min.seq - 1 } : { ms: min.ms - 1, seq: Number.MAX_SAFE_INTEGER };
  return idLe(below.ms, below.seq, g.lastDelivered) ? below : g.lastDelivered;
}

/** Redis' own user + system CPU seconds (INFO cpu). */
export async function redisCpuSec(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const get = (k: string): number => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return get('used_cpu_user') + get('used_cpu_sys');
}

export async function redisUsedMemoryMb(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0) / 1024 / 1024;
}

/** UNLINKs every key matching `pattern` (SCAN, so the server never blocks on a huge KEYS). */
export async function dropKeys(redis: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) n += await redis.unlink(...keys);
  } while (cursor !== '0');
  return n;
}

/** Creates a consumer group at ID 0 (the whole stream), creating the stream when missing. */
export async function createGroup(redis: Redis, stream: string, group: string): Promise<void> {
  await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
}
