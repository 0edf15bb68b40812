/**
 * The shard's stages without threads or Redis: decode failures, filter, dedup, windows, idle close, and
 * the checkpoint delta — a shard restored from the deltas it emitted continues exactly as if never stopped.
 */
import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { type PipelineConfig, parseConfig } from '../src/config/load.js';
import { BatchReader, NO_KEY } from '../src/routing/batchCodec.js';
import { fnv1a, keyGroupOfKey, keyGroupsOfShard, shardOfKey } from '../src/routing/hash.js';
import type { BatchResult, RestoredState } from '../src/shard/protocol.js';
import { Shard } from '../src/shard/shard.js';
import type { DedupDelta } from '../src/shard/stages/dedup/checkpoint.js';
import { readChunk } from '../src/shard/stages/dedup/chunk.js';
import { DedupStage } from '../src/shard/stages/dedup/dedupStage.js';
import type { ByteString } from '../src/util/bytes.js';
import { packBatch, type RawEntry } from './helpers/batches.js';
import { admit } from './helpers/stages.js';

const KEY_GROUPS = 16;
/** The wall clock at dispatch for every batch here: far after every event time these tests use. */
const WALL = 1_700_000_000_000;
const ALL_GROUPS = Array.from({ length: KEY_GROUPS }, (_, i) => i);

function config(stages: string, extra = ''): PipelineConfig {
  return parseConfig(
    `source: { stream: in }\nsink: { stream: out }\ndeadLetter: { stream: dlq }\nkeyGroups: ${KEY_GROUPS}\nshards: 1\n${extra}stages:\n${stages}`,
    't',
    { env: {} },
  );
}

function entry(key: string | null, body: unknown, id: string): RawEntry {
  const fields: Buffer[] = [];
  if (key !== null) fields.push(Buffer.from('key'), Buffer.from(key));
  fields.push(Buffer.from('data'), Buffer.from(body instanceof Buffer ? body : encode(body)));
  return { id: Buffer.from(id), fields };
}

let seq = 0;
function batch(events: Array<{ key: string | null; body: unknown }>): {
  buf: ArrayBuffer;
  entries: RawEntry[];
} {
  const entries = events.map((e) => entry(e.key, e.body, `1-${seq++}`));
  const kgs = Uint16Array.from(entries.map((_, i) => keyGroupOfKey(events[i]?.key ?? '', KEY_GROUPS)));
  const kfs = events.map((e) => (e.key === null ? NO_KEY : 1));
  return { buf: packBatch(entries, kgs, kfs), entries };
}

const ev = (key: string, ts: number, amount: number, id = `${key}-${ts}-${amount}`) => ({
  key,
  body: { id, ts, amount, type: amount < 0 ? 'refund' : 'order' },
});

function asObjects(results: ByteString[][]): Array<Record<string, string>> {
  return results.map((r) => {
    const o: Record<string, string> = {};
    for (let i = 0; i < r.length; i += 2) o[r[i] as string] = r[i + 1] as string;
    return o;
  });
}

const TUMBLING = `  - window: { size: 10s, grace: 2s, idleClose: 0, aggregates: [{ fn: sum, field: amount }, { fn: min, field: amount }, { fn: max, field: amount }, { fn: avg, field: amount }] }\n`;

describe('routing', () => {
  it('hashes with FNV-1a (stable: part of the checkpoint layout)', () => {
    expect(fnv1a(Buffer.from(''))).toBe(0x811c9dc5);
    expect(fnv1a(Buffer.from('a'))).toBe(0xe40c292c);
    expect(fnv1a(Buffer.from('foobar'))).toBe(0xbf9cf968);
  });

  it('gives every key group to exactly one shard, in contiguous ranges', () => {
    const owned = [0, 1, 2].flatMap((s) => keyGroupsOfShard(s, 256, 3));
    expect(owned).toEqual(Array.from({ length: 256 }, (_, i) => i));
    expect(shardOfKey('k1', 256, 1)).toBe(0);
  });

  it('round-trips a packed batch', () => {
    const { buf, entries } = batch([ev('a', 1, 2), { key: null, body: { x: 1 } }]);
    const r = new BatchReader(buf);
    const seen: string[][] = [];
    while (r.next())
      seen.push([r.id(), String(r.keyField), ...r.fields().map((f) => Buffer.from(f).toString('latin1'))]);
    expect(seen).toEqual(
      entries.map((e, i) => [
        e.id.toString(),
        String(i === 0 ? 1 : NO_KEY),
        ...e.fields.map((f) => f.toString('latin1')),
      ]),
    );
  });
});

