/**
 * The `map` stage: reshapes the body that later stages and the sink see. Compiled once per shard; per
 * event it builds ONE new body object:
 *
 *   input body ──► copy every own field except removed and renamed ones
 *              ──► renamed fields under their new names (a rename wins over a field of that name)
 *              ──► set fields, computed from the INPUT body (every expression sees the same input)
 *
 * Why a new object and not edits in place: the steps retry as a whole when one throws (steps.ts), and a
 * retry must see the body as decoded; the decoded body stays untouched and `event.body` is swapped for the
 * result (one allocation per event; the decoder makes a fresh body per entry anyway). Every expression is
 * evaluated before anything is built, so an E_EXPRESSION leaves the event as it was.
 *
 * How later stages see the result: they read `event.body` (filter, dedup by content fields, rate limit,
 * order's version), the window's aggregated values are read from it after the steps
 * (EventDecoder.readValues), and a pass-through copy re-encodes it (encodeBody.ts). Event ID and time are
 * read at decode, before the map: a map does not change dedup or event time.
 */
import type { MapConfig } from '../../../config/schema.js';
import { type CompiledExpression, compileExpression, type ExpressionScope } from '../../expr/expression.js';
import type { Body, DecodedEvent } from '../decode.js';

export type MapFn = (ev: DecodedEvent) => void;

/** `out[k] = v`, also for the name `__proto__` (an own field, never the prototype). */
function put(out: Body, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(out, k, { value: v, enumerable: true, writable: true });
  else out[k] = v;
}

/** Compiles a map stage; `where` names it in messages (`stages[2].map`). */
export function compileMap(m: MapConfig, where: string, scope: ExpressionScope): MapFn {
  const setNames = Object.keys(m.set ?? {});
  const sets: CompiledExpression[] = setNames.map((f) =>
    compileExpression((m.set as Record<string, string>)[f] as string, `${where}.set.${f}`, scope),
  );
  const rename = new Map(Object.entries(m.rename ?? {}));
  const skip = new Set([...(m.remove ?? []), ...rename.keys()]);
  const renames = [...rename.entries()];
  const values: unknown[] = new Array(sets.length);
  return (ev) => {
    for (let i = 0; i < sets.length; i++) values[i] = (sets[i] as CompiledExpression).evaluate(ev);
    const input = ev.body;
    const out: Body = {};
    for (const k of Object.keys(input)) if (!skip.has(k)) put(out, k, input[k]);
    for (const [from, to] of renames) if (Object.hasOwn(input, from)) put(out, to, input[from]);
    for (let i = 0; i < sets.length; i++) put(out, setNames[i] as string, values[i]);
    ev.body = out;
  };
}
