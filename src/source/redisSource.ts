/**
 * The input: XREADGROUP over a dedicated blocking connection, with Buffer replies so that nothing is
 * decoded on the main thread. At start the consumer first re-reads its own pending entries (`0`, then from
 * the last ID returned, until empty) — the entries a previous run read but did not commit — and then
 * reads new ones (`>`).
 */
import {
  parseReply,
  type Reply,
  ReplyError,
  type RespConnection,
  RespReader,
} from '../redis/respConnection.js';
import { FencedError, GroupMovedBackError } from '../errors.js';
import { classifyRedisError } from '../redis/errors.js';
import { NO_ENTRIES, StreamReply } from './streamReply.js';

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
 * One round trip per read: each transaction is sent together with the WATCH + GET of the next one
 * (`MULTI … EXEC; WATCH; GET`), so the next read finds the lease already watched and its holder known —
 * it checks the token before sending, and its EXEC fails if the key changed since that WATCH. The
 * WATCH + GET goes out on its own only for the first read, after an aborted or fenced one, and after a
 * reconnect (which drops the WATCH).
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
  /** The lease key and the token this instance holds: new entries are read only while it holds it. */
  fence: () => { leaseKey: string; token: string };
}

export interface ReadResult {
  /** The entries, still in the reply's bytes (the router copies them into the shard batches). */
  entries: StreamReply;
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
  /**
   * The lease is WATCHed on the connection (as of `closes`), and this is its holder as read right after
   * that WATCH; null when no WATCH is armed.
   */
  private armed: { closes: number; holder: string | null } | null = null;

  constructor(
    private readonly redis: RespConnection,
    private readonly opts: SourceOptions,
  ) {
    redis.on('close', () => this.closes++);
  }

  /**
   * One XREADGROUP: pending entries first, then new ones, blocking up to `blockMs` (at most the configured
   * block; the engine passes less when its lease has less time left).
   *
   * @throws FencedError (another instance holds the lease), NoGroupError and the other classified error
   * replies (redis/errors.ts), GroupMovedBackError; connection errors as they are
   */
  async read(
    blockMs = this.opts.blockMs,
    abort: { aborted: boolean } = { aborted: false },
  ): Promise<ReadResult> {
    try {
      return await this.readOnce(blockMs, abort);
    } catch (e) {
      throw classifyRedisError(e);
    }
  }

  private async readOnce(blockMs: number, abort: { aborted: boolean }): Promise<ReadResult> {
    const o = this.opts;
    const replay = this.cursor !== null;
    const entries = replay
      ? new StreamReply(
          (
            await this.redis.sendRaw([
              [
                'XREADGROUP',
                'GROUP',
                o.group,
                o.consumer,
                'COUNT',
                o.batchSize,
                'STREAMS',
                o.stream,
                this.cursor as string,
              ],
            ])
          )[0] as Buffer,
        )
      : await this.readNew(Math.max(1, Math.min(blockMs, o.blockMs)));
    // A group hands out new entries in ID order, after every entry it delivered before (to anyone):
    // an ID at or below one we already got means its position moved back under us (re-created, SETID).
    if (!replay && entries.count > 0 && this.lastId !== null && compareIds(entries.idAt(0), this.lastId) <= 0)
      throw new GroupMovedBackError(entries.idAt(0), this.lastId);
    const result: ReadResult = { entries, deleted: entries.deleted, replay, deliveries: null };
    if (replay && entries.count > 0) result.deliveries = await this.deliveriesOf(entries);
    // Only a read whose entries reach the caller moves the cursors: if it failed or was given up half-way
    // (the connection closed), the next read starts from the same place.
    if (abort.aborted) throw new Error('read given up (the connection closed)');
    const lastId = entries.lastId;
    if (lastId !== null) this.lastId = lastId;
    if (replay) this.cursor = lastId;
    return result;
  }

  /** New entries through the fenced read; when there are none, waits up to `blockMs` for some. */
  private async readNew(blockMs: number): Promise<StreamReply> {
    const first = await this.readFenced();
    if (first[0] === 1) return first[1];
    const from = first[1];
    // Only wakes us up: its reply is dropped unparsed, the fenced read below reads the entries. COUNT 1:
    // without it, the reply held every entry of the burst that woke us (unbounded memory).
    const [woke] = await this.redis.sendRaw([
      ['XREAD', 'COUNT', 1, 'BLOCK', blockMs, 'STREAMS', this.opts.stream, from],
    ]);
    const w = woke as Buffer;
    if (w[0] === 0x2d) throw parseReply(w) as ReplyError;
    if (w[0] === 0x2a && w[1] === 0x2d) return NO_ENTRIES; // *-1: timed out
    const second = await this.readFenced();
    return second[0] === 1 ? second[1] : NO_ENTRIES;
  }

