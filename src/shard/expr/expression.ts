/**
 * Expressions: conditions (`filter.when`) and computed values (`map.set`) over an event's decoded body,
 * compiled once when the pipeline is built (in the worker; the main thread compiles them too, to report
 * errors at load time) into a plain function.
 *
 * The language is filtrex 3 (chosen by measurement against CEL, JSONata and expr-eval: BENCHMARKS.md,
 * "Expressions", and docs/architecture.md): `type == "OrderCreated" and amount > 100`, `amount * 1.2`,
 * `type + "/" + customer`, `if x then y else z`, `x in (a, b)`, `x ~= "regex"`, `exists(x)`. Filtrex turns
 * the expression into a JavaScript function once; names resolve through {@link ExpressionScope} only (own
 * properties: no prototype, no globals, no calls other than the listed functions).
 *
 * Public API (stable; the `emit` and `project` stages build on it):
 *
 *   compileExpression(src, where, scope?) → CompiledExpression   throws ExpressionSyntaxError (config error)
 *   expressionProblem(src) → string | null                         the same check for the config schema
 *   CompiledExpression.evaluate(ev) → unknown                      throws ExpressionError (E_EXPRESSION)
 *   CompiledExpression.test(ev) → boolean                          a condition: must yield true or false
 *
 * Names: `amount`, `customer.name` (a dot path into the body), `'odd-name'` (quoted), and the envelope names
 * the scope maps to a path (`type`, `source`, `correlationId`… when `body.envelope` sets them: envelope.ts).
 * A missing field is `undefined`: `exists(x)` tests it, and an operator that needs a value fails on it.
 *
 * Types, as today's `filter.where` compares them: where one side of a comparison or an arithmetic operator
 * is a number, a string in decimal notation (every value of a `flat` body) counts as that number; two
 * strings compare as strings; anything else fails the event with E_EXPRESSION and a message naming the
 * value. `+` adds two numbers and joins anything else that is a string or number.
 */
import { compileExpression as filtrex } from 'filtrex';
import { parseDecimal } from '../stages/decode.js';
import type { DecodedEvent } from '../stages/decode.js';
import { ExpressionError, ExpressionSyntaxError } from './errors.js';
import { type ExpressionScope, NO_SCOPE, resolver } from './scope.js';

export { ExpressionError, ExpressionSyntaxError } from './errors.js';
export { type ExpressionScope, NO_SCOPE } from './scope.js';

export interface CompiledExpression {
  /** The expression as written. */
  readonly source: string;
  /** Its value for the event's body. @throws ExpressionError when it fails on this event */
  evaluate(ev: DecodedEvent): unknown;
  /** A condition's value: true or false. @throws ExpressionError on any other value or a failure */
  test(ev: DecodedEvent): boolean;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing (a missing field?)';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (v === null) return 'null';
  if (typeof v === 'object') return Array.isArray(v) ? 'a list' : 'a map';
  return `${typeof v} ${String(v)}`;
}

/** A number, or a string in decimal notation read as one. */
function num(v: unknown, op: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const n = parseDecimal(v);
    if (!Number.isNaN(n)) return n;
  }
  throw new ExpressionError(`\`${op}\` needs numbers, got ${describe(v)}`);
}

/** -1/0/1 for an ordering test: numeric where either side is a number, else two strings. */
function order(a: unknown, b: unknown, op: string): number {
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'number' || typeof b === 'number') {
    const d = num(a, op) - num(b, op);
    return d < 0 ? -1 : d > 0 ? 1 : 0;
  }
  throw new ExpressionError(`\`${op}\` compares numbers or strings, got ${describe(a)} and ${describe(b)}`);
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'string') return parseDecimal(b) === a;
  if (typeof a === 'string' && typeof b === 'number') return parseDecimal(a) === b;
  return false;
}

function plus(a: unknown, b: unknown): unknown {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  const ok = (v: unknown) => typeof v === 'string' || typeof v === 'number';
  if (ok(a) && ok(b)) return String(a) + String(b);
  throw new ExpressionError(`\`+\` adds numbers or joins strings, got ${describe(a)} and ${describe(b)}`);
}

const operators = {
  '+': plus,
  '-': (a: unknown, b: unknown) => (b === undefined ? -num(a, '-') : num(a, '-') - num(b, '-')),
  '*': (a: unknown, b: unknown) => num(a, '*') * num(b, '*'),
  '/': (a: unknown, b: unknown) => num(a, '/') / num(b, '/'),
  '^': (a: unknown, b: unknown) => num(a, '^') ** num(b, '^'),
  mod: (a: unknown, b: unknown) => {
    const m = num(b, 'mod');
    return ((num(a, 'mod') % m) + m) % m;
  },
  '==': equal,
  '!=': (a: unknown, b: unknown) => !equal(a, b),
  '<': (a: unknown, b: unknown) => order(a, b, '<') < 0,
  '<=': (a: unknown, b: unknown) => order(a, b, '<=') <= 0,
  '>': (a: unknown, b: unknown) => order(a, b, '>') > 0,
  '>=': (a: unknown, b: unknown) => order(a, b, '>=') >= 0,
};

