/**
 * The oracle checked against hand-computed outputs, so that the integration tests compare the engine with
 * something known to be right.
 */
import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { shardOfKey } from '../src/routing/hash.js';
import {
  asRecord,
  diffWindows,
  NO_DIFF,
  reference,
  type StreamEntry,
  sortWindows,
  windowStartsOf,
} from './helpers/reference.js';

let seq = 0;
/** An input entry with a msgpack body; `key: null` leaves the key field out. */
function ev(key: string | null, body: unknown, extra: Array<string | Buffer> = []): StreamEntry {
  seq++;
  const fields: Buffer[] = [];
  if (key !== null) fields.push(Buffer.from('key'), Buffer.from(key));
  fields.push(Buffer.from('data'), Buffer.from(encode(body)));
  for (const f of extra) fields.push(Buffer.from(f));
  return { id: `${seq}-0`, fields };
}
function entry(...fields: Array<string | Buffer>): StreamEntry {
  seq++;
  return { id: `${seq}-0`, fields: fields.map((f) => Buffer.from(f)) };
}

function config(stages: string, extra = ''): ReturnType<typeof parseConfig> {
  return parseConfig(
    `source: { stream: in }\nshards: 1\nsink: { stream: out }\ndeadLetter: { stream: dlq }\n${extra}\nstages:\n${stages}`,
  );
}

const tumbling = `
  - window:
      size: 1s
      grace: 200ms
      aggregates: [{ fn: count }, { fn: sum, field: amount }, { fn: min, field: amount }, { fn: max, field: amount }, { fn: avg, field: amount }]
`;

function windows(rows: ReturnType<typeof reference>['sink']) {
  return sortWindows(rows).map(asRecord);
}

