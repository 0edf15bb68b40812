/**
 * Per-key state of the session and sliding stages, and its checkpoint. Unlike tumbling and hopping
 * windows, these have no window starts shared by every key, so their state is not bucketed by start: a
 * key's whole state (its sessions, or its held events and pending windows) is one field of one hash per
 * key group, `<ns>:w:<kg>:0` (start 0 stands for "all"), listed in the key group's window index like a
 * bucket. A drain writes the fields of keys changed since the last one, deletes those of keys left
 * without state, and opens or closes a key group's hash as its first key arrives or its last one goes.
 *
 *   map     latin1 of the key bytes → entry { key (text or bytes, as results carry it), keyGroup, value }
 *   dirty   entries changed since the last drain (each once)
 *   saved   per key group, how many of its keys have a field in the checkpoint
 *
 * One `Map` entry and a key string per key: ~100 bytes more per key than the columnar buckets (see
 * buckets.ts), accepted because keys come and go here at every session close — the bucket key index only
 * grows until its bucket closes whole.
 */
import { isUtf8 } from 'node:buffer';
import { latin1 } from '../../../routing/batchCodec.js';
import type { ByteString } from '../../../util/bytes.js';
import type { WindowDrain } from './checkpoint.js';

/** The `start` under which a key group's per-key state is checkpointed. */
export const KEYED_START = 0;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export interface KeyEntry<V> {
  /** The map key: the key's bytes as latin1, one char per byte. */
  readonly id: string;
  /** The key as results and the checkpoint carry it: text when valid UTF-8, else its exact bytes. */
  readonly key: ByteString;
  readonly keyGroup: number;
  readonly value: V;
  dirty: boolean;
  /** Whether the key has a field in the checkpoint. */
  saved: boolean;
}

/** How a stage's per-key value is checkpointed. */
export interface KeyedCodec<V> {
  /** A value with no state: the key is forgotten at the next drain. */
  isEmpty(v: V): boolean;
  encode(v: V): string;
  /** Parses `encode`'s text, or throws naming what does not match. */
  decode(text: string): V;
}

export class KeyedState<V> {
  private readonly map = new Map<string, KeyEntry<V>>();
  private dirty: Array<KeyEntry<V>> = [];
  /** Key group → keys with a field (0 or absent: the group's hash is not open). */
  private readonly saved = new Map<number, number>();

  constructor(private readonly codec: KeyedCodec<V>) {}

  /** Keys held (with state, or emptied since the last drain). */
  get size(): number {
    return this.map.size;
  }

  /** The entry of the key `bytes[start, end)`, or null. */
  find(bytes: Uint8Array, start: number, end: number): KeyEntry<V> | null {
    return this.map.get(latin1(bytes, start, end)) ?? null;
  }

  /** The entry of the key `bytes[start, end)`, created holding `make()` when missing. */
  get(bytes: Uint8Array, start: number, end: number, keyGroup: number, make: () => V): KeyEntry<V> {
    const id = latin1(bytes, start, end);
    let e = this.map.get(id);
    if (e === undefined) {
      const b = bytes.subarray(start, end);
      const key = isUtf8(b) ? utf8.decode(b) : b.slice();
      e = { id, key, keyGroup, value: make(), dirty: false, saved: false };
      this.map.set(id, e);
    }
    return e;
  }

  /** Lists a changed entry for the next drain, once. */
  touch(e: KeyEntry<V>): void {
    if (e.dirty) return;
    e.dirty = true;
    this.dirty.push(e);
  }

  /**
   * The checkpoint changes since the last drain; entries left empty are forgotten. Computed from the
   * state now, not from a log of what happened, so a key group emptied and refilled between two drains
   * is written, never closed (the commit applies writes before closes).
   */
  drain(): WindowDrain {
    const writes = new Map<number, ByteString[]>();
    const removed = new Map<number, ByteString[]>();
    const before = new Map<number, number>();
    for (const e of this.dirty) {
      e.dirty = false;
      const g = e.keyGroup;
      if (!before.has(g)) before.set(g, this.saved.get(g) ?? 0);
      if (!this.codec.isEmpty(e.value)) {
        listOf(writes, g).push(e.key, this.codec.encode(e.value));
        if (!e.saved) this.count(g, 1);
        e.saved = true;
        continue;
      }
      if (e.saved) {
        listOf(removed, g).push(e.key);
        this.count(g, -1);
      }
      e.saved = false;
      this.map.delete(e.id);
    }
    this.dirty = [];
    const drain: WindowDrain = { writes: [], opened: [], closed: [], removed: [] };
    for (const [keyGroup, was] of before) {
      const now = this.saved.get(keyGroup) ?? 0;
      const at = { keyGroup, start: KEYED_START };
      if (was === 0 && now > 0) drain.opened.push(at);
      else if (was > 0 && now === 0) drain.closed.push(at); // the DEL takes the removed fields with it
      const fields = writes.get(keyGroup);
      if (fields !== undefined) drain.writes.push({ ...at, fields });
      const keys = removed.get(keyGroup);
      if (keys !== undefined && now > 0) drain.removed.push({ ...at, keys });
    }
    return drain;
  }

  /**
   * Restores a key group's checkpointed hash, `[key, text, …]` (exact bytes as read back); calls `added`
   * with each entry.
   */
  restore(
    keyGroup: number,
    start: number,
    fields: readonly ByteString[],
    added: (e: KeyEntry<V>) => void,
  ): void {
    if (start !== KEYED_START) {
      throw new Error(
        `checkpoint holds window ${start} of key group ${keyGroup}, not the per-key state of a session or ` +
          'sliding window; the window stage changed since it was written',
      );
    }
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const k = fields[i] as ByteString;
      const bytes = typeof k === 'string' ? new TextEncoder().encode(k) : k;
      const t = fields[i + 1] as ByteString;
      const text = typeof t === 'string' ? t : latin1(t, 0, t.length);
      let value: V;
      try {
        value = this.codec.decode(text);
      } catch (err) {
        throw new Error(
          `checkpoint of key group ${keyGroup} does not match the configured window (${(err as Error).message}); ` +
            'the window stage changed since it was written',
          { cause: err },
        );
      }
      const e = this.get(bytes, 0, bytes.length, keyGroup, () => value);
      if (!e.saved) this.count(keyGroup, 1);
      e.saved = true;
      added(e);
    }
  }

  private count(keyGroup: number, by: number): void {
    this.saved.set(keyGroup, (this.saved.get(keyGroup) ?? 0) + by);
  }
}

function listOf(m: Map<number, ByteString[]>, g: number): ByteString[] {
  let l = m.get(g);
  if (l === undefined) {
    l = [];
    m.set(g, l);
  }
  return l;
}
