/**
 * The shard with expressions, without threads or Redis: `filter.when`, `map` (what the window and the
 * sink see), E_EXPRESSION dead letters (not retried, the original entry, the envelope fields) and later
 * steps reading the mapped body.
 */
import { decode, encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { type PipelineConfig, parseConfig } from '../src/config/load.js';
import { keyGroupOfKey } from '../src/routing/hash.js';
import type { BatchResult } from '../src/shard/protocol.js';
import { Shard } from '../src/shard/shard.js';
import { packBatch, type RawEntry } from './helpers/batches.js';

const WALL = 1_700_000_000_000;
const text = new TextDecoder();

function config(stages: string, extra = ''): PipelineConfig {
  return parseConfig(
    `source: { stream: in }\nsink: { stream: out }\ndeadLetter: { stream: dlq }\nkeyGroups: 16\nshards: 1\nretry: { attempts: 3, backoff: 1ms }\n${extra}stages:\n${stages}`,
    't',
    { env: {} },
  );
}

let seq = 0;
function batch(events: Array<{ key: string; body: unknown }>, encoding = 'msgpack'): ArrayBuffer {
  const entries: RawEntry[] = events.map((e) => {
    const fields: Buffer[] = [Buffer.from('key'), Buffer.from(e.key)];
    if (encoding === 'flat') {
      for (const [k, v] of Object.entries(e.body as Record<string, unknown>))
        fields.push(Buffer.from(k), Buffer.from(String(v)));
    } else {
      const body = encoding === 'json' ? Buffer.from(JSON.stringify(e.body)) : Buffer.from(encode(e.body));
      fields.push(Buffer.from('data'), body);
    }
    return { id: Buffer.from(`1-${seq++}`), fields };
  });
  const kgs = Uint16Array.from(events.map((e) => keyGroupOfKey(e.key, 16)));
  return packBatch(
    entries,
    kgs,
    events.map(() => 1), // the key is field 1
  );
}

/** The fields of output entry `i` as text pairs. */
function fieldsOf(out: BatchResult, i: number): string[] {
  return (out.entryFields[i] as Uint8Array[]).map((f) => text.decode(f));
}

function results(out: BatchResult): Array<Record<string, string>> {
  return out.results.map((r) => {
    const o: Record<string, string> = {};
    for (let i = 0; i < r.length; i += 2) o[String(r[i])] = String(r[i + 1]);
    return o;
  });
}

describe('filter.when', () => {
  it('keeps the events for which the expression is true', () => {
    const shard = new Shard(config(`  - filter: { when: 'type == "A" and amount > 10' }\n`));
    const out = shard.processBatch(
      batch([
        { key: 'k', body: { ts: 1, type: 'A', amount: 11 } },
        { key: 'k', body: { ts: 2, type: 'A', amount: 10 } },
        { key: 'k', body: { ts: 3, type: 'B', amount: 50 } },
      ]),
      WALL,
    );
    expect(out.passThrough).toEqual([0]);
    expect(out.counts.filtered).toBe(2);
  });
});

describe('map', () => {
  it('the window aggregates the mapped fields, and a bad mapped value is E_BAD_FIELD', () => {
    const shard = new Shard(
      config(
        "  - map: { set: { gross: 'net * 2' }, rename: { qty: n } }\n" +
          '  - window: { size: 10s, idleClose: 0, aggregates: [{ fn: sum, field: gross }, { fn: max, field: n }] }\n',
      ),
    );
    const out = shard.processBatch(
      batch([
        { key: 'k', body: { ts: 1, net: 5, qty: 3 } },
        { key: 'k', body: { ts: 2, net: 7, qty: 1 } },
        { key: 'k', body: { ts: 3, net: 1, qty: 'x' } },
        { key: 'k', body: { ts: 20_000, net: 0, qty: 0 } },
      ]),
      WALL,
    );
    expect(out.deadLetters.map((d) => [d.index, d.error])).toEqual([
      [2, 'E_BAD_FIELD: field "n" is not a number'],
    ]);
    expect(results(out)).toEqual([
      { key: 'k', window_start: '0', window_end: '10000', count: '2', sum_gross: '24', max_n: '3' },
    ]);
  });

  it('pass-through carries the mapped body, re-encoded as configured (msgpack, json, flat)', () => {
    const map =
      "  - map: { set: { total: 'amount * 2', label: 'type + \"!\"' }, rename: { type: kind }, remove: [debug] }\n";
    const body = { ts: 1, type: 'A', amount: 4, debug: 'x' };
    const want = { ts: 1, amount: 4, kind: 'A', total: 8, label: 'A!' };

    const m = new Shard(config(map)).processBatch(batch([{ key: 'k', body }]), WALL);
    expect(fieldsOf(m, 0).slice(0, 3)).toEqual(['key', 'k', 'data']);
    expect(decode((m.entryFields[0] as Uint8Array[])[3] as Uint8Array)).toEqual(want);

    const j = new Shard(config(map, 'body: { encoding: json }\n')).processBatch(
      batch([{ key: 'k', body }], 'json'),
      WALL,
    );
    expect(JSON.parse(fieldsOf(j, 0)[3] as string)).toEqual(want);

    const f = new Shard(config(map, 'body: { encoding: flat }\n')).processBatch(
      batch([{ key: 'k', body }], 'flat'),
      WALL,
    );
    expect(fieldsOf(f, 0)).toEqual([
      'key',
      'k',
      'ts',
      '1',
      'amount',
      '4',
      'kind',
      'A',
      'total',
      '8',
      'label',
      'A!',
    ]);
  });

  it('flat bodies: decimal strings compute as numbers', () => {
    const out = new Shard(
      config("  - map: { set: { total: 'amount * 1.5' } }\n", 'body: { encoding: flat }\n'),
    ).processBatch(batch([{ key: 'k', body: { ts: 1, amount: '4' } }], 'flat'), WALL);
    expect(fieldsOf(out, 0)).toEqual(['key', 'k', 'ts', '1', 'amount', '4', 'total', '6']);
  });
});

describe('E_EXPRESSION', () => {
  it('dead-letters the original entry with the message and the envelope, without a retry', () => {
    const shard = new Shard(
      config(
        "  - map: { set: { total: 'amount * 2' } }\n  - filter: { when: 'total > 5' }\n",
        'body: { envelope: { type: type, correlationId: meta.corr, causationId: meta.cause } }\n',
      ),
    );
    const out = shard.processBatch(
      batch([
        { key: 'k', body: { ts: 1, type: 'A', amount: 'abc', meta: { corr: 'c-1' } } },
        { key: 'k', body: { ts: 2, type: 'B', amount: 4 } },
        { key: 'k', body: { ts: 3, type: 'C', meta: { corr: 'c-3', cause: 7 } } },
      ]),
      WALL,
    );
    expect(out.deadLetters.map((d) => [d.index, d.error])).toEqual([
      [0, 'E_EXPRESSION: stages[0].map.set.total: amount * 2: `*` needs numbers, got the string "abc"'],
      [
        2,
        'E_EXPRESSION: stages[0].map.set.total: amount * 2: `*` needs numbers, got nothing (a missing field?)',
      ],
    ]);
    expect(out.counts.stageRetries).toBe(0);
    expect(out.counts.deadLettered).toEqual({ E_EXPRESSION: 2 });
    expect(out.passThrough).toEqual([1]);
    // the original fields (not the mapped body), then the envelope fields the body has
    expect(fieldsOf(out, 0).filter((_, i) => i !== 3)).toEqual([
      'key',
      'k',
      'data',
      'event_type',
      'A',
      'correlation_id',
      'c-1',
    ]);
    expect(decode((out.entryFields[0] as Uint8Array[])[3] as Uint8Array)).toEqual({
      ts: 1,
      type: 'A',
      amount: 'abc',
      meta: { corr: 'c-1' },
    });
    expect(fieldsOf(out, 2).slice(4)).toEqual([
      'event_type',
      'C',
      'correlation_id',
      'c-3',
      'causation_id',
      '7',
    ]);
  });

  it('a late event after a map carries the envelope of the body as decoded', () => {
    const shard = new Shard(
      config(
        '  - map: { rename: { type: kind } }\n  - window: { size: 10s, idleClose: 0 }\n',
        'body: { envelope: { type: type } }\n',
      ),
    );
    const out = shard.processBatch(
      batch([
        { key: 'k', body: { ts: 20_000, type: 'A' } },
        { key: 'k', body: { ts: 1, type: 'B' } },
      ]),
      WALL,
    );
    expect(out.deadLetters.map((d) => d.error.split(':')[0])).toEqual(['E_LATE']);
    expect(fieldsOf(out, 1).slice(4)).toEqual(['event_type', 'B']);
  });

  it('a later step (dedup by content fields) reads the mapped body', () => {
    const shard = new Shard(
      config(
        "  - map: { rename: { a: n }, set: { m: 'a + 1' } }\n  - dedup: { by: content, fields: [n, m] }\n",
      ),
    );
    const out = shard.processBatch(
      batch([
        { key: 'k', body: { ts: 1, a: 1 } },
        { key: 'k', body: { ts: 2, a: 1 } },
        { key: 'k', body: { ts: 3, a: 2 } },
      ]),
      WALL,
    );
    expect(out.passThrough).toEqual([0, 2]);
    expect(out.counts.deduplicated).toBe(1);
  });
});