describe('reference oracle', () => {
  it('lists the windows containing a time, negative times included', () => {
    expect(windowStartsOf(1250, 1000, 1000)).toEqual([1000]);
    expect(windowStartsOf(1250, 1000, 500)).toEqual([500, 1000]);
    expect(windowStartsOf(1000, 1000, 500)).toEqual([500, 1000]);
    expect(windowStartsOf(-250, 1000, 500)).toEqual([-1000, -500]);
    expect(windowStartsOf(-1, 1000, 1000)).toEqual([-1000]);
    expect(windowStartsOf(0, 1000, 250)).toEqual([-750, -500, -250, 0]);
  });

  it('tumbling: aggregates, a late event per shard stream time, grace', () => {
    const input = [
      ev('a', { id: '1', ts: 100, amount: 10 }),
      ev('a', { id: '2', ts: 1500, amount: 7 }),
      ev('a', { id: '3', ts: 1250, amount: 2 }), // out of order, window [1000,2000) still open
      ev('a', { id: '4', ts: 900, amount: 5 }), // [0,1000) closed at 1200 <= 1500: late
      ev('b', { id: '5', ts: 1100, amount: 1 }),
      ev('b', { id: '6', ts: 50, amount: 1 }), // b never saw >1100, but the shard did: late
      ev('a', { id: '7', ts: 2150, amount: 3 }), // stream time 2150: [1000,2000) still open (grace)
      ev('a', { id: '8', ts: 1999, amount: 4 }),
      ev('a', { id: '9', ts: 2200, amount: 1 }), // stream time 2200 closes [1000,2000)
      ev('b', { id: '10', ts: 1999, amount: 1 }), // late
    ];
    const out = reference(input, config(tumbling));
    expect(windows(out.sink)).toEqual([
      {
        key: 'a',
        window_start: '0',
        window_end: '1000',
        count: '1',
        sum_amount: '10',
        min_amount: '10',
        max_amount: '10',
        avg_amount: '10',
      },
      {
        key: 'a',
        window_start: '1000',
        window_end: '2000',
        count: '3',
        sum_amount: '13',
        min_amount: '2',
        max_amount: '7',
        avg_amount: String(13 / 3),
      },
      {
        key: 'a',
        window_start: '2000',
        window_end: '3000',
        count: '2',
        sum_amount: '4',
        min_amount: '1',
        max_amount: '3',
        avg_amount: '2',
      },
      {
        key: 'b',
        window_start: '1000',
        window_end: '2000',
        count: '1',
        sum_amount: '1',
        min_amount: '1',
        max_amount: '1',
        avg_amount: '1',
      },
    ]);
    // result fields come in the documented order
    expect(out.sink[0]?.map((p) => p[0])).toEqual([
      'key',
      'window_start',
      'window_end',
      'count',
      'sum_amount',
      'min_amount',
      'max_amount',
      'avg_amount',
    ]);
    expect(out.deadLetters.map((d) => [d.sourceId, d.code])).toEqual([
      [input[3]?.id, 'E_LATE'],
      [input[5]?.id, 'E_LATE'],
      [input[9]?.id, 'E_LATE'],
    ]);
    expect(out.counts).toMatchObject({ read: 10, late: 3, windowsEmitted: 4, deadLettered: { E_LATE: 3 } });
  });

  it('hopping: an event goes to every open window containing it', () => {
    const cfg = config(`
  - window: { type: hopping, size: 1s, advance: 500ms, grace: 300ms, aggregates: [{ fn: sum, field: amount }] }
`);
    const out = reference(
      [
        ev('k', { ts: 1250, amount: 1 }), // windows 500, 1000
        ev('k', { ts: 400, amount: 10 }), // windows -500 (closed: 500+300 <= 1250) and 0 (open until 1300)
        ev('k', { ts: 1300, amount: 100 }), // windows 500, 1000; closes window 0
        ev('k', { ts: 450, amount: 1000 }), // windows -500, 0: both closed → late
        ev('k', { ts: -250, amount: 5 }), // windows -1000, -500: late
      ],
      cfg,
    );
    expect(windows(out.sink)).toEqual([
      { key: 'k', window_start: '0', window_end: '1000', count: '1', sum_amount: '10' },
      { key: 'k', window_start: '500', window_end: '1500', count: '2', sum_amount: '101' },
      { key: 'k', window_start: '1000', window_end: '2000', count: '2', sum_amount: '101' },
    ]);
    expect(out.counts.late).toBe(2);
  });

  it('dead-letters events more than maxFutureSkew ahead of now without moving stream time', () => {
    const now = 1_000_000;
    const input = [
      ev('a', { ts: 100, amount: 1 }),
      ev('a', { ts: now + 60_001, amount: 2 }), // E_FUTURE_TIME: stream time stays 100
      ev('a', { ts: 1e308, amount: 4 }), // E_BAD_TIME: no date, whatever the limit
      ev('a', { ts: 200, amount: 8 }), // not late
      ev('a', { ts: now + 60_000, amount: 16 }), // at the limit: accepted
    ];
    const on = reference(input, config(tumbling), { now });
    expect(on.deadLetters.map((d) => d.code)).toEqual(['E_FUTURE_TIME', 'E_BAD_TIME']);
    expect(windows(on.sink).map((w) => [w.window_start, w.sum_amount])).toEqual([
      ['0', '9'],
      [String(now + 60_000), '16'],
    ]);
    const off = reference(input, config(tumbling, 'body: { maxFutureSkew: 0 }'), { now });
    expect(off.deadLetters.map((d) => d.code)).toEqual(['E_BAD_TIME', 'E_LATE']);
  });

  it('hopping with negative times', () => {
    const cfg = config(`
  - window: { type: hopping, size: 1s, advance: 500ms, aggregates: [{ fn: max, field: v }] }
`);
    // -1000 first: with -250 first, stream time -250 would have closed [-1500, -500) already
    const out = reference([ev('k', { ts: -1000, v: 4 }), ev('k', { ts: -250, v: 3 })], cfg);
    expect(windows(out.sink)).toEqual([
      { key: 'k', window_start: '-1500', window_end: '-500', count: '1', max_v: '4' },
      { key: 'k', window_start: '-1000', window_end: '0', count: '2', max_v: '4' },
      { key: 'k', window_start: '-500', window_end: '500', count: '1', max_v: '3' },
    ]);
  });

  it('each shard has its own stream time', () => {
    const cfg = parseConfig(`
source: { stream: in }
shards: 4
sink: { stream: out }
deadLetter: { stream: dlq }
stages: [{ window: { size: 1s } }]
`);
    const keys = Array.from({ length: 50 }, (_, i) => `key${i}`);
    const a = keys[0] as string;
    const other = keys.find((k) => shardOfKey(k, 256, 4) !== shardOfKey(a, 256, 4)) as string;
    const same = keys.find((k) => k !== a && shardOfKey(k, 256, 4) === shardOfKey(a, 256, 4)) as string;
    const out = reference(
      [ev(a, { ts: 5000 }), ev(other, { ts: 100 }), ev(same, { ts: 100 }), ev(a, { ts: 4000 })],
      cfg,
    );
    expect(out.deadLetters.map((d) => d.fields[0]?.[1])).toEqual([same, a]);
    expect(
      windows(out.sink)
        .map((w) => `${w.key}@${w.window_start}`)
        .sort(),
    ).toEqual([`${a}@5000`, `${other}@0`].sort());
  });

  it('dedup: within the TTL dropped, after it passes again, memory bounded by maxEntries', () => {
    const cfg = config(`
  - dedup: { ttl: 1s, maxEntries: 2 }
`);
    const input = [
      ev('k', { id: 'a', ts: 1000 }), // pass, seen a@1000
      ev('k', { id: 'a', ts: 1500 }), // 500 < 1000: duplicate (does not refresh)
      ev('k', { id: 'a', ts: 1999 }), // 999 < 1000: duplicate
      ev('k', { id: 'a', ts: 2000 }), // 1000: passes again, a@2000
      ev('k', { id: 'b', ts: 2100 }), // memory a, b
      ev('k', { id: 'c', ts: 2200 }), // memory b, c (a evicted)
      ev('k', { id: 'a', ts: 2300 }), // evicted → passes; memory c, a
      ev('k', { id: 'c', ts: 2400 }), // duplicate
      ev('k', { id: 'b', ts: 2500 }), // evicted → passes; memory a, b
      ev('k', { id: 1, ts: 100 }), // numeric id, old ts: stream time stays 2500; passes; memory b, "1"
      ev('k', { id: '1', ts: 100 }), // same id as a string: duplicate
    ];
    const out = reference(input, cfg);
    const passed = out.sink.map((fields) =>
      input.findIndex((e) => e.fields[3]?.toString('latin1') === fields[1]?.[1]),
    );
    expect(passed).toEqual([0, 3, 4, 5, 6, 8, 9]);
    expect(out.counts.deduplicated).toBe(4);
  });

  it('pass-through keeps the original fields', () => {
    const input = [ev('k', { id: 'x', ts: 1 }, ['extra', 'value'])];
    const out = reference(input, config('  []'));
    expect(out.sink).toEqual([
      [
        ['key', 'k'],
        ['data', input[0]?.fields[3]?.toString('latin1')],
        ['extra', 'value'],
      ],
    ]);
  });

  it('filter: every operator', () => {
    const cfg = config(`
  - filter:
      where:
        - { field: type, op: eq, value: order }
        - { field: amount, op: gte, value: 10 }
        - { field: amount, op: lt, value: 100 }
        - { field: region, op: in, value: [eu, us] }
        - { field: meta.flag, op: exists }
        - { field: gone, op: exists, value: false }
        - { field: note, op: ne, value: skip }
`);
    const good = { ts: 1, type: 'order', amount: 10, region: 'eu', meta: { flag: 0 } };
    const input = [
      ev('k', good),
      ev('k', { ...good, type: 'refund' }),
      ev('k', { ...good, amount: 9 }),
      ev('k', { ...good, amount: 100 }),
      ev('k', { ...good, amount: '50' }), // numeric string vs a number: read as 50, passes
      ev('k', { ...good, amount: 'abc' }), // not numeric: string vs number, every ordering is false
      ev('k', { ...good, meta: { flag: null } }), // null is present
      ev('k', { ...good, region: 'asia' }),
      ev('k', { ...good, meta: {} }),
      ev('k', { ...good, gone: 1 }),
      ev('k', { ...good, note: 'skip' }),
      ev('k', { ...good, amount: 99, region: 'us', note: 'keep' }),
    ];
    const out = reference(input, cfg);
    expect(
      out.sink.map((s) => input.findIndex((e) => e.fields[3]?.toString('latin1') === s[1]?.[1])),
    ).toEqual([0, 4, 6, 11]);
    expect(out.counts.filtered).toBe(8);
  });

  it('filter: strings compare lexicographically, numeric strings match numbers in eq and in', () => {
    const cfg = config(`
  - filter:
      where:
        - { field: name, op: gt, value: b }
        - { field: n, op: eq, value: 5 }
        - { field: m, op: in, value: [1, x] }
`);
    const good = { ts: 1, name: 'c', n: 5, m: 1 };
    const input = [
      ev('k', good),
      ev('k', { ...good, name: 'a' }),
      ev('k', { ...good, name: 'ba' }), // "ba" > "b"
      ev('k', { ...good, name: 7 }), // number vs string: false
      ev('k', { ...good, n: '5' }), // "5" read as 5
      ev('k', { ...good, n: '5.0' }), // also 5
      ev('k', { ...good, m: 'x' }),
      ev('k', { ...good, m: '1' }), // the list holds a number: "1" read as 1
      ev('k', { ...good, m: 'y' }),
    ];
    const out = reference(input, cfg);
    expect(
      out.sink.map((s) => input.findIndex((e) => e.fields[3]?.toString('latin1') === s[1]?.[1])),
    ).toEqual([0, 2, 4, 5, 6, 7]);
  });

  it('result fields are named <fn>_<path with dots as _>', () => {
    const cfg = config(`
  - window: { size: 1s, aggregates: [{ fn: max, field: order.total }, { fn: count }] }
`);
    const out = reference([ev('k', { ts: 5, order: { total: '7' } })], cfg);
    expect(out.sink).toEqual([
      [
        ['key', 'k'],
        ['window_start', '0'],
        ['window_end', '1000'],
        ['count', '1'],
        ['max_order_total', '7'],
      ],
    ]);
  });

  it('dead-letters each kind of bad input with the first failing check', () => {
    const cfg = config(`
  - dedup: {}
  - window: { size: 1s, aggregates: [{ fn: sum, field: amount }, { fn: avg, field: price }] }
`);
    const ok = { id: 'x', ts: 1000, amount: 1, price: '2.5' };
    const input = [
      ev(null, ok), // E_MISSING_KEY
      ev('', ok), // E_MISSING_KEY
      ev(null, { nonsense: true }), // E_MISSING_KEY wins over the rest
      entry('key', 'k'), // no body: E_BAD_BODY
      entry('key', 'k', 'data', Buffer.from([0xc1])), // undecodable
      entry('key', 'k', 'data', Buffer.from(encode([1, 2]))), // not a map
      entry('key', 'k', 'data', Buffer.from(encode('str'))), // not a map
      ev('k', { ...ok, ts: undefined }), // E_MISSING_TIME (undefined is encoded as nil)
      ev('k', { ...ok, ts: 'yesterday' }), // E_BAD_TIME
      ev('k', { ...ok, ts: true }), // E_BAD_TIME
      ev('k', { ...ok, ts: 'Jan 1 2020' }), // E_BAD_TIME: Date.parse would take it, but it is not YYYY-MM-DD…
      ev('k', { ...ok, id: undefined }), // E_MISSING_ID
      ev('k', { ...ok, id: { nested: 1 } }), // E_MISSING_ID
      ev('k', { ...ok, amount: 'abc' }), // E_BAD_FIELD
      ev('k', { ...ok, price: undefined }), // E_BAD_FIELD
      ev('k', { ...ok, id: 'y', ts: '1970-01-01T00:00:01.500Z', amount: '12.5' }), // good: ISO time, numeric string
      ev('k', { ...ok, id: 'z', ts: '1700', amount: 2 }), // good: numeric-string time
    ];
    const out = reference(input, cfg);
    expect(out.deadLetters.map((d) => d.code)).toEqual([
      'E_MISSING_KEY',
      'E_MISSING_KEY',
      'E_MISSING_KEY',
      'E_BAD_BODY',
      'E_BAD_BODY',
      'E_BAD_BODY',
      'E_BAD_BODY',
      'E_MISSING_TIME',
      'E_BAD_TIME',
      'E_BAD_TIME',
      'E_BAD_TIME',
      'E_MISSING_ID',
      'E_MISSING_ID',
      'E_BAD_FIELD',
      'E_BAD_FIELD',
    ]);
    expect(out.deadLetters[3]?.fields).toEqual([['key', 'k']]);
    expect(out.deadLetters.map((d) => d.sourceId)).toEqual(input.slice(0, 15).map((e) => e.id));
    expect(windows(out.sink)).toEqual([
      {
        key: 'k',
        window_start: '1000',
        window_end: '2000',
        count: '2',
        sum_amount: '14.5',
        avg_price: '2.5',
      },
    ]);
    expect(out.counts.deadLettered).toEqual({
      E_MISSING_KEY: 3,
      E_BAD_BODY: 4,
      E_MISSING_TIME: 1,
      E_BAD_TIME: 3,
      E_MISSING_ID: 2,
      E_BAD_FIELD: 2,
    });
  });

  it('json and flat bodies', () => {
    const json = parseConfig(`
source: { stream: in }
shards: 1
body: { encoding: json, timePath: meta.time }
sink: { stream: out }
deadLetter: { stream: dlq }
stages: [{ window: { size: 10s, aggregates: [{ fn: sum, field: n }] } }]
`);
    const j = reference(
      [
        entry('key', 'k', 'data', JSON.stringify({ meta: { time: 5 }, n: 2 })),
        entry('key', 'k', 'data', '{not json'),
        entry('key', 'k', 'data', JSON.stringify({ meta: { time: 6 }, n: 3 })),
      ],
      json,
    );
    expect(windows(j.sink)).toEqual([
      { key: 'k', window_start: '0', window_end: '10000', count: '2', sum_n: '5' },
    ]);
    expect(j.deadLetters.map((d) => d.code)).toEqual(['E_BAD_BODY']);

    const flat = parseConfig(`
source: { stream: in }
shards: 1
key: { field: user }
body: { encoding: flat }
sink: { stream: out }
deadLetter: { stream: dlq }
stages: [{ window: { size: 10s, aggregates: [{ fn: min, field: n }] } }]
`);
    const f = reference(
      [
        entry('user', 'u', 'ts', '5', 'n', '7'),
        entry('user', 'u', 'ts', '6', 'n', 'x'),
        entry('user', 'u', 'ts', '7', 'n', '-1.5'),
      ],
      flat,
    );
    expect(windows(f.sink)).toEqual([
      { key: 'u', window_start: '0', window_end: '10000', count: '2', min_n: '-1.5' },
    ]);
    expect(f.deadLetters.map((d) => d.code)).toEqual(['E_BAD_FIELD']);
  });

  it('diffWindows reports missing, extra, changed and duplicated results', () => {
    const row = (k: string, s: number, c: number): Array<[string, string]> => [
      ['key', k],
      ['window_start', String(s)],
      ['count', String(c)],
    ];
    expect(diffWindows([row('a', 0, 1)], [row('a', 0, 1)])).toEqual(NO_DIFF);
    const d = diffWindows([row('a', 0, 1), row('b', 0, 1)], [row('a', 0, 2), row('c', 0, 1), row('c', 0, 1)]);
    expect([d.missing, d.extra, d.changed, d.duplicated]).toEqual([1, 1, 1, 1]);
  });
});
