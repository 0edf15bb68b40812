/**
 * Ordering by version: per key, events are applied in version order. A version ahead of the next one
 * expected is **held** (its whole entry copied, as the batch format has it) until the missing versions
 * arrive, bounded by `maxBuffered` per key and by `timeout` of stream time; a version below the next
 * expected was applied (or given up) already and is dropped as a duplicate. A key never seen starts at the
 * first version it shows (there is no configured start: versions need not begin at 0 or 1).
 *
 * A gap is resolved when stream time reaches `heldSince + timeout` (checked each time stream time moves,
 * so batching does not change it), or when one more event would exceed `maxBuffered`:
 *   onGap: deadLetter → every held event is dead-lettered (E_VERSION_GAP); the key moves past them
 *   onGap: skip       → the key moves to its lowest held version, which is released with its successors
 * A key with nothing held is forgotten after `keyTtl` of stream time without an event.
 *
 *   keys   Map key → { next, heldSince, touched, held: Map version → entry bytes } + a list in touch order
 *   gaps   FIFO of (key, heldSince): stream time only grows, so it is also deadline order (stale
 *          entries — the gap resolved or restarted since — are skipped)
 *
 * Held events are in the checkpoint, so a crash neither loses nor reorders them: their batch acks them
 * when they are held, and the same commit writes them (`<ns>:ob:<kg>` HASH key → {@link encodeKey}).
 */
import type { OrderConfig } from '../../../config/schema.js';
import type { ByteString } from '../../../util/bytes.js';
import { compilePath, type Getter, parseDecimal } from '../decode.js';

interface KeyState {
  key: string;
  keyGroup: number;
  /** The next version to apply. */
  next: number;
  /** Stream time since which the lowest held version waits (meaningless when nothing is held). */
  heldSince: number;
  /** Stream time of the key's last event or gap resolution. */
  touched: number;
  held: Map<number, Uint8Array>;
  prev: KeyState | null;
  nextInList: KeyState | null;
}

/** What an offered event does. */
export const APPLY = 0;
export const HELD = 1;
export const STALE = 2;
export type Offer = typeof APPLY | typeof HELD | typeof STALE;

/**
 * What to do next, in order: process an entry (`gap` false; `entry` null = the offered event itself) or
 * dead-letter it as E_VERSION_GAP.
 */
export type Released = Array<{ entry: Uint8Array | null; gap: boolean; version: number }>;

export class OrderStage {
  private readonly getVersion: Getter;
  private readonly maxBuffered: number;
  private readonly timeout: number;
  private readonly keyTtl: number;
  private readonly skip: boolean;
  private readonly keys = new Map<string, KeyState>();
  private head: KeyState | null = null;
  private tail: KeyState | null = null;
  private readonly gaps: Array<{ s: KeyState; since: number }> = [];
  private gapHead = 0;
  /** Keys changed since the last drain. */
  private readonly dirty = new Map<string, number>();
  private heldCount = 0;

  constructor(cfg: OrderConfig) {
    this.getVersion = compilePath(cfg.versionPath);
    this.maxBuffered = cfg.maxBuffered;
    this.timeout = cfg.timeout;
    this.keyTtl = cfg.keyTtl;
    this.skip = cfg.onGap === 'skip';
  }

  /** Events held in all keys' buffers. */
  get held(): number {
    return this.heldCount;
  }

  /** The event's version: a safe integer (a number, or an integer in decimal notation), else null. */
  version(body: Record<string, unknown>): number | null {
    const v = this.getVersion(body);
    const n = typeof v === 'number' ? v : typeof v === 'string' ? parseDecimal(v) : Number.NaN;
    return Number.isSafeInteger(n) ? n : null;
  }

