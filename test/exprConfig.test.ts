/**
 * Config of expressions: `filter.when`, the `map` stage and `body.envelope` — accepted forms, and every
 * problem reported with its path and the fix, at load time (the main thread compiles each expression).
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/errors.js';

const MIN = 'source: { stream: in }\nsink: { stream: out }\ndeadLetter: { stream: dlq }\n';

function problems(text: string): string[] {
  try {
    parseConfig(text, 'test.yaml', { env: {} });
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => `${p.path}: ${p.message}`);
    throw e;
  }
  throw new Error('expected the config to be rejected');
}

describe('expression config', () => {
  it('accepts filter.when, map and body.envelope', () => {
    const c = parseConfig(
      `${MIN}body: { envelope: { type: type, correlationId: meta.corr } }\nstages:\n` +
        '  - filter: { when: \'type == "OrderCreated" and amount > 100\' }\n' +
        '  - filter: { where: [{ field: amount, op: gt, value: 1 }] }\n' +
        "  - map: { set: { total: 'amount * 1.2' }, rename: { amount: net }, remove: [debug] }\n",
      't',
      { env: {} },
    );
    expect(c.body.envelope).toEqual({ type: 'type', correlationId: 'meta.corr' });
    expect(c.stages[0]).toEqual({ filter: { when: 'type == "OrderCreated" and amount > 100' } });
    expect(c.stages[2]).toEqual({
      map: { set: { total: 'amount * 1.2' }, rename: { amount: 'net' }, remove: ['debug'] },
    });
  });

  it('reports expression errors with the path of the expression', () => {
    expect(
      problems(
        `${MIN}stages:\n  - dedup: {}\n  - filter: { when: 'amount >' }\n  - map: { set: { total: 'foo(amount)' } }\n`,
      ),
    ).toEqual([
      "stages[1].filter.when: parse error at column 9: expecting '-', 'not', 'if', '(', 'Number', 'Symbol', 'String', got the end",
      'stages[2].map.set.total: unknown function foo(); the functions are abs, ceil, floor, log, log2, log10, max, min, round, sqrt, exists, empty, number, string, lower, upper, length',
    ]);
  });

  it('a filter takes exactly one of where and when', () => {
    const both = `${MIN}stages:\n  - filter: { when: 'a > 1', where: [{ field: a, op: gt, value: 1 }] }\n`;
    const need =
      'stages[0].filter: needs exactly one of `where` (a list of comparisons) or `when` (an expression)';
    expect(problems(both)).toEqual([need]);
    expect(problems(`${MIN}stages:\n  - filter: {}\n`)).toEqual([need]);
  });

  it('map: names the wrong field and the fix', () => {
    expect(problems(`${MIN}stages:\n  - map: {}\n`)).toEqual([
      'stages[0].map: needs at least one of set, rename, remove',
    ]);
    expect(problems(`${MIN}stages:\n  - map: { set: { a.b: '1' } }\n`)).toEqual([
      'stages[0].map.set.a.b: a top-level field name (no dots): map writes top-level fields; expressions may read a.b',
    ]);
    expect(
      problems(
        `${MIN}stages:\n  - map: { rename: { a: x, b: x, c: s }, remove: [a], set: { s: '1' } }\n`,
      ).sort(),
    ).toEqual([
      'stages[0].map.rename.a: "a" is also removed: rename or remove it',
      'stages[0].map.rename.b: two fields are renamed to "x"',
      'stages[0].map.rename.c: "s" is also set: rename to another name',
    ]);
    expect(problems(`${MIN}stages:\n  - map: { sett: {} }\n`)).toEqual([
      'stages[0].map: unknown option(s) "sett"',
      'stages[0].map: needs at least one of set, rename, remove',
    ]);
  });

  it('a map before the order stage is refused (held events are re-read raw)', () => {
    expect(problems(`${MIN}stages:\n  - map: { remove: [x] }\n  - order: { versionPath: v }\n`)).toEqual([
      'stages[0]: a map stage must come after the order stage (held events are re-read raw)',
    ]);
    expect(() =>
      parseConfig(`${MIN}stages:\n  - order: { versionPath: v }\n  - map: { remove: [x] }\n`, 't', {
        env: {},
      }),
    ).not.toThrow();
  });

  it('envelope: unknown names and empty paths', () => {
    expect(problems(`${MIN}body: { envelope: { kind: type, source: '' } }\n`).sort()).toEqual([
      "body.envelope.source: Dot path of the event's source (the producing service). must not be empty",
      'body.envelope: unknown option(s) "kind"',
    ]);
  });
});