describe('decode and validate', () => {
  it('dead-letters each malformed kind with its code and keeps going', () => {
    const shard = new Shard(config(`  - dedup: {}\n${TUMBLING}`));
    const { buf } = batch([
      { key: null, body: { id: 'a', ts: 1, amount: 1 } },
      { key: '', body: { id: 'a', ts: 1, amount: 1 } },
      { key: 'k', body: Buffer.from([0xc1]) },
      { key: 'k', body: [1, 2] },
      { key: 'k', body: { id: 'b', amount: 1 } },
      { key: 'k', body: { id: 'c', ts: 'yesterday', amount: 1 } },
      { key: 'k', body: { ts: 5, amount: 1 } },
      { key: 'k', body: { id: 'd', ts: 5, amount: 'abc' } },
      { key: 'k', body: { id: 'e', ts: '1970-01-01T00:00:00.007Z', amount: '2.5' } },
    ]);
    const out = shard.processBatch(buf, WALL);
    expect(out.deadLetters.map((d) => [d.index, d.error.split(':')[0]])).toEqual([
      [0, 'E_MISSING_KEY'],
      [1, 'E_MISSING_KEY'],
      [2, 'E_BAD_BODY'],
      [3, 'E_BAD_BODY'],
      [4, 'E_MISSING_TIME'],
      [5, 'E_BAD_TIME'],
      [6, 'E_MISSING_ID'],
      [7, 'E_BAD_FIELD'],
    ]);
    expect(out.counts).toMatchObject({ processed: 9, late: 0 });
    expect(out.state.streamTime).toBe(7); // only the valid event moved stream time
  });
});

describe('body field', () => {
  it('finds a body field whose name is not ASCII', () => {
    const shard = new Shard(config('  - dedup: {}\n', 'body: { field: données }\n'));
    const e = entry('k', { id: 'x', ts: 5, amount: 1 }, '1-1');
    e.fields[2] = Buffer.from('données');
    const buf = packBatch([e], [0], [1]);
    const out = shard.processBatch(buf, WALL);
    expect(out.deadLetters).toEqual([]);
    expect(out.passThrough).toEqual([0]);
  });
});

describe('filter', () => {
  it('applies the conditions in config order, numeric strings compare as numbers', () => {
    const shard = new Shard(
      config(
        '  - filter: { where: [{ field: type, op: eq, value: order }, { field: amount, op: gte, value: 10 }, { field: note, op: exists, value: false }] }\n',
      ),
    );
    const { buf } = batch([
      ev('a', 1, 5),
      ev('a', 2, 10),
      ev('a', 3, -20),
      { key: 'a', body: { id: 'x', ts: 4, amount: '100', type: 'order' } },
      { key: 'a', body: { id: 'y', ts: 5, amount: 100, type: 'order', note: 'n' } },
    ]);
    const out = shard.processBatch(buf, WALL);
    expect(out.passThrough).toEqual([1, 3]);
    expect(out.counts.filtered).toBe(3);
  });
});

