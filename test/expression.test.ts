/**
 * The expression module (src/shard/expr/): compile once, evaluate over a body, the types as today's filter
 * compares them, E_EXPRESSION failures with a message naming the value, compile errors naming the
 * problem and column, envelope names, and safety (no prototype, no globals, no unknown functions).
 */
import { describe, expect, it } from 'vitest';
import {
  compileExpression,
  ExpressionError,
  ExpressionSyntaxError,
  expressionProblem,
} from '../src/shard/expr/expression.js';
import type { DecodedEvent } from '../src/shard/stages/decode.js';

const ev = (body: Record<string, unknown>): DecodedEvent => ({
  body,
  ts: 0,
  type: undefined,
  id: '',
  values: new Float64Array(0),
});
const val = (src: string, body: Record<string, unknown>, scope?: Map<string, string>) =>
  compileExpression(src, 'stages[0].filter.when', scope).evaluate(ev(body));
const fails = (src: string, body: Record<string, unknown>): string => {
  try {
    val(src, body);
  } catch (e) {
    expect(e).toBeInstanceOf(ExpressionError);
    return (e as Error).message;
  }
  throw new Error(`${src} did not fail`);
};

const order = { type: 'OrderCreated', amount: 150, customer: { name: 'Al', tier: 2 }, tags: ['a'] };

describe('evaluate', () => {
  it('conditions, arithmetic, strings, dot paths and functions', () => {
    expect(val('type == "OrderCreated" and amount > 100', order)).toBe(true);
    expect(val('type == "OrderCreated" and amount > 200', order)).toBe(false);
    expect(val('amount * 1.2', order)).toBe(180);
    expect(val('type + "/" + customer.name', order)).toBe('OrderCreated/Al');
    expect(val('customer.tier + 1', order)).toBe(3);
    expect(val('if amount >= 100 then "big" else "small"', order)).toBe('big');
    expect(val('type in ("OrderCreated", "OrderPaid")', order)).toBe(true);
    expect(val('type ~= "^Order"', order)).toBe(true);
    expect(val('exists(missing) or not exists(type)', order)).toBe(false);
    expect(val('round(amount / 7)', order)).toBe(21);
    expect(val('upper(type) + string(amount)', order)).toBe('ORDERCREATED150');
    expect(val('amount mod 7', order)).toBe(3);
    expect(val('true and not false', order)).toBe(true);
    expect(val("'odd-name' * 2", { 'odd-name': 4 })).toBe(8);
  });

  it('reads decimal strings as numbers where the other side is a number, as filter.where does', () => {
    const flat = { amount: '150', zip: '0123', name: 'x' };
    expect(val('amount > 100', flat)).toBe(true);
    expect(val('amount == 150', flat)).toBe(true);
    expect(val('amount * 2', flat)).toBe(300);
    expect(val('zip == "0123"', flat)).toBe(true);
    expect(val('"b" > "a"', flat)).toBe(true);
    expect(val('number(amount) + 1', flat)).toBe(151);
    expect(val('amount + 1', flat)).toBe('1501'); // `+` joins when a side is a string
  });

  it('compiles once and evaluates many bodies', () => {
    const c = compileExpression('amount > 100', 'w');
    expect([50, 150, 101, 100].map((amount) => c.test(ev({ amount })))).toEqual([false, true, true, false]);
  });

  it('envelope names read their configured path; other names the body', () => {
    const scope = new Map([['correlationId', 'meta.corr']]);
    const body = { meta: { corr: 'c-1' }, correlationId: 'shadowed' };
    expect(val('correlationId', body, scope)).toBe('c-1');
    expect(val("'correlationId'", body, scope)).toBe('shadowed');
    expect(val('meta.corr', body, scope)).toBe('c-1');
  });
});

describe('failures on an event (E_EXPRESSION)', () => {
  it('names where, the expression and the value', () => {
    expect(fails('amount * 2', { amount: 'abc' })).toBe(
      'stages[0].filter.when: amount * 2: `*` needs numbers, got the string "abc"',
    );
    expect(fails('amount > 2', {})).toContain(
      'amount > 2: `>` needs numbers, got nothing (a missing field?)',
    );
    expect(fails('amount + 1', { amount: { a: 1 } })).toContain(
      '`+` adds numbers or joins strings, got a map',
    );
    expect(fails('lower(amount)', { amount: 1 })).toContain('`lower()` takes a string, got number 1');
    expect(fails('not flag', { flag: 'yes' })).toContain('not flag: Expected a logical value');
    expect(fails('a < b', { a: true, b: 1 })).toContain('`<` needs numbers, got boolean true');
    expect(fails('a < b', { a: null, b: 'x' })).toContain(
      '`<` compares numbers or strings, got null and the string "x"',
    );
  });

  it('a condition must be true or false', () => {
    const c = compileExpression('amount', 'stages[1].filter.when');
    expect(() => c.test(ev({ amount: 3 }))).toThrow(
      'stages[1].filter.when: amount: a condition must be true or false, got number 3',
    );
  });

  it('never reaches the prototype, globals or constructors', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'process', 'globalThis']) {
      expect(val(`exists(${name})`, { a: 1 })).toBe(false);
      expect(val(`exists(a.${name})`, { a: { b: 1 } })).toBe(false);
    }
    expect(val('exists(__proto__)', JSON.parse('{"__proto__": 5}'))).toBe(true);
    expect(val('"x" + constructor', { constructor: 'own' })).toBe('xown');
  });
});

describe('compile errors (config errors)', () => {
  it('name the problem and the column', () => {
    expect(expressionProblem('amount > ')).toBe(
      "parse error at column 10: expecting '-', 'not', 'if', '(', 'Number', 'Symbol', 'String', got the end",
    );
    expect(expressionProblem('amount = 1')).toBe('unrecognized text at column 8');
    expect(expressionProblem('"unterminated')).toBe('unrecognized text at column 1');
    expect(expressionProblem('  ')).toBe('empty expression');
    expect(expressionProblem('type == "a" and amount > 1')).toBeNull();
  });

  it('reject unknown functions at compile time, not per event', () => {
    expect(expressionProblem('eval("1")')).toMatch(/^unknown function eval\(\); the functions are abs, ceil/);
    expect(expressionProblem('x in (1, 2) and abs(x) > 1')).toBeNull();
    expect(expressionProblem('"f(" == x')).toBeNull(); // inside a string literal
    expect(() => compileExpression('foo(1)', 'stages[2].map.set.total')).toThrow(ExpressionSyntaxError);
    expect(() => compileExpression('foo(1)', 'stages[2].map.set.total')).toThrow(
      /^stages\[2\]\.map\.set\.total: unknown function foo\(\)/,
    );
  });
});
