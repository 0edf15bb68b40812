/**
 * Numbers in strings are read in decimal notation only (issue 10, item 9): aggregated values, string
 * event times and numeric filter comparisons. `Number()` alone would read "0x10" as 16 and " " as 0.
 * Also the stdout sink's JSON for values that are not valid UTF-8.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { NO_KEY } from '../src/routing/batchCodec.js';
import { keyGroupOfKey } from '../src/routing/hash.js';
import { Shard } from '../src/shard/shard.js';
import { parseDecimal, parseTime, toNumber } from '../src/shard/stages/decode.js';
import { jsonLine } from '../src/sink/sink.js';
import { packBatch, type RawEntry } from './helpers/batches.js';

/** The wall clock at dispatch: after every event time used here. */
const WALL = 1_700_000_000_000;

const ACCEPTED: Array<[string, number]> = [
  ['12', 12],
  ['-3', -3],
  ['+4', 4],
  ['007', 7],
  ['0.5', 0.5],
  ['-.25', -0.25],
  ['3.', 3],
  ['1e3', 1000],
  ['2.5E-4', 0.00025],
  ['1e+2', 100],
  ['1e999', Number.POSITIVE_INFINITY], // decimal, but not finite: callers check
];
const REJECTED = [
  '',
  ' ',
  ' 12',
  '12 ',
  '\t12\n',
  '0x10',
  '0X10',
  '0b1',
  '0o7',
  'Infinity',
  '-Infinity',
  'NaN',
  '.',
  '-',
  '+.',
  'e3',
  '1e',
  '1e+',
  '1.2.3',
  '1_000',
  '１２', // full-width digits
  '12abc',
];

describe('decimal notation', () => {
  it('parseDecimal reads decimal notation and nothing else', () => {
    expect(ACCEPTED.map(([s]) => parseDecimal(s))).toEqual(ACCEPTED.map(([, n]) => n));
    expect(REJECTED.filter((s) => !Number.isNaN(parseDecimal(s)))).toEqual([]);
  });

  it('toNumber and parseTime use it for strings', () => {
    expect(toNumber('0x10')).toBeNaN();
    expect(toNumber(' ')).toBeNaN();
    expect(toNumber('16')).toBe(16);
    expect(toNumber(16)).toBe(16);
    expect(parseTime('0x10')).toBeNaN();
    expect(parseTime(' 1700000000000 ')).toBeNaN();
    expect(parseTime('Infinity')).toBeNaN();
    expect(parseTime('1e999')).toBeNaN();
    expect(parseTime('1700000000000')).toBe(1_700_000_000_000);
    expect(parseTime('2023-11-14T22:13:20Z')).toBe(1_700_000_000_000);
  });
});

/** A shard on flat entries (every value a string), as the CLI would build it. */
function shard(stages: string): Shard {
  const text = `source: { stream: in }\nsink: { stream: out }\ndeadLetter: { stream: dlq }\nkeyGroups: 16\nshards: 1\nbody: { encoding: flat }\nstages:\n${stages}`;
  return new Shard(parseConfig(text, 't', { env: {} }));
}

function batch(rows: Array<Record<string, string>>): ArrayBuffer {
  const entries: RawEntry[] = rows.map((r, i) => ({
    id: Buffer.from(`1-${i}`),
    fields: Object.entries(r).flatMap(([k, v]) => [Buffer.from(k), Buffer.from(v)]),
  }));
  const kgs = Uint16Array.from(rows.map((r) => keyGroupOfKey(r.key ?? '', 16)));
  const kfs = Array.from(
    rows.map((r) => (r.key === undefined ? NO_KEY : 2 * Object.keys(r).indexOf('key') + 1)),
  );
  return packBatch(entries, kgs, kfs);
}

describe('flat entries through a shard', () => {
  it('dead-letters aggregated values and times that are not decimal', () => {
    const s = shard('  - window: { size: 10s, idleClose: 0, aggregates: [{ fn: sum, field: amount }] }\n');
    const amounts = ['0x10', ' 12', 'Infinity', '', '1e999', '0b1', '16', '1e1'];
    const times = ['0x10', ' 1000', 'Infinity', '1e3'];
    const out = s.processBatch(
      batch([
        ...amounts.map((amount) => ({ key: 'a', ts: '1000', amount })),
        ...times.map((ts) => ({ key: 'a', ts, amount: '1' })),
      ]),
      WALL,
    );
    expect(out.deadLetters.map((d) => [d.index, d.error.split(':')[0]])).toEqual([
      [0, 'E_BAD_FIELD'],
      [1, 'E_BAD_FIELD'],
      [2, 'E_BAD_FIELD'],
      [3, 'E_BAD_FIELD'],
      [4, 'E_BAD_FIELD'],
      [5, 'E_BAD_FIELD'],
      [8, 'E_BAD_TIME'],
      [9, 'E_BAD_TIME'],
      [10, 'E_BAD_TIME'],
    ]);
    expect(out.eventTimes).toEqual([1000, 1000, 1000]); // "16", "1e1" and ts "1e3"
    expect(out.state.windowWrites[0]?.fields).toEqual(['a', '3,27']); // 16 + 10 + 1
  });

  it('compares only decimal strings as numbers in a filter; others make the comparison false', () => {
    const s = shard('  - filter: { where: [{ field: amount, op: gte, value: 10 }] }\n');
    const amounts = ['16', '0x10', ' 16', 'Infinity', '1e999', '1e1', '9'];
    const out = s.processBatch(batch(amounts.map((amount) => ({ key: 'a', ts: '1', amount }))), WALL);
    expect(out.passThrough).toEqual([0, 5]);
    expect(out.counts.filtered).toBe(5);
  });
});

describe('stdout sink', () => {
  it('prints a value that is not valid UTF-8 as {"hex": …}, valid text as a string', () => {
    const line = jsonLine(['key', Uint8Array.of(0xff), 'other', Uint8Array.of(0x6b, 0xfe), 'ok', 'é']);
    expect(JSON.parse(line)).toEqual({ key: { hex: 'ff' }, other: { hex: '6bfe' }, ok: 'é' });
    expect(JSON.parse(jsonLine([Buffer.from('key'), Buffer.from('\uFEFFk')]))).toEqual({ key: '\uFEFFk' });
  });
});
