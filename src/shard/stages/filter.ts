/**
 * Filter: keeps an event when every condition holds. Each condition is compiled once into a closure.
 */
import type { Condition, FilterConfig } from '../../config/schema.js';
import { type Body, compilePath, type Getter, toNumber } from './decode.js';

export type Predicate = (body: Body) => boolean;

function compare(a: unknown, b: unknown): number | null {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  return null; // incomparable: every ordering test is false
}

/**
 * Where the configured value is a number, the field's value is read as a number too, so that numeric
 * strings (every value of a `flat` entry is a string) compare as numbers: `amount gte 500` holds for "750".
 * Only a finite number in decimal notation counts (`toNumber`): "0x2710", " 750 " or "1e999" stay strings,
 * so an ordering test against a number is false for them.
 */
function reader(get: Getter, value: unknown): Getter {
  if (typeof value !== 'number' && !(Array.isArray(value) && value.some((v) => typeof v === 'number')))
    return get;
  return (b) => {
    const v = get(b);
    if (typeof v !== 'string') return v;
    const n = toNumber(v);
    return Number.isFinite(n) ? n : v;
  };
}

export function compileCondition(c: Condition): Predicate {
  const v = c.value;
  const get = reader(compilePath(c.field), v);
  switch (c.op) {
    case 'eq':
      return (b) => get(b) === v;
    case 'ne':
      return (b) => get(b) !== v;
    case 'gt':
      return (b) => (compare(get(b), v) ?? -1) > 0;
    case 'gte':
      return (b) => (compare(get(b), v) ?? -1) >= 0;
    case 'lt':
      return (b) => (compare(get(b), v) ?? 1) < 0;
    case 'lte':
      return (b) => (compare(get(b), v) ?? 1) <= 0;
    case 'in': {
      const set = new Set<unknown>(Array.isArray(v) ? v : [v]);
      return (b) => set.has(get(b));
    }
    case 'exists': {
      const want = v !== false;
      return (b) => (get(b) !== undefined) === want;
    }
  }
}

/** One filter stage's `where`: its conditions ANDed (a `when` expression is a step of its own, steps.ts). */
export function compileFilter(filter: FilterConfig): Predicate {
  const preds = (filter.where ?? []).map(compileCondition);
  if (preds.length === 1) return preds[0] as Predicate;
  return (b) => {
    for (const p of preds) if (!p(b)) return false;
    return true;
  };
}