describe('windows', () => {
  it('emits a tumbling window once stream time passes end + grace, with every aggregate', () => {
    const shard = new Shard(config(TUMBLING));
    let out = shard.processBatch(
      batch([ev('a', 1000, 5), ev('a', 9999, 7), ev('b', 5000, 1), ev('a', 11_000, 3)]).buf,
      WALL,
    );
    expect(out.results).toEqual([]);
    out = shard.processBatch(batch([ev('c', 11_999, 1)]).buf, WALL); // end 10000 + grace 2000 > 11999
    expect(out.results).toEqual([]);
    out = shard.processBatch(batch([ev('c', 12_000, 1)]).buf, WALL);
    expect(asObjects(out.results)).toEqual([
      {
        key: 'a',
        window_start: '0',
        window_end: '10000',
        count: '2',
        sum_amount: '12',
        min_amount: '5',
        max_amount: '7',
        avg_amount: '6',
      },
      {
        key: 'b',
        window_start: '0',
        window_end: '10000',
        count: '1',
        sum_amount: '1',
        min_amount: '1',
        max_amount: '1',
        avg_amount: '1',
      },
    ]);
    expect(out.counts.windowsEmitted).toBe(2);
  });

  it('dead-letters an event whose windows all closed as late, and accepts one within grace', () => {
    const shard = new Shard(config(TUMBLING));
    const out = shard.processBatch(
      batch([ev('a', 12_500, 1), ev('a', 9000, 2), ev('a', 10_400, 4)]).buf,
      WALL,
    );
    // stream time 12500 ≥ 10000 + 2000: [0,10000) closed, so 9000 is late; 10400 is in the open [10000,20000)
    expect(out.deadLetters.map((d) => d.error.split(':')[0])).toEqual(['E_LATE']);
    expect(out.counts.late).toBe(1);
  });

  it('puts an event in every hopping window containing it, late only when all have closed', () => {
    const shard = new Shard(
      config(
        '  - window: { type: hopping, size: 10s, advance: 5s, grace: 0, idleClose: 0, aggregates: [{ fn: count }] }\n',
      ),
    );
    let out = shard.processBatch(batch([ev('a', 7000, 1), ev('a', 12_000, 1)]).buf, WALL);
    // 7000 ∈ [0,10000) and [5000,15000); at stream time 12000 the first one closed
    expect(asObjects(out.results)).toEqual([
      { key: 'a', window_start: '0', window_end: '10000', count: '1' },
    ]);
    out = shard.processBatch(batch([ev('a', 6000, 1), ev('a', 4000, 1), ev('a', 100_000, 1)]).buf, WALL);
    expect(out.deadLetters.map((d) => d.index)).toEqual([1]); // 4000 only in closed windows; 6000 still in [5000,15000)
    expect(asObjects(out.results)).toEqual([
      { key: 'a', window_start: '5000', window_end: '15000', count: '3' },
      { key: 'a', window_start: '10000', window_end: '20000', count: '1' },
    ]);
  });

  it('closes windows of a quiet shard after idleClose, stream time following the wall clock', () => {
    const shard = new Shard(config('  - window: { size: 10s, grace: 1s, idleClose: 5s }\n'));
    shard.processBatch(batch([ev('a', 1000, 1)]).buf, WALL);
    expect(shard.tick(104_999, 100_000).results).toEqual([]); // not quiet long enough
    expect(shard.tick(105_000, 100_000).results).toEqual([]); // quiet: stream time 1000 + 5000 < 11000
    expect(asObjects(shard.tick(110_000, 100_000).results)).toEqual([
      { key: 'a', window_start: '0', window_end: '10000', count: '1' },
    ]);
  });
});