  /**
   * Stream time moved to `streamTime`: resolves every gap whose timeout has passed (into `out`) and
   * forgets keys idle for `keyTtl`.
   */
  advance(streamTime: number, out: Released): void {
    const gaps = this.gaps;
    const due: KeyState[] = [];
    while (this.gapHead < gaps.length) {
      const g = gaps[this.gapHead] as { s: KeyState; since: number };
      if (g.since + this.timeout > streamTime) break;
      this.gapHead++;
      if (g.s.held.size > 0 && g.s.heldSince === g.since && this.keys.get(g.s.key) === g.s) due.push(g.s);
    }
    // Resolved in (wait start, key) order, not queue order: a restored queue cannot know the order in
    // which gaps of equal start were queued, and released events of several keys must come out the same.
    if (due.length > 1)
      due.sort((a, b) => a.heldSince - b.heldSince || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const s of due) {
      // a key queued twice (its wait restarted at the same stream time) is resolved once
      if (s.held.size > 0 && s.heldSince + this.timeout <= streamTime) this.resolve(s, streamTime, out);
    }
    if (this.gapHead > 1024 && this.gapHead * 2 > gaps.length) {
      gaps.splice(0, this.gapHead);
      this.gapHead = 0;
    }
    for (let s = this.head; s !== null && s.touched + this.keyTtl <= streamTime; s = this.head) {
      if (s.held.size > 0) break; // cannot happen: its gap timed out first (keyTtl > timeout)
      this.unlink(s);
      this.keys.delete(s.key);
      this.dirty.set(s.key, s.keyGroup);
    }
  }

  /**
   * Offers the current event (key as latin1 text, `entry` its bytes in the batch). APPLY: the caller
   * processes it, then what `out` holds; HELD: copied into the buffer; STALE: a version already applied
   * or given up, or held already (a duplicate).
   */
  offer(
    key: string,
    keyGroup: number,
    version: number,
    entry: Uint8Array,
    streamTime: number,
    out: Released,
  ): Offer {
    let s = this.keys.get(key);
    if (s === undefined) {
      s = {
        key,
        keyGroup,
        next: version,
        heldSince: 0,
        touched: 0,
        held: new Map(),
        prev: null,
        nextInList: null,
      };
      this.keys.set(key, s);
    } else this.unlink(s);
    s.touched = streamTime;
    this.append(s);
    this.dirty.set(key, keyGroup);
    if (version < s.next || s.held.has(version)) return STALE;
    if (version === s.next) return this.apply(s, version, streamTime, out);
    if (s.held.size >= this.maxBuffered) {
      this.resolve(s, streamTime, out);
      if (version < s.next || s.held.has(version)) return STALE;
      if (version === s.next) return this.apply(s, version, streamTime, out);
    }
    this.hold(s, version, entry.slice(), streamTime);
    return HELD;
  }

  /** Checkpoint changes since the last call: HSET of changed keys' state, HDEL of forgotten keys. */
  drain(): {
    writes: Array<{ keyGroup: number; fields: ByteString[] }>;
    removals: Array<{ keyGroup: number; keys: ByteString[] }>;
  } {
    const writes = new Map<number, ByteString[]>();
    const removals = new Map<number, ByteString[]>();
    for (const [key, keyGroup] of this.dirty) {
      const s = this.keys.get(key);
      const name = Buffer.from(key, 'latin1');
      if (s === undefined) push(removals, keyGroup, name);
      else push(writes, keyGroup, name, encodeKey(s));
    }
    this.dirty.clear();
    return {
      writes: [...writes].map(([keyGroup, fields]) => ({ keyGroup, fields })),
      removals: [...removals].map(([keyGroup, keys]) => ({ keyGroup, keys })),
    };
  }

