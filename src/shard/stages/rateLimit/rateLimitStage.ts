/**
 * Rate limit: a token bucket per key (or one per shard) measured in **event time**, so that a replay after
 * a crash — the same events in the same order from the same checkpoint — makes the same decisions.
 *
 * Per event of time `ts`: a bucket refills `rate` tokens per unit of event time since the latest event time
 * it has seen (`last`; an out-of-order event refills nothing), up to `burst`; the event passes and takes a
 * token when there is one, else it is excess. A key never seen (or forgotten) starts with a full bucket.
 *
 * Bound: a bucket untouched for a full refill (`burst / rate`) of stream time is full again for any event
 * at or after its `last`, so it is forgotten — exactly when stream time reaches `touched + burst / rate`,
 * checked per event before the decision, so that forgetting does not depend on batch boundaries. The live
 * buckets are thus the keys that passed an event within the last full-refill period. They form a list in
 * touch order (stream time only grows, so that is also forgetting order):
 *
 *   head → [key, tokens, last, touched] ⇄ [ … ] ⇄ … ⇄ tail      plus  Map key → bucket
 *
 * Checkpoint: per key `<ns>:rl:<kg>` HASH key → "tokens,last,touched", written for the buckets a batch
 * changed and deleted for the ones it forgot; per shard `<ns>:rls` HASH kg → "tokens,last" for each of the
 * shard's key groups (as stream time is: a later regrouping keeps the most recent).
 */
import type { RateLimitConfig } from '../../../config/schema.js';
import type { ByteString } from '../../../util/bytes.js';

interface Bucket {
  key: string;
  keyGroup: number;
  tokens: number;
  /** Latest event time seen by the bucket. */
  last: number;
  /** Stream time of its last pass. */
  touched: number;
  prev: Bucket | null;
  next: Bucket | null;
}

/** Checkpoint changes of a rate-limit stage since the last drain. */
export interface RateLimitDelta {
  /** HSET per key group: `[key, "tokens,last,touched", …]` (key as its exact bytes). */
  writes: Array<{ keyGroup: number; fields: ByteString[] }>;
  /** HDEL per key group: forgotten keys. */
  removals: Array<{ keyGroup: number; keys: ByteString[] }>;
  /** `per: shard`: the shard bucket as "tokens,last" when it changed, else null. */
  shard: string | null;
}

/** A rate-limit stage's stored state. */
export interface RateLimitState {
  /** `per: key`: each key group's hash as `[key, value, …]`. */
  buckets: Array<{ keyGroup: number; fields: ByteString[] }>;
  /** `per: shard`: the stored "tokens,last" of each key group of the shard. */
  shard: string[];
}

export class RateLimitStage {
  private readonly perKey: boolean;
  private readonly burst: number;
  /** Tokens per ms of event time. */
  private readonly perMs: number;
  /** Stream time after which an untouched bucket is full again: burst / rate. */
  private readonly fullAfter: number;
  private readonly buckets = new Map<string, Bucket>();
  private head: Bucket | null = null;
  private tail: Bucket | null = null;
  /** Keys changed or forgotten since the last drain, with their key groups. */
  private readonly dirty = new Map<string, number>();
  private shardChanged = false;
  private pending: Bucket | null = null;
  private pendingTokens = 0;
  private pendingLast = 0;

  constructor(cfg: RateLimitConfig) {
    this.perKey = cfg.per === 'key';
    this.burst = cfg.burst;
    this.perMs = cfg.rate.events / cfg.rate.perMs;
    this.fullAfter = cfg.burst / this.perMs;
  }

  /** Live buckets (for metrics and the memory bench). */
  get size(): number {
    return this.buckets.size;
  }

  /**
   * True when the event (key as latin1 text, exact bytes) may pass at `ts`. Takes no token until
   * {@link take} (a later step may still throw and the event be retried); forgets the buckets full at
   * `streamTime` first, which a retry would do alike.
   */
  admits(key: string, keyGroup: number, ts: number, streamTime: number): boolean {
    this.forgetUpTo(streamTime);
    const k = this.perKey ? key : '';
    let b = this.buckets.get(k);
    if (b === undefined) {
      b = { key: k, keyGroup, tokens: this.burst, last: ts, touched: streamTime, prev: null, next: null };
    }
    let tokens = b.tokens;
    let last = b.last;
    if (ts > last) {
      tokens = Math.min(this.burst, tokens + (ts - last) * this.perMs);
      last = ts;
    }
    if (tokens < 1) return false;
    this.pending = b;
    this.pendingTokens = tokens - 1;
    this.pendingLast = last;
    return true;
  }