describe('event time from the future', () => {
  const WINDOW =
    '  - window: { size: 10s, grace: 0, idleClose: 0, aggregates: [{ fn: sum, field: amount }] }\n';
  const YEAR_2100 = Date.UTC(2100, 0, 1);
  /** WALL as local time at UTC-12: the right digits with a wrong offset, 12 hours ahead. */
  const WRONG_OFFSET = new Date(WALL).toISOString().replace('Z', '-12:00');
  const NOW = WALL - 5000; // the normal events: a little before the wall clock
  const mixed = () =>
    batch([
      ev('a', NOW, 1, 'i1'),
      ev('a', YEAR_2100, 2, 'i2'),
      { key: 'a', body: { id: 'i3', ts: 1e308, amount: 4 } },
      { key: 'b', body: { id: 'i4', ts: WRONG_OFFSET, amount: 8 } },
      ev('b', NOW - 1, 32, 'i2'), // the ID of the future event: not a duplicate, it was never admitted
      { key: 'b', body: { id: 'i6', ts: '+275760-09-13T00:00:00.001Z', amount: 64 } }, // past Date's range
    ]);

  it('dead-letters it as E_FUTURE_TIME without moving stream time or dedup; 1e308 is E_BAD_TIME', () => {
    const shard = new Shard(config(`  - dedup: {}\n${WINDOW}`));
    const out = shard.processBatch(mixed().buf, WALL);
    expect(out.deadLetters.map((d) => [d.index, d.error.split(':')[0]])).toEqual([
      [1, 'E_FUTURE_TIME'],
      [2, 'E_BAD_TIME'],
      [3, 'E_FUTURE_TIME'],
      [5, 'E_BAD_TIME'],
    ]);
    expect(out.deadLetters[0]?.error).toBe(
      `E_FUTURE_TIME: event time ${YEAR_2100} (2100-01-01T00:00:00.000Z) is ${YEAR_2100 - WALL} ms ahead of ` +
        `the wall clock ${WALL} (${new Date(WALL).toISOString()}), more than body.maxFutureSkew (60000 ms): ` +
        "fix the producer's clock or the time's offset, or raise body.maxFutureSkew",
    );
    expect(out.deadLetters[1]?.error).toMatch(
      /^E_BAD_TIME: event time 1e\+308 is outside the range of dates/,
    );
    expect(out.counts.deadLettered).toEqual({ E_FUTURE_TIME: 2, E_BAD_TIME: 2 });
    expect(out.passThrough).toEqual([]);
    expect(out.state.streamTime).toBe(NOW); // the largest accepted time, not 2100
    // later events of the open windows are not late, and the remembered IDs are only the admitted ones
    const later = shard.processBatch(
      batch([ev('a', NOW + 1, 128, 'i7'), ev('b', NOW, 256, 'i2'), ev('a', WALL + 60_000, 16, 'i5')]).buf,
      WALL,
    );
    expect(later.deadLetters).toEqual([]); // WALL + maxFutureSkew exactly: accepted
    expect(later.state.streamTime).toBe(WALL + 60_000);
    expect(later.counts.deduplicated).toBe(1); // i2 was admitted once, by the event of b at NOW - 1
    expect(shard.dedupIds).toBe(4); // i1, i2, i7, i5
  });

  it('with maxFutureSkew 0 lets it move stream time, as before (out-of-range times stay E_BAD_TIME)', () => {
    const shard = new Shard(config(WINDOW, 'body: { maxFutureSkew: 0 }\n'));
    const out = shard.processBatch(mixed().buf, WALL);
    expect(out.deadLetters.map((d) => [d.index, d.error.split(':')[0]])).toEqual([
      [2, 'E_BAD_TIME'],
      [3, 'E_LATE'], // 12 hours ahead, but stream time is already in 2100
      [4, 'E_LATE'],
      [5, 'E_BAD_TIME'],
    ]);
    expect(out.state.streamTime).toBe(YEAR_2100);
  });

  it('restores IDs stamped with a capped stream time as stamped at the cap, so that they expire', () => {
    const model = new CheckpointModel();
    const poisoned = new Shard(config('  - dedup: { ttl: 10s }\n', 'body: { maxFutureSkew: 0 }\n'));
    model.apply(poisoned.processBatch(batch([ev('a', YEAR_2100, 1, 'x')]).buf, WALL), ALL_GROUPS);
    const cfg = config('  - dedup: { ttl: 10s }\n', 'body: { maxFutureSkew: 1s }\n');
    const shard = new Shard(cfg, { state: model.restored(), now: WALL });
    expect(shard.processBatch(batch([ev('a', WALL, 1, 'x')]).buf, WALL).counts.deduplicated).toBe(1);
    // 10 s of stream time after the cap (WALL + 1 s) the ID is forgotten, as any other would be
    const later = shard.processBatch(batch([ev('a', WALL + 11_000, 1, 'x')]).buf, WALL + 11_000);
    expect(later.passThrough).toEqual([0]);
  });

  it('caps a restored stream time from the future to now + maxFutureSkew, and commits the cap', () => {
    // (with a skew of a minute and 10 s windows, the events of the first 50 s after the restart would
    // still be late: the cap bounds the damage of an old checkpoint, it cannot know the right stream time)
    const cfg = config(WINDOW.replace('grace: 0', 'grace: 2s'), 'body: { maxFutureSkew: 1s }\n');
    const state: RestoredState = { windows: [], dedupLogs: [], streamTime: YEAR_2100 };
    const shard = new Shard(cfg, { state, now: WALL });
    expect(shard.streamTimeCapped).toEqual({ stored: YEAR_2100, capped: WALL + 1000 });
    const out = shard.processBatch(batch([ev('a', NOW, 1)]).buf, WALL);
    expect(out.deadLetters).toEqual([]); // not late
    expect(out.state.streamTime).toBe(WALL + 1000); // written over the stored 2100
    const fine = new Shard(cfg, { state: { ...state, streamTime: WALL + 1000 }, now: WALL });
    expect(fine.streamTimeCapped).toBeNull();
    const off = new Shard(config(WINDOW, 'body: { maxFutureSkew: 0 }\n'), { state, now: WALL });
    expect(off.streamTimeCapped).toBeNull();
    expect(off.processBatch(batch([ev('a', NOW, 1)]).buf, WALL).counts.late).toBe(1);
  });
});

