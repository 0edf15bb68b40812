/**
 * The newest dead letters for the status page, decoded (inspect/deadLetters.ts), from a cache: however
 * many viewers poll, Redis sees at most one XREVRANGE COUNT {@link RECENT} per {@link REFRESH_MS}, and a
 * request never waits on Redis longer than {@link WAIT_MS} — past that (or with the connection down) it
 * gets the last value, with the time it was read.
 */
import type { Redis } from 'ioredis';
import { parseDeadLetter } from '../../inspect/deadLetters.js';
import { entriesNewestFirst } from '../../inspect/streams.js';
import { printable } from '../../sink/sink.js';
import { withTimeout } from '../../util/deadline.js';

export const RECENT = 10;
export const REFRESH_MS = 1000;
export const WAIT_MS = 500;
/** Longer keys and messages are cut (the page shows a line each; the entry itself stays in Redis). */
const MAX_TEXT = 300;

export interface RecentDeadLetter {
  /** The dead-letter entry's ID. */
  id: string;
  /** `E_…`, or '' for an entry not written by streamshard. */
  code: string;
  message: string;
  /** The key field's value (UTF-8 text, or hex for other bytes), or null. */
  key: string | null;
  /** The input entry's ID. */
  sourceId: string | null;
  deliveries: number | null;
}

export interface RecentDeadLetters {
  /** Newest first; empty before the first read. */
  entries: RecentDeadLetter[];
  /** Date.now() when `entries` were read; null before the first read succeeded. */
  readAt: number | null;
  /** Why the latest read failed (the previous entries stay), or null. */
  error: string | null;
}

export class DeadLetterCache {
  private last: RecentDeadLetters = { entries: [], readAt: null, error: null };
  private reading: Promise<void> | null = null;
  private startedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly redis: Redis,
    private readonly stream: string,
    private readonly keyField: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** The newest dead letters: read again when the last read is older than REFRESH_MS. */
  async get(): Promise<RecentDeadLetters> {
    if (this.reading === null && this.now() - this.startedAt >= REFRESH_MS) {
      if (this.redis.status !== 'ready') {
        this.last = { ...this.last, error: `redis connection ${this.redis.status}` };
        return this.last; // never queue commands on a link that is down
      }
      this.startedAt = this.now();
      this.reading = this.read().finally(() => {
        this.reading = null;
      });
    }
    // A read that hangs (Redis slow or gone) costs each request what is left of WAIT_MS, then nothing.
    const left = WAIT_MS - (this.now() - this.startedAt);
    if (this.reading !== null && left > 0) await withTimeout(this.reading, left);
    return this.last;
  }

  private async read(): Promise<void> {
    try {
      const entries: RecentDeadLetter[] = [];
      for await (const e of entriesNewestFirst(this.redis, this.stream, { page: RECENT, limit: RECENT })) {
        const dl = parseDeadLetter(e, this.keyField);
        entries.push({
          id: dl.id,
          code: dl.code,
          message: cut(dl.message),
          key: dl.key === null ? null : cut(text(printable(dl.key))),
          sourceId: dl.sourceId,
          deliveries: dl.deliveries,
        });
      }
      this.last = { entries, readAt: this.now(), error: null };
    } catch (e) {
      this.last = { ...this.last, error: (e as Error).message };
    }
  }
}

function text(v: string | { hex: string }): string {
  return typeof v === 'string' ? v : `0x${v.hex}`;
}

function cut(s: string): string {
  return s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s;
}
