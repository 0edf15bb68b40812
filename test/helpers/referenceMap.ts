/**
 * The reference's side of expressions (reference.ts): `filter.when` and `map` spelled out, and the
 * envelope fields of dead letters. It shares no code with the engine: a test gives the MEANING of each
 * expression it uses as a plain function (an oracle, written next to the expression text), which throws
 * {@link RefExpressionError} where the documented rules make the expression fail on the event.
 */
import type { EnvelopeConfig, MapConfig } from '../../src/config/schema.js';
import type { FieldPair } from './reference.js';

export type Body = Record<string, unknown>;
/** What an expression means, for the reference: its value for a body; throws RefExpressionError on failure. */
export type ExpressionOracle = (body: Body) => unknown;

export class RefExpressionError extends Error {}

/** A decimal-notation number (docs/configuration.md "Numbers in strings"), else a failure. */
export function refNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v)) return Number(v);
  throw new RefExpressionError(`not a number: ${String(v)}`);
}

function oracleFor(oracles: ReadonlyMap<string, ExpressionOracle>, src: string): ExpressionOracle {
  const o = oracles.get(src);
  if (o === undefined) throw new Error(`the test gives no oracle for the expression ${JSON.stringify(src)}`);
  return o;
}

/** `filter.when`: true/false, or 'E_EXPRESSION' (a failure, or a value that is not a boolean). */
export function refWhen(
  src: string,
  body: Body,
  oracles: ReadonlyMap<string, ExpressionOracle>,
): boolean | 'E_EXPRESSION' {
  try {
    const v = oracleFor(oracles, src)(body);
    return typeof v === 'boolean' ? v : 'E_EXPRESSION';
  } catch (e) {
    if (e instanceof RefExpressionError) return 'E_EXPRESSION';
    throw e;
  }
}

/**
 * `map` as docs/configuration.md states it: every `set` value is computed from the input body; the output
 * is the input without removed and renamed fields, then the renamed ones under their new names (when
 * present), then the set ones. 'E_EXPRESSION' when a set expression fails.
 */
export function refMap(
  m: MapConfig,
  body: Body,
  oracles: ReadonlyMap<string, ExpressionOracle>,
): Body | 'E_EXPRESSION' {
  const computed: Array<[string, unknown]> = [];
  try {
    for (const [field, src] of Object.entries(m.set ?? {}))
      computed.push([field, oracleFor(oracles, src)(body)]);
  } catch (e) {
    if (e instanceof RefExpressionError) return 'E_EXPRESSION';
    throw e;
  }
  const rename = m.rename ?? {};
  const out: Body = {};
  for (const [k, v] of Object.entries(body)) {
    if ((m.remove ?? []).includes(k) || Object.hasOwn(rename, k)) continue;
    out[k] = v;
  }
  for (const [from, to] of Object.entries(rename)) if (Object.hasOwn(body, from)) out[to] = body[from];
  for (const [k, v] of computed) out[k] = v;
  return out;
}

const DLQ_NAMES: Array<[keyof EnvelopeConfig, string]> = [
  ['type', 'event_type'],
  ['source', 'event_source'],
  ['version', 'event_version'],
  ['correlationId', 'correlation_id'],
  ['causationId', 'causation_id'],
];

/** The envelope fields a dead letter of a decoded event carries: scalars at the configured paths. */
export function refEnvelope(
  envelope: EnvelopeConfig | undefined,
  body: Body,
  getPath: (b: Body, p: string) => unknown,
): FieldPair[] {
  const out: FieldPair[] = [];
  for (const [name, field] of DLQ_NAMES) {
    const path = envelope?.[name];
    if (path === undefined) continue;
    const v = getPath(body, path);
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') {
      out.push([field, Buffer.from(String(v), 'utf8').toString('latin1')]);
    }
  }
  return out;
}