describe('dedup', () => {
  it('drops an ID seen within the TTL (stream time) and admits it again after', () => {
    const shard = new Shard(config('  - dedup: { ttl: 10s }\n'));
    const out = shard.processBatch(
      batch([
        ev('a', 0, 1, 'x'),
        ev('a', 9999, 1, 'x'),
        ev('b', 10_000, 1, 'y'),
        ev('a', 10_000, 1, 'x'),
        ev('a', 10_001, 1, 'x'),
      ]).buf,
      WALL,
    );
    // x seen at 0; at 9999 duplicate; at 10000 (stream time − seenAt = ttl) admitted again and re-stamped
    expect(out.passThrough).toEqual([0, 2, 3]);
    expect(out.counts.deduplicated).toBe(2);
  });

  it('forgets the oldest IDs beyond maxEntries', () => {
    const shard = new Shard(config('  - dedup: { ttl: 1h, maxEntries: 2 }\n'));
    const out = shard.processBatch(
      batch([
        ev('a', 1, 1, 'p'),
        ev('a', 2, 1, 'q'),
        ev('a', 3, 1, 'r'),
        ev('a', 4, 1, 'p'),
        ev('a', 5, 1, 'r'),
      ]).buf,
      WALL,
    );
    expect(out.passThrough).toEqual([0, 1, 2, 3]); // p evicted by r, so p passes again; r is remembered
  });

  it('keeps in its checkpoint log only the chunks that still hold a remembered ID', () => {
    const logs = new Map<number, Uint8Array[]>();
    const apply = (delta: DedupDelta) => {
      for (const t of delta.trims) (logs.get(t.keyGroup) ?? []).splice(0, t.count);
      for (const a of delta.appends) logs.set(a.keyGroup, [...(logs.get(a.keyGroup) ?? []), a.chunk]);
    };
    const ids = (kg: number) => (logs.get(kg) ?? []).flatMap((c) => readChunk(c).map((e) => e.id));
    const d = new DedupStage({ ttl: 100, maxEntries: 3 });
    admit(d, 'a', 1, 0);
    admit(d, 'b', 1, 0);
    admit(d, 'c', 2, 10);
    apply(d.drain(10));
    admit(d, 'd', 1, 50);
    apply(d.drain(50));
    expect([ids(1), ids(2)]).toEqual([['a', 'b', 'd'], ['c']]);
    expect(logs.get(1)?.length).toBe(2);
    admit(d, 'e', 3, 100); // a and b expire (100 − 0 ≥ ttl): their chunk goes; c (seen at 10) stays
    apply(d.drain(100));
    expect([ids(1), ids(2), ids(3)]).toEqual([['d'], ['c'], ['e']]);
    admit(d, 'f', 3, 101);
    admit(d, 'g', 3, 102); // maxEntries 3: c and d are forgotten, so their chunks go too
    apply(d.drain(102));
    expect([ids(1), ids(2), ids(3)]).toEqual([[], [], ['e', 'f', 'g']]);

    // a stage restored from the log decides like the one that wrote it
    const restored = new DedupStage({ ttl: 100, maxEntries: 3 });
    restored.restore(
      [...logs].map(([keyGroup, chunks]) => ({ keyGroup, chunks })),
      102,
    );
    expect(restored.size).toBe(3);
    for (const [id, t] of [
      ['g', 150],
      ['c', 150],
      ['e', 199],
      ['e', 200],
    ] as const)
      expect([id, t, restored.isDuplicate(id, t)]).toEqual([id, t, d.isDuplicate(id, t)]);
  });
});

