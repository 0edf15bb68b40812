/**
 * The input: XREADGROUP over a dedicated blocking connection, with Buffer replies so that nothing is
 * decoded on the main thread. At start the consumer first re-reads its own pending entries (`0`, then from
 * the last ID returned, until empty) — the entries a previous run read but did not commit — and then
 * reads new ones (`>`).
 */
import { type Reply, ReplyError, type RespConnection } from '../redis/respConnection.js';
import type { RawEntry } from '../routing/batchCodec.js';

/**
 * The fenced read. A read moves entries into this consumer's pending list, so a read by an instance that
 * lost its lease — e.g. one sent after a process pause, past any time-based check — would hide entries
 * from the new leader. Reads of new entries therefore run as an optimistic transaction on the lease key:
 *
 *   WATCH <lease>; GET <lease>        → the token must be ours, else FENCED (nothing read)
 *   MULTI; XREADGROUP … >; XREVRANGE <stream> + - COUNT 1; EXEC
 *                                     → EXEC runs only if the lease key was not touched since WATCH
 *                                       (taken over, expired, or renewed by us: then we simply retry)
 *
 * A transaction cannot block: when nothing is new, the caller waits with a plain `XREAD BLOCK` (no side
 * effects) from the stream's last ID (the XREVRANGE) and then reads again.
 *
 * Until 0.1 this was a Lua script; Redis converted every read's reply to Lua values and back, measured at
 * ~3.8 µs of Redis CPU per event (BENCHMARKS.md). WATCH state belongs to the connection, so a reconnect
 * between the two round trips would silently drop it: the read then fails instead (see `closes`).
 */
const MAX_WATCH_RETRIES = 20;

export interface SourceOptions {
  stream: string;
  group: string;
  consumer: string;
  batchSize: number;
  blockMs: number;
  createGroup: boolean;
  startId: '$' | '0';
  /** The lease key and the token this instance holds: new entries are read only while it holds it. */
  fence: () => { leaseKey: string; token: string };
}

export interface ReadResult {
  entries: RawEntry[];
  /** Pending entries whose data was deleted from the stream (XDEL/trim): nothing to process, ack them. */
  deleted: Buffer[];
  /** True while re-reading this consumer's own pending entries. */
  replay: boolean;
  /** On a replay: each entry's delivery count (XPENDING, this read included); null for new entries. */
  deliveries: number[] | null;
}

export class RedisSource {
  private cursor: string | null = '0';
  /** Times the connection closed: a fenced read must WATCH and EXEC on the same connection. */
  private closes = 0;
  /** ID of the last entry any read returned (null before the first). */
  private lastId: string | null = null;

  constructor(
    private readonly redis: RespConnection,
    private readonly opts: SourceOptions,
  ) {
    redis.on('close', () => this.closes++);
  }

  /** Creates the group (and stream) when missing, or fails with a clear message when not allowed to. */
  async ensureGroup(): Promise<void> {
    const { stream, group } = this.opts;
    if (!this.opts.createGroup) {
      if (!(await this.groupExists())) {
        throw new Error(
          `consumer group "${group}" does not exist on stream "${stream}" (and source.createGroup is false)`,
        );
      }
      return;
    }
    try {
      await this.redis.call('XGROUP', 'CREATE', stream, group, this.opts.startId, 'MKSTREAM');
    } catch (e) {
      if (!String((e as Error).message).includes('BUSYGROUP')) throw e;
    }
  }

  async groupExists(): Promise<boolean> {
    try {
      const groups = (await this.redis.call('XINFO', 'GROUPS', this.opts.stream)) as unknown[];
      return groups.some((g) => fieldOf(g, 'name') === this.opts.group);
    } catch (e) {
      if (String((e as Error).message).includes('no such key')) return false;
      throw e;
    }
  }

  /**
   * One XREADGROUP: pending entries first, then new ones, blocking up to `blockMs` (at most the configured
   * block; the engine passes less when its lease has less time left).
   */
  async read(
    blockMs = this.opts.blockMs,
    abort: { aborted: boolean } = { aborted: false },
  ): Promise<ReadResult> {
    const o = this.opts;
    const replay = this.cursor !== null;
    const reply = replay
      ? await this.redis.call(
          'XREADGROUP',
          'GROUP',
          o.group,
          o.consumer,
          'COUNT',
          o.batchSize,
          'STREAMS',
          o.stream,
          this.cursor as string,
        )
      : await this.readNew(Math.max(1, Math.min(blockMs, o.blockMs)));
    const result: ReadResult = { entries: [], deleted: [], replay, deliveries: null };
    const items = firstStreamItems(reply);
    for (const item of items) {
      const [id, fields] = item as [Buffer, Buffer[] | null];
      if (fields === null) result.deleted.push(id);
      else result.entries.push({ id, fields });
    }
    const last = items[items.length - 1] as [Buffer, unknown] | undefined;
    if (replay && result.entries.length > 0) result.deliveries = await this.deliveriesOf(result.entries);
    // Only a read whose entries reach the caller moves the cursors: if it failed or was given up half-way
    // (the connection closed), the next read starts from the same place.
    if (abort.aborted) throw new Error('read given up (the connection closed)');
    const lastId = last === undefined ? null : last[0].toString('latin1');
    if (lastId !== null) this.lastId = lastId;
    if (replay) this.cursor = lastId;
    return result;
  }