  /** One fenced read of new entries: `[1, entries]`, or `[0, last stream ID]` when nothing was new. */
  async readFenced(): Promise<[1, StreamReply] | [0, string]> {
    const o = this.opts;
    for (let attempt = 1; ; attempt++) {
      const f = o.fence();
      if (this.armed === null || this.armed.closes !== this.closes) {
        const closes = this.closes;
        this.armed = null;
        const held = thrown(
          await this.redis.send([
            ['WATCH', f.leaseKey],
            ['GET', f.leaseKey],
          ]),
        )[1];
        this.armed = { closes, holder: held === null ? null : String(held) };
      }
      const { holder, closes } = this.armed;
      if (holder !== f.token) {
        this.armed = null;
        await this.redis.call('UNWATCH');
        throw new FencedError(`FENCED lease held by ${String(holder)}, not ${f.token}`);
      }
      if (this.closes !== closes) {
        this.armed = null;
        throw new Error('the reader connection was re-established during a read');
      }
      this.armed = null; // the EXEC below ends this WATCH, whatever happens
      const tx = await this.redis.sendRaw([
        ['MULTI'],
        ['XREADGROUP', 'GROUP', o.group, o.consumer, 'COUNT', o.batchSize, 'STREAMS', o.stream, '>'],
        ['XREVRANGE', o.stream, '+', '-', 'COUNT', 1],
        ['EXEC'],
        ['WATCH', f.leaseKey],
        ['GET', f.leaseKey],
      ]);
      // The replies came on the connection the commands went out on: the new WATCH is armed there.
      const held = thrown(tx.slice(4).map(parseReply))[1];
      this.armed = { closes, holder: held === null ? null : String(held) };
      thrown(tx.slice(0, 3).map(parseReply));
      const exec = execReplies(tx[3] as Buffer);
      if (exec !== null) {
        const [read, last] = exec;
        if (read[0] === 0x2d) throw parseReply(read) as ReplyError;
        if (!(read[0] === 0x2a && read[1] === 0x2d)) return [1, new StreamReply(read)]; // not *-1 (nil)
        const top = thrown([parseReply(last)])[0] as Array<[Buffer, unknown]>;
        return [0, top[0] === undefined ? '0-0' : top[0][0].toString('latin1')];
      }
      // The lease key changed between WATCH and EXEC (our own renewal, or a take-over): nothing was read.
      // The next try checks the holder the re-armed WATCH saw.
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
  private async deliveriesOf(entries: StreamReply): Promise<number[]> {
    const o = this.opts;
    const first = entries.idAt(0);
    const last = entries.idAt(entries.count - 1);
    const rows = (await this.redis.call(
      'XPENDING',
      o.stream,
      o.group,
      first,
      last,
      entries.count * 2,
      o.consumer,
    )) as Array<[Buffer, Buffer, number, number]>;
    const byId = new Map<string, number>();
    for (const [id, , , count] of rows) byId.set(id.toString('latin1'), Number(count));
    return Array.from({ length: entries.count }, (_, i) => byId.get(entries.idAt(i)) ?? 1);
  }
}

/** Orders two stream IDs (`<ms>-<seq>`, both parts decimal up to 2^64 - 1) without parsing to numbers. */
export function compareIds(a: string, b: string): number {
  const da = a.indexOf('-');
  const db = b.indexOf('-');
  return compareDecimal(a.slice(0, da), b.slice(0, db)) || compareDecimal(a.slice(da + 1), b.slice(db + 1));
}

function compareDecimal(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The replies, throwing the first error among them. */
function thrown(replies: Reply[]): Reply[] {
  for (const r of replies) if (r instanceof ReplyError) throw r;
  return replies;
}

/**
 * The two replies inside an EXEC reply, as RESP bytes (views); null when the transaction was aborted
 * (WATCH). @throws ReplyError for an error reply (EXECABORT)
 */
function execReplies(bytes: Buffer): [Buffer, Buffer] | null {
  const r = new RespReader(bytes);
  if (bytes[0] === 0x2d) throw r.parse() as ReplyError;
  r.pos = 1;
  const n = r.int();
  if (n === -1) return null;
  if (n !== 2) throw new Error(`EXEC returned ${String(n)} replies, expected 2`);
  const a = r.pos;
  r.skip();
  const b = r.pos;
  r.skip();
  return [bytes.subarray(a, b), bytes.subarray(b, r.pos)];
}

/** Reads a field of a RESP2 flat map reply (`[name, value, …]`). */
export function fieldOf(reply: unknown, name: string): unknown {
  if (!Array.isArray(reply)) return undefined;
  for (let i = 0; i + 1 < reply.length; i += 2) if (String(reply[i]) === name) return reply[i + 1];
  return undefined;
}
