/**
 * The input: XREADGROUP over a dedicated blocking connection, with Buffer replies so that nothing is
 * decoded on the main thread. At start the consumer first re-reads its own pending entries (`0`, then from
 * the last ID returned, until empty) — the entries a previous run read but did not commit — and then
 * reads new ones (`>`).
 */
import type { Redis } from 'ioredis';
import type { RawEntry } from '../routing/batchCodec.js';

export interface SourceOptions {
  stream: string;
  group: string;
  consumer: string;
  batchSize: number;
  blockMs: number;
  createGroup: boolean;
  startId: '$' | '0';
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
  /** ID of the last entry any read returned (null before the first). */
  private lastId: string | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly opts: SourceOptions,
  ) {}

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
      await this.redis.xgroup('CREATE', stream, group, this.opts.startId, 'MKSTREAM');
    } catch (e) {
      if (!String((e as Error).message).includes('BUSYGROUP')) throw e;
    }
  }

  async groupExists(): Promise<boolean> {
    try {
      const groups = (await this.redis.xinfo('GROUPS', this.opts.stream)) as unknown[];
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
    const args: Array<string | number> = ['GROUP', o.group, o.consumer, 'COUNT', o.batchSize];
    if (!replay) args.push('BLOCK', Math.max(1, Math.min(blockMs, o.blockMs)));
    args.push('STREAMS', o.stream, this.cursor ?? '>');
    const reply = await this.redis.callBuffer('XREADGROUP', ...args);
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
    const rows = (await this.redis.xpending(
      o.stream,
      o.group,
      first,
      last,
      entries.length * 2,
      o.consumer,
    )) as Array<[string, string, number, number]>;
    const byId = new Map<string, number>();
    for (const [id, , , count] of rows) byId.set(id, Number(count));
    return entries.map((e) => byId.get(e.id.toString('latin1')) ?? 1);
  }
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