  /** Restores the stored keys (`[key, state, …]` per key group); writes nothing. */
  restore(stored: Array<{ keyGroup: number; fields: ByteString[] }>): void {
    const all: KeyState[] = [];
    for (const { keyGroup, fields } of stored) {
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const key = bytesOf(fields[i] as ByteString).toString('latin1');
        all.push(decodeKey(key, keyGroup, bytesOf(fields[i + 1] as ByteString)));
      }
    }
    all.sort((a, b) => a.touched - b.touched);
    for (const s of all) {
      this.keys.set(s.key, s);
      this.append(s);
      this.heldCount += s.held.size;
    }
    const waiting = all.filter((s) => s.held.size > 0).sort((a, b) => a.heldSince - b.heldSince);
    for (const s of waiting) this.gaps.push({ s, since: s.heldSince });
  }

  private apply(s: KeyState, version: number, streamTime: number, out: Released): Offer {
    out.push({ entry: null, gap: false, version });
    s.next++;
    this.releaseRun(s, streamTime, out);
    return APPLY;
  }

  private hold(s: KeyState, version: number, entry: Uint8Array, streamTime: number): void {
    if (s.held.size === 0) this.startGap(s, streamTime);
    s.held.set(version, entry);
    this.heldCount++;
  }

  private startGap(s: KeyState, streamTime: number): void {
    s.heldSince = streamTime;
    this.gaps.push({ s, since: streamTime });
  }

  /** Releases the held versions that follow on from `next`; restarts the wait if some remain held. */
  private releaseRun(s: KeyState, streamTime: number, out: Released): void {
    if (s.held.size === 0) return;
    const before = s.held.size;
    for (let e = s.held.get(s.next); e !== undefined; e = s.held.get(s.next)) {
      s.held.delete(s.next);
      this.heldCount--;
      out.push({ entry: e, gap: false, version: s.next });
      s.next++;
    }
    if (s.held.size > 0 && s.held.size < before) this.startGap(s, streamTime);
  }

  /** Gives up the key's gap as `onGap` says. */
  private resolve(s: KeyState, streamTime: number, out: Released): void {
    const versions = [...s.held.keys()].sort((a, b) => a - b);
    this.dirty.set(s.key, s.keyGroup);
    s.touched = streamTime;
    this.unlink(s);
    this.append(s);
    if (!this.skip) {
      for (const v of versions) out.push({ entry: s.held.get(v) as Uint8Array, gap: true, version: v });
      this.heldCount -= versions.length;
      s.held.clear();
      s.next = (versions[versions.length - 1] as number) + 1;
      return;
    }
    s.next = versions[0] as number;
    this.releaseRun(s, streamTime, out);
    if (s.held.size > 0 && s.heldSince !== streamTime) this.startGap(s, streamTime);
  }

  private append(s: KeyState): void {
    s.prev = this.tail;
    s.nextInList = null;
    if (this.tail === null) this.head = s;
    else this.tail.nextInList = s;
    this.tail = s;
  }

  private unlink(s: KeyState): void {
    if (s.prev === null) this.head = s.nextInList;
    else s.prev.nextInList = s.nextInList;
    if (s.nextInList === null) this.tail = s.prev;
    else s.nextInList.prev = s.prev;
    s.prev = null;
    s.nextInList = null;
  }
}

/**
 *   state := next:f64 heldSince:f64 touched:f64 count:u32 (version:f64 len:u32 entry){count}   (big-endian)
 * `entry` is the held event as the batch format has it (routing/batchCodec.ts), header included.
 */
export function encodeKey(s: KeyState): Uint8Array {
  let size = 28;
  for (const e of s.held.values()) size += 12 + e.length;
  const buf = new Uint8Array(size);
  const v = new DataView(buf.buffer);
  v.setFloat64(0, s.next);
  v.setFloat64(8, s.heldSince);
  v.setFloat64(16, s.touched);
  v.setUint32(24, s.held.size);
  let o = 28;
  for (const [version, e] of s.held) {
    v.setFloat64(o, version);
    v.setUint32(o + 8, e.length);
    buf.set(e, o + 12);
    o += 12 + e.length;
  }
  return buf;
}

function decodeKey(key: string, keyGroup: number, b: Buffer): KeyState {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const s: KeyState = {
    key,
    keyGroup,
    next: v.getFloat64(0),
    heldSince: v.getFloat64(8),
    touched: v.getFloat64(16),
    held: new Map(),
    prev: null,
    nextInList: null,
  };
  const count = v.getUint32(24);
  let o = 28;
  for (let i = 0; i < count; i++) {
    const version = v.getFloat64(o);
    const len = v.getUint32(o + 8);
    if (o + 12 + len > b.byteLength) throw new Error(`order checkpoint of a key is truncated`);
    s.held.set(version, Uint8Array.prototype.slice.call(b, o + 12, o + 12 + len));
    o += 12 + len;
  }
  return s;
}

function bytesOf(b: ByteString): Buffer {
  return typeof b === 'string' ? Buffer.from(b, 'utf8') : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function push(m: Map<number, ByteString[]>, keyGroup: number, ...items: ByteString[]): void {
  const list = m.get(keyGroup);
  if (list === undefined) m.set(keyGroup, items);
  else list.push(...items);
}
