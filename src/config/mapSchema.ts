/**
 * Expression options: a field that must compile (src/shard/expr/), the `map` stage that reshapes the
 * body, and the envelope names an expression (and a dead-letter entry) can use. Part of the pipeline
 * file's schema (schema.ts, stageSchema.ts, sourceSchema.ts).
 */
import { z } from 'zod';
import { expressionProblem } from '../shard/expr/expression.js';
import { name } from './fields.js';

/** An expression (docs/configuration.md, "Expressions"): its compile errors are config errors. */
export const expression = (what: string) =>
  z
    .string()
    .describe(`${what} An expression, e.g. type == "OrderCreated" and amount > 100.`)
    .superRefine((src, ctx) => {
      const problem = expressionProblem(src);
      if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
    });

/** A top-level body field name: `map` writes top-level fields (its expressions read any dot path). */
const TOP_LEVEL = 'a top-level field name (no dots): map writes top-level fields; expressions may read a.b';
const topLevel = (what: string) => name(what).refine((n) => !n.includes('.'), { message: TOP_LEVEL });

/**
 * Reshapes the body that later stages and the sink see: `rename`, then `remove`, then `set` (values
 * computed from the body as the stage received it). Event ID and time were read at decode and stay.
 */
export const mapStage = z
  .object({
    map: z
      .object({
        /** Fields to set: field name → expression over the body as the stage received it. */
        set: z
          .record(z.string(), expression('The value.'))
          .optional()
          .describe('Fields to set: name → expression.'),
        /** Fields to rename: old name → new name (a missing field stays missing). */
        rename: z
          .record(z.string(), topLevel('Its new name.'))
          .optional()
          .describe('Fields to rename: old → new.'),
        /** Fields to remove. */
        remove: z.array(topLevel('Field to remove.')).optional().describe('Fields to remove.'),
      })
      .strict()
      .superRefine((m, ctx) => {
        const issue = (path: Array<string | number>, message: string) =>
          ctx.addIssue({ code: 'custom', path, message });
        const set = Object.keys(m.set ?? {});
        const renamed = Object.entries(m.rename ?? {});
        // record keys are checked here: zod reports a bad record key only as "Invalid key in record"
        for (const [part, keys] of [
          ['set', set],
          ['rename', renamed.map(([k]) => k)],
        ] as const) {
          for (const k of keys) {
            if (k === '') issue([part, k], 'a field name must not be empty');
            else if (k.includes('.')) issue([part, k], TOP_LEVEL);
          }
        }
        const removed = m.remove ?? [];
        if (set.length + renamed.length + removed.length === 0) {
          issue([], 'needs at least one of set, rename, remove');
        }
        const targets = new Set<string>();
        for (const [from, to] of renamed) {
          if (removed.includes(from))
            issue(['rename', from], `"${from}" is also removed: rename or remove it`);
          if (targets.has(to)) issue(['rename', from], `two fields are renamed to "${to}"`);
          if (set.includes(to)) issue(['rename', from], `"${to}" is also set: rename to another name`);
          targets.add(to);
        }
      }),
  })
  .strict()
  .describe('Sets, renames and removes body fields.');

/** Dot path of an envelope field in the body. */
const envelopePath = (what: string) => name(`Dot path of the event's ${what}.`).optional();

/**
 * Where the event envelope's fields are in the body, besides `idPath` and `timePath`. Expressions read
 * them by these names (`type`, `source`, `version`, `correlationId`, `causationId`), and dead-letter
 * entries carry them as fields (`event_type`, `event_source`, `event_version`, `correlation_id`,
 * `causation_id`). Unset: no such envelope field.
 */
export const envelopeSchema = z
  .object({
    /** Dot path of the event type, e.g. `type`. */
    type: envelopePath('type (e.g. OrderCreated)'),
    /** Dot path of the producing service. */
    source: envelopePath('source (the producing service)'),
    /** Dot path of the event (schema) version. */
    version: envelopePath('schema version'),
    /** Dot path of the correlation ID (the flow this event belongs to). */
    correlationId: envelopePath('correlation ID'),
    /** Dot path of the causation ID (the event that caused this one). */
    causationId: envelopePath('causation ID'),
  })
  .strict()
  .describe('Body paths of the envelope fields.');
