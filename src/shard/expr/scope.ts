/**
 * How an expression's names find their values in a body: an envelope name the scope maps to a path
 * (`correlationId` → `meta.correlation`), else the name itself as a dot path (`customer.name`). Only own
 * properties are read at every step, so `constructor`, `__proto__` or `toString` are missing fields, never
 * the prototype's. A name's getter is compiled the first time an event asks for it, then reused.
 */
import type { Body } from '../stages/decode.js';

/** Names (envelope fields) that read another path than their own: name → dot path into the body. */
export type ExpressionScope = ReadonlyMap<string, string>;
export const NO_SCOPE: ExpressionScope = new Map();

type Getter = (body: unknown) => unknown;

/** A getter of `path` that reads own properties only; undefined where a step is missing. */
export function ownPath(path: string): Getter {
  const parts = path.split('.');
  if (parts.length === 1) {
    return (b) =>
      b !== null && typeof b === 'object' && Object.hasOwn(b, path) ? (b as Body)[path] : undefined;
  }
  return (b) => {
    let v: unknown = b;
    for (const p of parts) {
      if (v === null || typeof v !== 'object' || !Object.hasOwn(v, p)) return undefined;
      v = (v as Body)[p];
    }
    return v;
  };
}

/** filtrex's `customProp`: resolves a name of the expression on the body it is called with. */
export function resolver(
  scope: ExpressionScope,
): (name: string, get: unknown, obj: unknown, type: string) => unknown {
  const getters = new Map<string, Getter>();
  const quoted = new Map<string, Getter>();
  return (name, _get, obj, type) => {
    // a quoted name ('odd-name', 'a.b') is one literal field name: neither a path nor an envelope name
    const cache = type === 'single-quoted' ? quoted : getters;
    let g = cache.get(name);
    if (g === undefined) {
      if (type === 'single-quoted') {
        g = (b) =>
          b !== null && typeof b === 'object' && Object.hasOwn(b, name) ? (b as Body)[name] : undefined;
      } else g = ownPath(scope.get(name) ?? name);
      cache.set(name, g);
    }
    return g(obj);
  };
}
