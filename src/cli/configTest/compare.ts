/**
 * Compares what a test case expected with what the pipeline wrote, and says how they differ.
 *
 * Each expected entry must match its own actual entry (a one-to-one matching, found with augmenting
 * paths, so the order of the expectations never matters), and every actual entry must be matched. For
 * each expectation left over, the diff shows the closest entry left over and the fields that differ.
 */
import type { ExpectedDeadLetter, Scalar } from './cases.js';

/** An entry as written: field name → text, or `{hex}` for bytes that are not UTF-8. */
export type Written = Record<string, string | { hex: string }>;

/** A dead letter as written: its code, key, message and the original fields it carries. */
export interface WrittenDeadLetter {
  code: string;
  key: string | { hex: string } | null;
  message: string;
  fields: Written;
}

/** A field's value matches: a number by value (`15` ~ "15.0"), anything else by its text. */
export function valueMatches(expected: Scalar, actual: string | { hex: string } | undefined | null): boolean {
  if (typeof actual !== 'string') return false;
  if (typeof expected === 'number') return actual.trim() !== '' && Number(actual) === expected;
  return actual === String(expected);
}

/** The names of the fields of `expected` that `actual` does not match. */
function fieldDiffs(expected: Record<string, Scalar>, actual: Written): string[] {
  return Object.keys(expected).filter((k) => !valueMatches(expected[k] as Scalar, actual[k]));
}

function deadLetterDiffs(e: ExpectedDeadLetter, a: WrittenDeadLetter): string[] {
  const out: string[] = [];
  if (e.code !== a.code) out.push('code');
  if (e.key !== undefined && !valueMatches(e.key, a.key)) out.push('key');
  if (e.message !== undefined && !a.message.includes(e.message)) out.push('message');
  if (e.fields !== undefined) out.push(...fieldDiffs(e.fields, a.fields).map((f) => `fields.${f}`));
  return out;
}

export interface Comparison {
  ok: boolean;
  /** Readable lines, empty when ok. */
  lines: string[];
}

/** One-to-one matching of `exp` to `act` where `fits` holds (Kuhn's augmenting paths; inputs are small). */
function matching<E, A>(exp: E[], act: A[], fits: (e: E, a: A) => boolean): Array<number | null> {
  const owner: Array<number | null> = act.map(() => null);
  const tryAssign = (e: number, seen: boolean[]): boolean => {
    for (let a = 0; a < act.length; a++) {
      if (seen[a] || !fits(exp[e] as E, act[a] as A)) continue;
      seen[a] = true;
      const o = owner[a] as number | null;
      if (o === null || tryAssign(o, seen)) {
        owner[a] = e;
        return true;
      }
    }
    return false;
  };
  exp.forEach((_, e) =>
    tryAssign(
      e,
      act.map(() => false),
    ),
  );
  const matchOf: Array<number | null> = exp.map(() => null);
  owner.forEach((e, a) => {
    if (e !== null) matchOf[e] = a;
  });
  return matchOf;
}

function compareLists<E, A>(
  what: string,
  exp: E[],
  act: A[],
  diffs: (e: E, a: A) => string[],
  show: { expected: (e: E) => string; actual: (a: A) => string },
): Comparison {
  const matchOf = matching(exp, act, (e, a) => diffs(e, a).length === 0);
  const used = new Set(matchOf.filter((m): m is number => m !== null));
  const leftActual = act.map((_, i) => i).filter((i) => !used.has(i));
  const missing = exp.map((_, i) => i).filter((i) => matchOf[i] === null);
  if (missing.length === 0 && leftActual.length === 0) return { ok: true, lines: [] };
  const lines = [
    `${what}: expected ${exp.length}, got ${act.length}` +
      ` (${missing.length} expected not found, ${leftActual.length} not expected)`,
  ];
  for (const i of missing) {
    const e = exp[i] as E;
    lines.push(`  - expected  ${show.expected(e)}`);
    let best: { a: number; d: string[] } | null = null;
    for (const a of leftActual) {
      const d = diffs(e, act[a] as A);
      if (best === null || d.length < best.d.length) best = { a, d };
    }
    if (best !== null) {
      lines.push(`    closest   ${show.actual(act[best.a] as A)}`);
      lines.push(`    differs in ${best.d.join(', ')}`);
    }
  }
  for (const a of leftActual) lines.push(`  + unexpected ${show.actual(act[a] as A)}`);
  return { ok: false, lines };
}

export function compareResults(expected: Array<Record<string, Scalar>>, actual: Written[]): Comparison {
  return compareLists('results', expected, actual, fieldDiffs, {
    expected: (e) => JSON.stringify(e),
    actual: (a) => JSON.stringify(a),
  });
}

export function compareDeadLetters(expected: ExpectedDeadLetter[], actual: WrittenDeadLetter[]): Comparison {
  return compareLists('dead letters', expected, actual, deadLetterDiffs, {
    expected: (e) => JSON.stringify(e),
    actual: (a) => JSON.stringify(a),
  });
}
