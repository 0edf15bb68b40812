/**
 * The project stage's config: what it accepts, each mistake reported with its path and fix, and the key
 * template's `{key}`/`{tag}` placeholders and hash tags (unit, no Redis).
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/errors.js';
import { hashTagOf, projectionKey } from '../src/shard/stages/project/keyTemplate.js';

const MIN = 'source: { stream: orders }\nsink: { stream: out }\ndeadLetter: { stream: dlq }\n';

function problems(stages: string): string[] {
  try {
    parseConfig(`${MIN}stages:\n${stages}`, 'test.yaml', { env: {} });
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => `${p.path}: ${p.message}`);
    throw e;
  }
  throw new Error('expected the config to be rejected');
}

describe('project stage config', () => {
  it('parses a projection with every reducer and a ttl', () => {
    const c = parseConfig(
      `${MIN}stages:\n  - dedup: {}\n  - project:\n      key: "proj:{tag}:{key}"\n      ttl: 7d\n      fields:\n` +
        '        n: { fn: count }\n        total: { fn: sum, field: amount }\n        lo: { fn: min, field: amount }\n' +
        '        hi: { fn: max, field: amount }\n        status: { fn: latest, field: status }\n' +
        '        firstId: { fn: first, field: id }\n        seen: { fn: last_seen }\n  - window: { size: 1m }\n',
      't',
      { env: {} },
    );
    expect(c.stages[1]).toEqual({
      project: {
        key: 'proj:{tag}:{key}',
        ttl: 604_800_000,
        fields: {
          n: { fn: 'count' },
          total: { fn: 'sum', field: 'amount' },
          lo: { fn: 'min', field: 'amount' },
          hi: { fn: 'max', field: 'amount' },
          status: { fn: 'latest', field: 'status' },
          firstId: { fn: 'first', field: 'id' },
          seen: { fn: 'last_seen' },
        },
      },
    });
  });

  it('names the path and the fix of each mistake', () => {
    expect(problems('  - project: { key: "proj:customer", fields: { n: { fn: count } } }\n')).toEqual([
      'stages[0].project.key: must contain {key} exactly once, e.g. "proj:customer:{key}", got "proj:customer"',
    ]);
    expect(problems('  - project: { key: "p:{id}:{key}", fields: { n: { fn: count } } }\n')).toEqual([
      'stages[0].project.key: unknown placeholder "{id}": a key template takes {key} (the event\'s key) and {tag} (the input stream\'s Redis Cluster hash tag)',
    ]);
    expect(problems('  - project: { key: "p:{key}", fields: {} }\n')).toEqual([
      'stages[0].project.fields: needs at least one field, e.g. fields: { orders: { fn: count } }',
    ]);
    expect(problems('  - project: { key: "p:{key}", fields: { total: { fn: sum } } }\n')).toEqual([
      'stages[0].project.fields.total.field: `sum` needs a field, e.g. field: amount',
    ]);
    expect(problems('  - project: { key: "p:{key}", fields: { n: { fn: count, field: x } } }\n')).toEqual([
      'stages[0].project.fields.n.field: `count` takes no field',
    ]);
    expect(problems('  - project: { key: "p:{key}", fields: { _pos: { fn: count } } }\n')).toEqual([
      'stages[0].project.fields._pos: a hash field name must not be empty, start with "_" (reserved: _pos) or contain spaces',
    ]);
    expect(problems('  - project: { key: "p:{key}", fields: { n: { fn: avg } } }\n')[0]).toMatch(
      /^stages\[0\]\.project\.fields\.n\.fn: /,
    );
    expect(problems('  - project: { key: "p:{key}", ttl: soon, fields: { n: { fn: count } } }\n')).toEqual([
      'stages[0].project.ttl: expected a duration like "10s", got "soon"',
    ]);
  });

  it('keeps project after the other stages (only a window may follow) and keys distinct', () => {
    expect(
      problems('  - project: { key: "p:{key}", fields: { n: { fn: count } } }\n  - dedup: {}\n'),
    ).toEqual([
      'stages[1]: a dedup stage cannot follow the project stage (stages[0]): put project after filter, dedup, rateLimit and order; only a window may follow it',
    ]);
    expect(
      problems(
        '  - project: { key: "p:{key}", fields: { n: { fn: count } } }\n  - project: { key: "p:{key}", fields: { m: { fn: count } } }\n',
      ),
    ).toEqual(['stages[1].project.key: two project stages write the same key']);
  });
});

describe('projection keys', () => {
  it('puts the hash under the input stream’s hash tag', () => {
    expect(hashTagOf('orders')).toBe('{orders}');
    expect(hashTagOf('orders:{orders:7}')).toBe('{orders:7}');
    expect(hashTagOf('a{}b')).toBe('{a{}b}'); // an empty tag: Redis hashes the whole name
    const key = projectionKey('proj:{tag}:{key}:v1', hashTagOf('orders'));
    expect(key('c-17')).toBe('proj:{orders}:c-17:v1');
    // a key's exact bytes (latin1 text: one char per byte), not re-encoded
    expect([...key('\xff\xfe')].slice(14, 16)).toEqual([0xff, 0xfe]);
  });
});