/** Applies checkpoint deltas the way the commit does, to a plain in-memory model of the Redis keys. */
class CheckpointModel {
  windows = new Map<string, Map<string, string>>(); // `${kg}:${start}` → key → agg
  dedup = new Map<number, Uint8Array[]>(); // kg → log chunks (a Redis list)
  streamTime = new Map<number, number>();

  apply(out: BatchResult, keyGroups: number[]): void {
    const s = out.state;
    for (const w of s.windowWrites) {
      const h = this.windows.get(`${w.keyGroup}:${w.start}`) ?? new Map<string, string>();
      for (let i = 0; i < w.fields.length; i += 2) h.set(w.fields[i] as string, w.fields[i + 1] as string);
      this.windows.set(`${w.keyGroup}:${w.start}`, h);
    }
    for (const r of s.windowRemovals)
      for (const key of r.keys) this.windows.get(`${r.keyGroup}:${r.start}`)?.delete(key as string);
    for (const c of s.windowsClosed) this.windows.delete(`${c.keyGroup}:${c.start}`);
    for (const t of s.dedup.trims) {
      const log = this.dedup.get(t.keyGroup) ?? [];
      expect(log.length).toBeGreaterThanOrEqual(t.count); // LPOP never asks for more than there is
      log.splice(0, t.count);
    }
    for (const a of s.dedup.appends) {
      const log = this.dedup.get(a.keyGroup) ?? [];
      log.push(a.chunk.slice());
      this.dedup.set(a.keyGroup, log);
    }
    if (s.streamTime !== null) for (const g of keyGroups) this.streamTime.set(g, s.streamTime);
  }

  restored(): RestoredState {
    const st = [...this.streamTime.values()];
    return {
      windows: [...this.windows].map(([k, h]) => {
        const [kg, start] = k.split(':').map(Number) as [number, number];
        return { keyGroup: kg, start, fields: [...h].flat() };
      }),
      dedupLogs: [...this.dedup]
        .filter(([, chunks]) => chunks.length > 0)
        .map(([keyGroup, chunks]) => ({ keyGroup, chunks })),
      streamTime: st.length ? Math.max(...st) : null,
    };
  }
}

