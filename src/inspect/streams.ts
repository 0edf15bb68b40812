/**
 * Reading streams for the operator commands: Redis' clock, the time inside entry IDs, a stream's length
 * and newest entry, entries as printable JSON.
 *
 * Ages are measured against Redis' `TIME`, not the local clock: an ID made by `XADD … *` is Redis' clock
 * in ms when the entry was added, so the difference is right even when this host's clock is off.
 */
import type { Redis } from 'ioredis';
import { WrongTypeError } from '../errors.js';
import { classifyRedisError } from '../redis/errors.js';
import { printable } from '../sink/sink.js';

/** Redis' clock (`TIME`), epoch ms. */
export async function redisTimeMs(redis: Redis): Promise<number> {
  const [sec, usec] = await redis.time();
  return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
}

/** The ms part of a stream entry ID (`<ms>-<seq>`). */
export function idMs(id: string): number {
  const dash = id.indexOf('-');
  return Number(dash === -1 ? id : id.slice(0, dash));
}

/** Seconds from the time in `id` to `nowMs`, to the ms; never negative (IDs may run ahead of TIME). */
export function ageSeconds(nowMs: number, id: string): number {
  return Math.max(0, nowMs - idMs(id)) / 1000;
}

export interface StreamTip {
  stream: string;
  /** False when the key does not exist. */
  exists: boolean;
  length: number;
  /** The newest entry's ID, or null when the stream is empty. */
  lastId: string | null;
  /** Seconds since the newest entry was added (Redis' clock), or null when empty. */
  lastAgeSeconds: number | null;
}

/**
 * Length and newest entry of a stream; a missing key is an empty stream that does not exist.
 *
 * @throws WrongTypeError when the key holds another type
 */
export async function streamTip(redis: Redis, stream: string, nowMs: number): Promise<StreamTip> {
  const replies = await redis
    .multi()
    .exists(stream)
    .xlen(stream)
    .xrevrange(stream, '+', '-', 'COUNT', 1)
    .exec();
  for (const [err] of replies ?? []) if (err) throw classifyRedisError(err);
  const [[, exists], [, length], [, newest]] = replies as Array<[null, unknown]>;
  const lastId = (newest as Array<[string, string[]]>)[0]?.[0] ?? null;
  return {
    stream,
    exists: exists === 1,
    length: Number(length),
    lastId,
    lastAgeSeconds: lastId === null ? null : ageSeconds(nowMs, lastId),
  };
}

/** `streamTip`, or an error message naming the key when it is not a stream. */
export async function streamTipOrProblem(
  redis: Redis,
  stream: string,
  nowMs: number,
): Promise<StreamTip | { stream: string; problem: string }> {
  try {
    return await streamTip(redis, stream, nowMs);
  } catch (e) {
    if (e instanceof WrongTypeError) return { stream, problem: `"${stream}" is not a stream` };
    throw e;
  }
}

/** A stream entry with its fields as bytes, as `xrangeBuffer` returns them. */
export interface RawEntry {
  id: string;
  fields: Buffer[];
}

/**
 * Entries from `start` (inclusive; `(id` for exclusive) to `end`, oldest first, in pages of `page` —
 * without holding more than one page. Stops after `limit` entries (0 = no limit).
 */
export async function* entriesFrom(
  redis: Redis,
  stream: string,
  start: string,
  opts: { end?: string; page?: number; limit?: number } = {},
): AsyncGenerator<RawEntry> {
  const page = opts.page ?? 500;
  const limit = opts.limit ?? 0;
  let from = start;
  let n = 0;
  for (;;) {
    const rows = await redis.xrangeBuffer(stream, from, opts.end ?? '+', 'COUNT', page);
    for (const [id, fields] of rows) {
      yield { id: id.toString(), fields };
      if (limit > 0 && ++n >= limit) return;
    }
    if (rows.length < page) return;
    from = `(${(rows[rows.length - 1] as [Buffer, Buffer[]])[0].toString()}`;
  }
}

/**
 * Newest entries first, from the end of the stream back, in pages; stops after `limit` (0 = no limit).
 */
export async function* entriesNewestFirst(
  redis: Redis,
  stream: string,
  opts: { page?: number; limit?: number } = {},
): AsyncGenerator<RawEntry> {
  const page = opts.page ?? 500;
  const limit = opts.limit ?? 0;
  let from = '+';
  let n = 0;
  for (;;) {
    const count = limit > 0 ? Math.min(page, limit - n) : page;
    const rows = await redis.xrevrangeBuffer(stream, from, '-', 'COUNT', count);
    for (const [id, fields] of rows) {
      yield { id: id.toString(), fields };
      n++;
    }
    if (rows.length < count || (limit > 0 && n >= limit)) return;
    from = `(${(rows[rows.length - 1] as [Buffer, Buffer[]])[0].toString()}`;
  }
}

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * The fields `[name, value, …]` as an object of printable values, as the stdout sink prints them: a
 * value that is not UTF-8 as `{hex}` (a repeated name: the last wins).
 */
export function fieldObject(fields: readonly Uint8Array[]): Record<string, string | { hex: string }> {
  const o: Record<string, string | { hex: string }> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) {
    o[utf8.decode(fields[i] as Uint8Array)] = printable(fields[i + 1] as Uint8Array);
  }
  return o;
}

/** The value of field `name` (the last one when repeated), or undefined. */
export function fieldValue(fields: readonly Buffer[], name: string): Buffer | undefined {
  let found: Buffer | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if ((fields[i] as Buffer).toString() === name) found = fields[i + 1];
  }
  return found;
}
