/**
 * The batch format with entries Redis can hold but 16 bits cannot count, oversized entries (routed as a
 * header with their key), and what the shard makes of both: no field list is ever split over XADDs.
 */
import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { BatchReader, NO_KEY, splitBatch } from '../src/routing/batchCodec.js';
import { fnv1a, keyGroupOf } from '../src/routing/hash.js';
import { OpenBatch, Router } from '../src/routing/router.js';
import { MAX_COPY_FIELDS } from '../src/shard/commitBuilder.js';
import { Shard } from '../src/shard/shard.js';
import { StreamReply } from '../src/source/streamReply.js';
import { packBatch } from './helpers/batches.js';

/** The wall clock at dispatch: after every event time used here. */
const WALL = 1_700_000_000_000;

const b = (s: string) => Buffer.from(s);

/** The RESP bytes of an XREADGROUP reply; a field given as a number is a dropped value `$-<n>`. */
function encodeReply(entries: Array<{ id: string; fields: Array<Buffer | number> }>): Buffer {
  const parts: Buffer[] = [b(`*1\r\n*2\r\n$1\r\ns\r\n*${entries.length}\r\n`)];
  const bulk = (x: Buffer) => parts.push(b(`$${x.length}\r\n`), x, b('\r\n'));
  for (const e of entries) {
    parts.push(b('*2\r\n'));
    bulk(b(e.id));
    parts.push(b(`*${e.fields.length}\r\n`));
    for (const f of e.fields) {
      if (typeof f === 'number') parts.push(b(`$-${f}\r\n`));
      else bulk(f);
    }
  }
  return Buffer.concat(parts);
}

/** `n` more field pairs `f<i> v<i>` after `head`. */
function wide(head: Buffer[], pairs: number): Buffer[] {
  const out = [...head];
  for (let i = 0; i < pairs; i++) out.push(b(`f${i}`), b(`v${i}`));
  return out;
}

function readAll(buf: ArrayBuffer) {
  const r = new BatchReader(buf);
  const out: Array<{
    id: string;
    keyField: number;
    keyGroup: number;
    deliveries: number;
    poison: boolean;
    oversizedBytes: number;
    fields: string[];
  }> = [];
  while (r.next()) {
    out.push({
      id: r.id(),
      keyField: r.keyField,
      keyGroup: r.keyGroup,
      deliveries: r.deliveries,
      poison: r.poison,
      oversizedBytes: r.oversizedBytes,
      fields: r.fields().map((f) => Buffer.from(f).toString('latin1')),
    });
  }
  return out;
}

const body = (v: unknown) => Buffer.from(encode(v));

describe('batch format', () => {
  it('round-trips entries with more than 65,535 fields, a key past index 65,535 and big counts', () => {
    const before = { id: b('1-0'), fields: [b('key'), b('a'), b('data'), b('x')] };
    const huge = { id: b('1-1'), fields: [...wide([], 40_000), b('key'), b('a')] }; // 80,002 fields
    const after = { id: b('1-2'), fields: [b('key'), b('a')] };
    const buf = packBatch([before, huge, after], [7, 65_535, 0], [1, 80_001, NO_KEY], [1, 70_000, 3]);
    const got = readAll(buf);
    expect(got.map((e) => [e.id, e.keyField, e.keyGroup, e.deliveries, e.poison, e.oversizedBytes])).toEqual([
      ['1-0', 1, 7, 1, false, -1],
      ['1-1', 80_001, 65_535, 70_000, false, -1],
      ['1-2', NO_KEY, 0, 3, false, -1],
    ]);
    expect(got.map((e) => e.fields)).toEqual(
      [before, huge, after].map((e) => e.fields.map((f) => f.toString('latin1'))),
    );
    // split into single entries, the middle one marked poison: the same entries, one per batch
    const singles = splitBatch(buf, new Set([1]));
    expect(singles.flatMap(readAll)).toEqual(got.map((e, i) => ({ ...e, poison: i === 1 })));
  });

  it('routes an oversized entry as its header and key only, by its key, also when its value was dropped', () => {
    const router = new Router('key', 64, 2, 1024);
    const batches = [new OpenBatch(), new OpenBatch()];
    const reply = new StreamReply(
      encodeReply([
        { id: '1-0', fields: [b('key'), b('k1'), b('data'), Buffer.alloc(1024 - 9, 1)] }, // exactly 1024
        { id: '1-1', fields: [b('key'), b('k1'), b('data'), Buffer.alloc(1024 - 8, 1)] }, // one byte over
        { id: '1-2', fields: [b('data'), 5_000_000, b('key'), b('k2')] }, // a dropped value
        { id: '1-3', fields: wide([b('key'), b('k3')], 200) }, // many small fields
        { id: '1-4', fields: [b('key'), Buffer.alloc(5000, 0x6b), b('data'), Buffer.alloc(1)] }, // long key
        { id: '1-5', fields: [b('key'), 2000] }, // the key itself dropped
      ]),
    );
    router.route(reply, batches, 0);
    const got = batches.flatMap((x) => readAll(x.take().buf)).sort((x, y) => x.id.localeCompare(y.id));
    const kg = (key: Buffer) => keyGroupOf(fnv1a(key), 64);
    const size = (fields: Array<Buffer | number>) =>
      fields.reduce<number>((n, f) => n + (typeof f === 'number' ? f : f.length), 0);
    expect(got.map((e) => [e.id, e.keyField, e.keyGroup, e.oversizedBytes, e.fields.length])).toEqual([
      ['1-0', 1, kg(b('k1')), -1, 4],
      ['1-1', 1, kg(b('k1')), 1025, 2],
      ['1-2', 1, kg(b('k2')), 5_000_009, 2],
      ['1-3', 1, kg(b('k3')), size(wide([b('key'), b('k3')], 200)), 2],
      ['1-4', NO_KEY, kg(Buffer.alloc(5000, 0x6b)), 5008, 0],
      ['1-5', NO_KEY, kg(Buffer.alloc(0)), 2003, 0],
    ]);
    expect(got.filter((e) => e.oversizedBytes >= 0 && e.fields.length > 0).map((e) => e.fields)).toEqual([
      ['key', 'k1'],
      ['key', 'k2'],
      ['key', 'k3'],
    ]);
  });
});