  /** Takes the token {@link admits} granted last. */
  take(streamTime: number): void {
    const b = this.pending as Bucket;
    this.pending = null;
    b.tokens = this.pendingTokens;
    b.last = this.pendingLast;
    b.touched = streamTime;
    if (!this.perKey) {
      this.buckets.set('', b);
      this.shardChanged = true;
      return;
    }
    if (this.buckets.get(b.key) === b) this.unlink(b);
    else this.buckets.set(b.key, b);
    this.append(b);
    this.dirty.set(b.key, b.keyGroup);
  }

  /** Restores the stored buckets (see {@link RateLimitState}); writes nothing. */
  restore(state: RateLimitState, streamTime: number): void {
    if (!this.perKey) {
      let best: Bucket | null = null;
      for (const v of state.shard) {
        const [tokens, last] = v.split(',').map(Number) as [number, number];
        if (best === null || last > best.last) {
          best = { key: '', keyGroup: 0, tokens, last, touched: 0, prev: null, next: null };
        }
      }
      if (best !== null) this.buckets.set('', best);
      return;
    }
    const restored: Bucket[] = [];
    const latin1 = (b: ByteString) =>
      (typeof b === 'string' ? Buffer.from(b, 'utf8') : Buffer.from(b)).toString('latin1');
    for (const { keyGroup, fields } of state.buckets) {
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const [tokens, last, touched] = latin1(fields[i + 1] as ByteString)
          .split(',')
          .map(Number) as [number, number, number];
        restored.push({
          key: latin1(fields[i] as ByteString),
          keyGroup,
          tokens,
          last,
          touched,
          prev: null,
          next: null,
        });
      }
    }
    restored.sort((a, b) => a.touched - b.touched);
    for (const b of restored) {
      this.buckets.set(b.key, b);
      this.append(b);
    }
    this.forgetUpTo(streamTime);
  }

  /** Forgets the buckets full again at `streamTime`, and returns the checkpoint changes since the last call. */
  drain(streamTime: number): RateLimitDelta {
    this.forgetUpTo(streamTime);
    const delta: RateLimitDelta = { writes: [], removals: [], shard: null };
    if (this.shardChanged) {
      const b = this.buckets.get('') as Bucket;
      delta.shard = `${b.tokens},${b.last}`;
      this.shardChanged = false;
    }
    if (this.dirty.size === 0) return delta;
    const writes = new Map<number, ByteString[]>();
    const removals = new Map<number, ByteString[]>();
    for (const [key, keyGroup] of this.dirty) {
      const b = this.buckets.get(key);
      const bytes = Buffer.from(key, 'latin1');
      if (b === undefined) push(removals, keyGroup, bytes);
      else push(writes, keyGroup, bytes, `${b.tokens},${b.last},${b.touched}`);
    }
    this.dirty.clear();
    for (const [keyGroup, fields] of writes) delta.writes.push({ keyGroup, fields });
    for (const [keyGroup, keys] of removals) delta.removals.push({ keyGroup, keys });
    return delta;
  }

  private forgetUpTo(streamTime: number): void {
    for (let b = this.head; b !== null && b.touched + this.fullAfter <= streamTime; b = this.head) {
      this.unlink(b);
      this.buckets.delete(b.key);
      this.dirty.set(b.key, b.keyGroup);
    }
  }

  private append(b: Bucket): void {
    b.prev = this.tail;
    b.next = null;
    if (this.tail === null) this.head = b;
    else this.tail.next = b;
    this.tail = b;
  }

  private unlink(b: Bucket): void {
    if (b.prev === null) this.head = b.next;
    else b.prev.next = b.next;
    if (b.next === null) this.tail = b.prev;
    else b.next.prev = b.prev;
    b.prev = null;
    b.next = null;
  }
}

function push(m: Map<number, ByteString[]>, keyGroup: number, ...items: ByteString[]): void {
  const list = m.get(keyGroup);
  if (list === undefined) m.set(keyGroup, items);
  else list.push(...items);
}