/** Functions beyond filtrex's own (abs, ceil, floor, log, log2, log10, max, min, round, sqrt, exists, empty). */
const extraFunctions = {
  /** A number from a number or a decimal string. */
  number: (v: unknown) => num(v, 'number()'),
  /** Text of a string, number or boolean. */
  string: (v: unknown) => {
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw new ExpressionError(`\`string()\` takes a string, number or boolean, got ${describe(v)}`);
  },
  lower: (v: unknown) => str(v, 'lower()').toLowerCase(),
  upper: (v: unknown) => str(v, 'upper()').toUpperCase(),
  length: (v: unknown) => (Array.isArray(v) ? v.length : str(v, 'length()').length),
};

function str(v: unknown, fn: string): string {
  if (typeof v === 'string') return v;
  throw new ExpressionError(`\`${fn}\` takes a string, got ${describe(v)}`);
}

const FUNCTIONS = new Set([
  ...['abs', 'ceil', 'floor', 'log', 'log2', 'log10', 'max', 'min', 'round', 'sqrt', 'exists', 'empty'],
  ...Object.keys(extraFunctions),
]);
const constants = { true: true, false: false, null: null };

/** The compile-time problem of `src` (syntax, unknown function), or null when it compiles. */
export function expressionProblem(src: string): string | null {
  try {
    compileExpression(src, '');
    return null;
  } catch (e) {
    return e instanceof ExpressionSyntaxError ? e.problem : String(e);
  }
}

/**
 * Compiles `src` once. `where` names it in error messages (`stages[1].filter.when`).
 * @throws ExpressionSyntaxError when it does not parse or calls an unknown function
 */
export function compileExpression(
  src: string,
  where: string,
  scope: ExpressionScope = NO_SCOPE,
): CompiledExpression {
  if (src.trim() === '') throw new ExpressionSyntaxError(where, 'empty expression');
  let fn: (data: unknown) => unknown;
  try {
    fn = filtrex(src, { extraFunctions, constants, operators, customProp: resolver(scope) });
  } catch (e) {
    throw new ExpressionSyntaxError(where, parseProblem(e instanceof Error ? e.message : String(e)));
  }
  const unknown = unknownFunction(src);
  if (unknown !== null) {
    throw new ExpressionSyntaxError(
      where,
      `unknown function ${unknown}(); the functions are ${[...FUNCTIONS].join(', ')}`,
    );
  }
  const evaluate = (ev: DecodedEvent): unknown => {
    const v = fn(ev.body);
    // filtrex returns (never throws) what failed: our operators' ExpressionErrors or its own errors
    if (v instanceof Error) throw new ExpressionError(`${where}: ${src}: ${v.message}`);
    return v;
  };
  return {
    source: src,
    evaluate,
    test(ev) {
      const v = evaluate(ev);
      if (v === true || v === false) return v;
      throw new ExpressionError(`${where}: ${src}: a condition must be true or false, got ${describe(v)}`);
    },
  };
}

/** Jison's multi-line message as one line with the column: `parse error at column 9: expecting …`. */
function parseProblem(message: string): string {
  const lines = message.split('\n');
  const caret = lines.find((l) => /^-*\^$/.test(l));
  const column = caret === undefined ? '' : ` at column ${caret.length}`;
  if (lines[0]?.startsWith('Lexical error')) return `unrecognized text${column}`;
  if (lines[0]?.startsWith('Parse error')) {
    const last = (lines[lines.length - 1] ?? '').replace("'EndOfExpression'", 'the end');
    return `parse error${column}: ${last.charAt(0).toLowerCase()}${last.slice(1)}`;
  }
  return message.replace(/\s+/g, ' ');
}

/** The first called name (`foo(`, outside string literals) that is no known function, or null. */
function unknownFunction(src: string): string | null {
  const code = src.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""');
  for (const m of code.matchAll(/([A-Za-z_$][\w$.]*)\s*\(/g)) {
    const name = m[1] as string;
    if (['in', 'not', 'and', 'or', 'if', 'then', 'else', 'mod', 'of'].includes(name)) continue;
    if (!FUNCTIONS.has(name)) return name;
  }
  return null;
}