  /** New entries through the fenced script; when there are none, waits up to `blockMs` for some. */
  private async readNew(blockMs: number): Promise<unknown> {
    const first = await this.readFenced();
    if (first[0] === 1) return first[1];
    const from = first[1];
    const woke = await this.redis.call('XREAD', 'BLOCK', blockMs, 'STREAMS', this.opts.stream, from);
    if (woke === null) return null;
    const second = await this.readFenced();
    return second[0] === 1 ? second[1] : null;
  }

  /** One fenced read of new entries: `[1, reply]`, or `[0, last stream ID]` when nothing was new. */
  async readFenced(): Promise<[1, unknown] | [0, string]> {
    const o = this.opts;
    for (let attempt = 1; ; attempt++) {
      const f = o.fence();
      const closes = this.closes;
      const held = thrown(
        await this.redis.send([
          ['WATCH', f.leaseKey],
          ['GET', f.leaseKey],
        ]),
      )[1];
      const holder = held === null ? null : String(held);
      if (holder !== f.token) {
        await this.redis.call('UNWATCH');
        throw new Error(`FENCED lease held by ${String(holder)}, not ${f.token}`);
      }
      if (this.closes !== closes) throw new Error('the reader connection was re-established during a read');
      const tx = await this.redis.send([
        ['MULTI'],
        ['XREADGROUP', 'GROUP', o.group, o.consumer, 'COUNT', o.batchSize, 'STREAMS', o.stream, '>'],
        ['XREVRANGE', o.stream, '+', '-', 'COUNT', 1],
        ['EXEC'],
      ]);
      const r = thrown(tx)[3] as Reply[] | null;
      if (r !== null) {
        const [reply, last] = thrown(r);
        if (reply !== null) return [1, reply];
        const top = (last as Array<[Buffer, unknown]>)[0];
        return [0, top === undefined ? '0-0' : top[0].toString('latin1')];
      }
      // The lease key changed between WATCH and EXEC (our own renewal, or a take-over): nothing was read.
      if (attempt >= MAX_WATCH_RETRIES) throw new Error('the lease key kept changing during fenced reads');
    }
  }

  /**
   * After a failed read: the server may have executed it (moving entries into this consumer's pending
   * list) while its reply was lost. Re-read our own pending entries after the last ID we did receive
   * before reading new ones — everything up to that ID is already in the pipeline.
   */
  resumeAfterError(): void {
    if (this.cursor === null) this.cursor = this.lastId ?? '0';
  }

  /** Delivery counts of pending entries (one XPENDING over their ID range); 1 where unknown. */
  private async deliveriesOf(entries: RawEntry[]): Promise<number[]> {
    const o = this.opts;
    const first = (entries[0] as RawEntry).id.toString('latin1');
    const last = (entries[entries.length - 1] as RawEntry).id.toString('latin1');
    const rows = (await this.redis.call(
      'XPENDING',
      o.stream,
      o.group,
      first,
      last,
      entries.length * 2,
      o.consumer,
    )) as Array<[Buffer, Buffer, number, number]>;
    const byId = new Map<string, number>();
    for (const [id, , , count] of rows) byId.set(id.toString('latin1'), Number(count));
    return entries.map((e) => byId.get(e.id.toString('latin1')) ?? 1);
  }
}

/** The replies, throwing the first error among them. */
function thrown(replies: Reply[]): Reply[] {
  for (const r of replies) if (r instanceof ReplyError) throw r;
  return replies;
}

function firstStreamItems(reply: unknown): unknown[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const stream = reply[0] as [Buffer, unknown[]];
  return Array.isArray(stream[1]) ? stream[1] : [];
}

/** Reads a field of a RESP2 flat map reply (`[name, value, …]`). */
export function fieldOf(reply: unknown, name: string): unknown {
  if (!Array.isArray(reply)) return undefined;
  for (let i = 0; i + 1 < reply.length; i += 2) if (String(reply[i]) === name) return reply[i + 1];
  return undefined;
}