describe('shard: entries too large to process or to copy', () => {
  const config = (stages: string, maxEntryBytes = 1024) =>
    parseConfig(
      `source: { stream: in, maxEntryBytes: ${maxEntryBytes} }\nsink: { stream: out }\ndeadLetter: { stream: dlq }\nkeyGroups: 16\nshards: 1\nstages:\n${stages}`,
      't',
      { env: {} },
    );
  const WINDOW = '  - window: { size: 10s, idleClose: 0, aggregates: [{ fn: sum, field: amount }] }\n';
  const good = body({ id: 'w', ts: 1000, amount: 5 });
  // the entry: key a data <body> + 40,000 more pairs (> MAX_COPY_FIELDS, < 1 MiB)
  const wideEntry = { id: b('1-1'), fields: wide([b('key'), b('a'), b('data'), good], 40_000) };
  const normal = (id: string) => ({ id: b(id), fields: [b('key'), b('a'), b('data'), good] });
  const batch = (entries: Array<{ id: Buffer; fields: Buffer[] }>) =>
    packBatch(
      entries,
      entries.map(() => 0),
      entries.map(() => 1),
    );

  it('pass-through: a wide entry is dead-lettered E_ENTRY_TOO_LARGE with its key only, the rest passes', () => {
    expect(wideEntry.fields.length).toBeGreaterThan(MAX_COPY_FIELDS);
    const out = new Shard(config('  []\n', 1024 * 1024)).processBatch(
      batch([normal('1-0'), wideEntry, normal('1-2')]),
      WALL,
    );
    expect(out.passThrough).toEqual([0, 2]);
    expect(out.deadLetters).toEqual([
      {
        index: 1,
        error: `E_ENTRY_TOO_LARGE: 80004 fields (names and values): more than one XADD can copy (${MAX_COPY_FIELDS})`,
        deliveries: undefined,
      },
    ]);
    expect((out.entryFields[1] as Uint8Array[]).map((f) => Buffer.from(f).toString())).toEqual(['key', 'a']);
    expect(out.counts.deadLettered).toEqual({ E_ENTRY_TOO_LARGE: 1 });
  });

  it('windows: a wide entry with a good body counts; a wide one that must be dead-lettered goes without fields', () => {
    const shard = new Shard(config(WINDOW, 1024 * 1024));
    const bad = { id: b('1-3'), fields: wide([b('key'), b('a'), b('data'), b('not msgpack')], 40_000) };
    const out = shard.processBatch(batch([normal('1-0'), wideEntry, normal('1-2'), bad]), WALL);
    expect(out.counts.processed).toBe(4);
    expect(
      out.deadLetters.map((d) => [d.index, d.error.replace(/ E_BAD_BODY: .*/, ' E_BAD_BODY: …')]),
    ).toEqual([
      [
        3,
        `E_ENTRY_TOO_LARGE: 80004 fields (names and values): more than one XADD can copy (${MAX_COPY_FIELDS}); E_BAD_BODY: …`,
      ],
    ]);
    expect((out.entryFields[3] as Uint8Array[]).map((f) => Buffer.from(f).toString())).toEqual(['key', 'a']);
    expect(out.eventTimes).toEqual([1000, 1000, 1000]); // the wide entry reached its window
  });

  it('an oversized entry routed as a header is dead-lettered with its key, size and the limit', () => {
    const router = new Router('key', 16, 1, 1024);
    const open = [new OpenBatch()];
    router.route(
      new StreamReply(
        encodeReply([
          { id: '1-0', fields: [b('key'), b('a'), b('data'), Buffer.alloc(2000)] },
          { id: '1-1', fields: [b('data'), Buffer.alloc(2000)] },
        ]),
      ),
      open,
      0,
    );
    const out = new Shard(config('  []\n')).processBatch((open[0] as OpenBatch).take().buf, WALL);
    expect(out.passThrough).toEqual([]);
    expect(out.deadLetters.map((d) => d.error)).toEqual([
      'E_ENTRY_TOO_LARGE: entry of 2008 bytes (field names and values) is larger than source.maxEntryBytes (1024)',
      'E_ENTRY_TOO_LARGE: entry of 2004 bytes (field names and values) is larger than source.maxEntryBytes (1024)',
    ]);
    expect(out.entryFields.map((f) => f.map((x) => Buffer.from(x).toString()))).toEqual([['key', 'a'], []]);
    expect(out.entryIds.map((x) => Buffer.from(x).toString())).toEqual(['1-0', '1-1']);
  });
});
