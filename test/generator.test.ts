import { decode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import {
  type EventKind,
  FUTURE_TS,
  type GeneratedEvent,
  type GeneratorOptions,
  generateEvents,
  WIDE_ENTRY_PAIRS,
} from '../src/tools/produce/generator.js';

const base: GeneratorOptions = {
  count: 10_000,
  keys: 50,
  seed: 42,
  duplicatePct: 10,
  outOfOrderPct: 5,
  malformedPct: 6,
  startTs: 1_700_000_000_000,
  intervalMs: 0.5,
  outOfOrderMaxMs: 2000,
  encoding: 'msgpack',
};

type Body = Record<string, unknown>;

/** Field name → value, as a consumer would see the entry. */
function asMap(fields: GeneratedEvent['fields']): Map<string, string | Buffer> {
  const m = new Map<string, string | Buffer>();
  for (let i = 0; i < fields.length; i += 2) m.set(String(fields[i]), fields[i + 1] as string | Buffer);
  return m;
}

function bodyOf(e: GeneratedEvent, encoding: GeneratorOptions['encoding']): Body {
  const m = asMap(e.fields);
  if (encoding === 'flat') {
    m.delete('key');
    return Object.fromEntries(m);
  }
  const raw = m.get('data');
  if (encoding === 'json') return JSON.parse(String(raw)) as Body;
  return decode(raw as Buffer) as Body;
}

const all = (opts: GeneratorOptions): GeneratedEvent[] => [...generateEvents(opts)];

describe('generateEvents', () => {
  it('is deterministic: the same seed gives the same entries, another seed different ones', () => {
    for (const encoding of ['msgpack', 'json', 'flat'] as const) {
      const a = all({ ...base, encoding, count: 2000 });
      const b = all({ ...base, encoding, count: 2000 });
      expect(b).toEqual(a);
      const c = all({ ...base, encoding, count: 2000, seed: 43 });
      expect(c).not.toEqual(a);
    }
  });

  it('hostile entries cycle through their kinds; without them the sequence is unchanged', () => {
    const plain = all(base);
    const withHostile = all({ ...base, hostilePct: 2 });
    const hostile = withHostile.filter((e) => e.kind === 'hostile');
    expect(hostile.length).toBeGreaterThan(100);
    // without hostile entries the sequence is the one of today; with them it is the same up to the first
    const first = withHostile.findIndex((e) => e.kind === 'hostile');
    expect(all({ ...base, hostilePct: 0 })).toEqual(plain);
    expect(withHostile.slice(0, first)).toEqual(plain.slice(0, first));
    for (let i = 0; i < 8; i++) {
      const m = asMap((hostile[i] as GeneratedEvent).fields);
      const body = decode(m.get('data') as Buffer) as Body;
      const key = m.get('key') as string | Buffer;
      switch (i % 4) {
        case 0:
          expect(body.ts).toBe(FUTURE_TS);
          break;
        case 1:
          expect(body.amount).toBe('0x10');
          break;
        case 2:
          expect((hostile[i] as GeneratedEvent).fields).toHaveLength(4 + 2 * WIDE_ENTRY_PAIRS);
          expect(m.get(`x${WIDE_ENTRY_PAIRS - 1}`)).toBe(String(WIDE_ENTRY_PAIRS - 1));
          break;
        case 3:
          expect(Buffer.isBuffer(key)).toBe(true);
          expect([...(key as Buffer).subarray(0, 2)]).toEqual([0xff, 0xfe]);
          expect(new TextDecoder('utf-8', { fatal: true }).decode.bind(null, key as Buffer)).toThrow();
          break;
      }
    }
  });

  it('produces exactly count entries and roughly honours the percentages', () => {
    const events = all(base);
    expect(events).toHaveLength(base.count);
    const by: Record<EventKind, number> = {
      ok: 0,
      duplicate: 0,
      'out-of-order': 0,
      malformed: 0,
      hostile: 0,
    };
    for (const e of events) by[e.kind]++;
    const pct = (k: EventKind): number => (by[k] / base.count) * 100;
    expect(pct('duplicate')).toBeGreaterThan(base.duplicatePct - 1.5);
    expect(pct('duplicate')).toBeLessThan(base.duplicatePct + 1.5);
    expect(pct('out-of-order')).toBeGreaterThan(base.outOfOrderPct - 1.5);
    expect(pct('out-of-order')).toBeLessThan(base.outOfOrderPct + 1.5);
    expect(pct('malformed')).toBeGreaterThan(base.malformedPct - 1.5);
    expect(pct('malformed')).toBeLessThan(base.malformedPct + 1.5);
  });

  for (const encoding of ['msgpack', 'json', 'flat'] as const) {
    it(`${encoding}: good events have well-formed bodies and per-key seq 1, 2, 3…`, () => {
      const events = all({ ...base, encoding });
      const lastSeq = new Map<string, number>();
      const problems: string[] = [];
      const check = (ok: boolean, position: number, what: string): void => {
        if (!ok && problems.length < 10) problems.push(`entry ${position}: ${what}`);
      };
      let good = 0;
      events.forEach((e, position) => {
        if (e.kind !== 'ok' && e.kind !== 'out-of-order') return;
        good++;
        const key = String(asMap(e.fields).get('key'));
        check(/^k\d+$/.test(key) && Number(key.slice(1)) < base.keys, position, `key ${key}`);
        const b = bodyOf(e, encoding);
        check(b.id === `${base.seed}-${position}`, position, `id ${String(b.id)}`);
        const seq = Number(b.seq);
        check(seq === (lastSeq.get(key) ?? 0) + 1, position, `seq ${seq} after ${lastSeq.get(key)}`);
        lastSeq.set(key, seq);
        const amount = Number(b.amount);
        check(Number.isInteger(amount) && amount >= 1 && amount <= 1000, position, `amount ${amount}`);
        check(b.type === 'order' || b.type === 'refund', position, `type ${String(b.type)}`);
        const nominal = Math.floor(base.startTs + position * base.intervalMs);
        const ts = Number(b.ts);
        check(Number.isInteger(ts), position, `ts ${String(b.ts)}`);
        if (e.kind === 'ok') check(ts === nominal, position, `ts ${ts}, expected ${nominal}`);
        else check(nominal - ts >= 1 && nominal - ts <= base.outOfOrderMaxMs, position, `ooo ts ${ts}`);
      });
      expect(problems).toEqual([]);
      expect(good).toBeGreaterThan(base.count * 0.7);
    });
  }

  it('duplicates re-send an earlier good event exactly', () => {
    const events = all(base);
    const seen = new Set<string>();
    for (const e of events) {
      const id = JSON.stringify(e.fields.map((f) => (Buffer.isBuffer(f) ? f.toString('hex') : f)));
      if (e.kind === 'duplicate') expect(seen.has(id)).toBe(true);
      if (e.kind === 'ok' || e.kind === 'out-of-order') seen.add(id);
    }
  });

  it('type is "order" about 90 % of the time', () => {
    const events = all({ ...base, duplicatePct: 0, malformedPct: 0, encoding: 'json' });
    const orders = events.filter((e) => bodyOf(e, 'json').type === 'order').length;
    expect(orders / events.length).toBeGreaterThan(0.87);
    expect(orders / events.length).toBeLessThan(0.93);
  });

  /** Which malformed kind an entry is, judged from the outside as a consumer would. */
  function classify(e: GeneratedEvent, encoding: GeneratorOptions['encoding']): string {
    const m = asMap(e.fields);
    if (!m.has('key')) return 'missing-key';
    if (m.get('key') === '') return 'empty-key';
    let b: Body;
    try {
      b = bodyOf(e, encoding);
    } catch {
      return 'undecodable-body';
    }
    if (!('ts' in b)) return 'missing-ts';
    if (b.ts === 'yesterday') return 'bad-ts';
    if (b.amount === 'abc') return 'bad-amount';
    return 'not malformed';
  }

  for (const encoding of ['msgpack', 'json', 'flat'] as const) {
    it(`${encoding}: malformed entries cycle through every kind`, () => {
      const malformed = all({ ...base, encoding }).filter((e) => e.kind === 'malformed');
      const kinds = malformed.map((e) => classify(e, encoding));
      // flat has no body to garble: its "undecodable body" is a missing ts.
      const expected =
        encoding === 'flat'
          ? ['missing-ts', 'missing-key', 'missing-ts', 'bad-ts', 'bad-amount', 'empty-key']
          : ['undecodable-body', 'missing-key', 'missing-ts', 'bad-ts', 'bad-amount', 'empty-key'];
      expect(kinds.length).toBeGreaterThan(100);
      kinds.forEach((k, i) => {
        expect(k).toBe(expected[i % expected.length]);
      });
    });
  }

  it('honours custom field names and a zero count', () => {
    const [e] = all({ ...base, count: 1, keyField: 'aggregate', bodyField: 'payload' });
    expect(e?.fields[0]).toBe('aggregate');
    expect(e?.fields[2]).toBe('payload');
    expect(all({ ...base, count: 0 })).toEqual([]);
  });

  it('rejects out-of-range options', () => {
    expect(() => all({ ...base, duplicatePct: 60, malformedPct: 50 })).toThrow(/≤ 100/);
    expect(() => all({ ...base, keys: 0 })).toThrow(/keys/);
    expect(() => all({ ...base, count: 1.5 })).toThrow(/count/);
  });
});