describe('checkpoint', () => {
  const stages = `  - dedup: { ttl: 1s, maxEntries: 100000 }\n${TUMBLING.replace('size: 10s', 'size: 1s').replace('grace: 2s', 'grace: 300ms')}`;
  let rnd = 42;
  const next = () => {
    rnd = (Math.imul(rnd, 1_103_515_245) + 12_345) >>> 0;
    return rnd / 2 ** 32;
  };
  const events = Array.from({ length: 3000 }, (_, i) => {
    const ts = i * 5 - (next() < 0.05 ? Math.floor(next() * 1500) : 0);
    const id = next() < 0.1 && i > 10 ? `id-${i - 1 - Math.floor(next() * 300)}` : `id-${i}`;
    return ev(`k${Math.floor(next() * 40)}`, ts, Math.floor(next() * 100), id);
  });
  const chunks: Array<typeof events> = [];
  for (let i = 0; i < events.length; i += 100) chunks.push(events.slice(i, i + 100));
  const all = Array.from({ length: KEY_GROUPS }, (_, i) => i);

  /** Runs every chunk through a shard that "crashes" and is restored from the model before every 7th. */
  function withCrashes(cfg: PipelineConfig): BatchResult[] {
    const model = new CheckpointModel();
    let shard = new Shard(cfg);
    const got: BatchResult[] = [];
    chunks.forEach((c, i) => {
      if (i % 7 === 3) shard = new Shard(cfg, { state: model.restored(), now: WALL }); // "crash" and restore before this batch
      const out = shard.processBatch(batch(c).buf, WALL);
      model.apply(out, all);
      got.push(out);
    });
    for (let t = 0; got[got.length - 1]?.closePending; t++) {
      if (t % 3 === 1) shard = new Shard(cfg, { state: model.restored(), now: WALL }); // also while a close is spread over ticks
      const out = shard.tick(0, 0);
      model.apply(out, all);
      got.push(out);
    }
    return got;
  }

  const straight = new Shard(config(stages));
  const expected = chunks.map((c) => straight.processBatch(batch(c).buf, WALL));

  it('a shard restored from its deltas continues exactly like one that never stopped', () => {
    const got = withCrashes(config(stages));
    const summary = (outs: BatchResult[]) =>
      // Within one window the order of keys is not specified (a restored bucket is filled per key group).
      outs.map((o) => ({
        results: o.results.map((r) => r.join(',')).sort(),
        passThrough: o.passThrough,
        dl: o.deadLetters,
        counts: o.counts,
      }));
    expect(summary(got)).toEqual(summary(expected));
    expect(expected.reduce((n, o) => n + o.results.length, 0)).toBeGreaterThan(100);
    expect(expected.reduce((n, o) => n + o.counts.deduplicated, 0)).toBeGreaterThan(50);
    expect(expected.reduce((n, o) => n + o.counts.late, 0)).toBeGreaterThan(5);
  });

  it('emits at most 2n results with a batch of n events (at least 100) and 100 with a tick', () => {
    const tumbling = '  - window: { size: 10s, grace: 0s, idleClose: 1s, aggregates: [{ fn: count }] }\n';
    const shard = new Shard(config(tumbling, 'commit: { maxEvents: 1000 }\n'));
    const keys = Array.from({ length: 1500 }, (_, i) => ev(`k${i}`, 1000, 1));
    for (let i = 0; i < keys.length; i += 500) shard.processBatch(batch(keys.slice(i, i + 500)).buf, WALL);
    // One event past the window: its 1,500 results are due. A batch of 1 emits 100, of 300 events 600.
    const one = shard.processBatch(batch([ev('x', 20_000, 1)]).buf, WALL);
    expect([one.results.length, one.closePending]).toEqual([100, true]);
    const more = shard.processBatch(
      batch(Array.from({ length: 300 }, (_, i) => ev(`y${i}`, 20_001, 1))).buf,
      WALL,
    );
    expect([more.results.length, more.closePending]).toEqual([600, true]);
    const ticks: number[] = [];
    for (
      let t = shard.tick(Date.now(), Date.now());
      t.results.length > 0;
      t = shard.tick(Date.now(), Date.now())
    )
      ticks.push(t.results.length);
    expect(ticks).toEqual([100, 100, 100, 100, 100, 100, 100, 100]);
    // The 1,000-event cap: a full batch emits at most commit.maxEvents.
    const big = new Shard(config(tumbling, 'commit: { maxEvents: 1000 }\n'));
    const many = Array.from({ length: 3000 }, (_, i) => ev(`k${i}`, 1000, 1));
    for (let i = 0; i < many.length; i += 1000) big.processBatch(batch(many.slice(i, i + 1000)).buf, WALL);
    const full = big.processBatch(
      batch(Array.from({ length: 1000 }, (_, i) => ev(`z${i}`, 20_000, 1))).buf,
      WALL,
    );
    expect(full.results.length).toBe(1000);
  });

  it('spreads a window close over batches and ticks (commit.maxEvents results each), with the same results', () => {
    const got = withCrashes(config(stages, 'commit: { maxEvents: 7 }\n'));
    for (const o of got) expect(o.results.length).toBeLessThanOrEqual(7);
    const flat = (outs: BatchResult[]) => outs.flatMap((o) => o.results.map((r) => r.join(','))).sort();
    const dead = (outs: BatchResult[]) => outs.flatMap((o) => o.deadLetters.map((d) => d.error)).sort();
    expect(flat(got)).toEqual(flat(expected));
    expect(dead(got)).toEqual(dead(expected));
    expect(got.some((o) => o.closePending)).toBe(true);
  });
});
