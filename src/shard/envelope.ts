/**
 * The event envelope besides ID and time (`body.envelope`): the names expressions read it by, and the
 * fields a dead-letter entry carries so that a failed event can be traced across services:
 *
 *   body.envelope.type          → expression name `type`           → dead-letter field `event_type`
 *   body.envelope.source        → `source`                         → `event_source`
 *   body.envelope.version       → `version`                        → `event_version`
 *   body.envelope.correlationId → `correlationId`                  → `correlation_id`
 *   body.envelope.causationId   → `causationId`                    → `causation_id`
 *
 * Values are read from the body as the entry was decoded (before any `map`); a missing one, or one that is
 * a map or a list, adds no field. Only configured names are read: without `body.envelope` nothing is.
 */
import type { BodyConfig } from '../config/schema.js';
import type { ExpressionScope } from './expr/expression.js';
import { ownPath } from './expr/scope.js';
import type { Body } from './stages/decode.js';

const DEAD_LETTER_FIELD = {
  type: 'event_type',
  source: 'event_source',
  version: 'event_version',
  correlationId: 'correlation_id',
  causationId: 'causation_id',
} as const;
type EnvelopeName = keyof typeof DEAD_LETTER_FIELD;

/** Most fields the envelope adds to a dead letter (names and values). */
export const ENVELOPE_FIELDS = 2 * Object.keys(DEAD_LETTER_FIELD).length;

function configured(body: BodyConfig): Array<[EnvelopeName, string]> {
  const e = body.envelope ?? {};
  return (Object.keys(DEAD_LETTER_FIELD) as EnvelopeName[]).flatMap((n) => {
    const path = e[n];
    return path === undefined ? [] : [[n, path] as [EnvelopeName, string]];
  });
}

/** The envelope names an expression resolves through their configured paths. */
export function envelopeScope(body: BodyConfig): ExpressionScope {
  return new Map(configured(body));
}

const encoder = new TextEncoder();

/** Reads the envelope for dead-letter entries; null when `body.envelope` sets nothing. */
export class DeadLetterEnvelope {
  private readonly names: Uint8Array[];
  private readonly getters: Array<(b: unknown) => unknown>;

  private constructor(list: Array<[EnvelopeName, string]>) {
    this.names = list.map(([n]) => encoder.encode(DEAD_LETTER_FIELD[n]));
    this.getters = list.map(([, path]) => ownPath(path));
  }

  static of(body: BodyConfig): DeadLetterEnvelope | null {
    const list = configured(body);
    return list.length === 0 ? null : new DeadLetterEnvelope(list);
  }

  /** Appends `name, value` for each envelope field the body has to `fields` (a dead letter's copy). */
  appendTo(fields: Uint8Array[], body: Body): void {
    for (let i = 0; i < this.getters.length; i++) {
      const v = (this.getters[i] as (b: unknown) => unknown)(body);
      if (typeof v === 'string') fields.push(this.names[i] as Uint8Array, encoder.encode(v));
      else if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') {
        fields.push(this.names[i] as Uint8Array, encoder.encode(String(v)));
      }
    }
  }
}
