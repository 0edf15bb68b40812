/**
 * The `project` stage's schema (one entry of `stages`, stageSchema.ts): per key, a Redis hash kept up to
 * date by reducers in the batch's atomic commit — the read side of CQRS, queryable with `HGETALL`
 * (docs/configuration.md, "Projections"; engine: shard/stages/project/).
 */
import { z } from 'zod';
import { duration, name } from './fields.js';

/** What a projected hash field keeps. */
export const PROJECT_REDUCERS = ['latest', 'first', 'count', 'sum', 'min', 'max', 'last_seen'] as const;
export type ProjectReducer = (typeof PROJECT_REDUCERS)[number];

/** Reducers that read no body field. */
const FIELDLESS: readonly ProjectReducer[] = ['count', 'last_seen'];

/** The placeholders a key template may hold. */
const PLACEHOLDER_RE = /\{([^{}]*)\}/g;

/** A problem with a key template, or null when it is usable. */
export function keyTemplateProblem(t: string): string | null {
  let keys = 0;
  for (const m of t.matchAll(PLACEHOLDER_RE)) {
    if (m[1] === 'key') keys++;
    else if (m[1] !== 'tag') {
      return `unknown placeholder "{${m[1]}}": a key template takes {key} (the event's key) and {tag} (the input stream's Redis Cluster hash tag)`;
    }
  }
  if (keys !== 1)
    return `must contain {key} exactly once, e.g. "proj:customer:{key}", got ${JSON.stringify(t)}`;
  const rest = t.replace(PLACEHOLDER_RE, '');
  if (rest.includes('{') || rest.includes('}')) {
    return "braces other than {key} and {tag} are not allowed: use {tag} to put the hash in the input stream's cluster slot";
  }
  return null;
}

const reducerSchema = z
  .object({
    /**
     * `latest`: the field's value in the last event applied (stream order per key); `first`: in the first;
     * `count`: events applied; `sum`, `min`, `max`: of a numeric field; `last_seen`: the greatest event time
     * (epoch ms) applied.
     */
    fn: z.enum(PROJECT_REDUCERS).describe('Reducer: latest, first, count, sum, min, max or last_seen.'),
    /** Dot path of the body field it reads (not for `count` and `last_seen`). */
    field: name('Dot path of the body field the reducer reads.').optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    const fieldless = FIELDLESS.includes(r.fn);
    if (fieldless && r.field !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['field'], message: `\`${r.fn}\` takes no field` });
    } else if (!fieldless && r.field === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['field'],
        message: `\`${r.fn}\` needs a field, e.g. field: amount`,
      });
    }
  });

const FIELD_NAME_RE = /^[^_\s][^\s]*$/;

/** Per key, a Redis hash of reducer fields plus `_pos`, written in the batch's atomic commit. */
export const projectStage = z
  .object({
    project: z
      .object({
        /**
         * The hash's key: `{key}` is replaced by the event's key (its exact bytes), `{tag}` by the input
         * stream's Redis Cluster hash tag (`{orders}` for stream `orders`), which puts the hash in the
         * stream's slot — a partition's, once partitions exist.
         */
        key: name('Hash key template with {key} (and optionally {tag}).').superRefine((t, ctx) => {
          const problem = keyTemplateProblem(t);
          if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
        }),
        /** Hash field name → reducer. `_pos` (the last entry ID applied) is always written. */
        fields: z
          .record(z.string(), reducerSchema)
          .describe('Hash field name → reducer.')
          .refine((f) => Object.keys(f).length > 0, {
            message: 'needs at least one field, e.g. fields: { orders: { fn: count } }',
          })
          .refine((f) => Object.keys(f).length <= 100, { message: 'at most 100 fields per project stage' })
          .superRefine((f, ctx) => {
            for (const name of Object.keys(f)) {
              if (FIELD_NAME_RE.test(name)) continue;
              const message =
                'a hash field name must not be empty, start with "_" (reserved: _pos) or contain spaces';
              ctx.addIssue({ code: 'custom', path: [name], message });
            }
          }),
        /** Set a time to live on the hash after every update (PEXPIRE, wall clock). Unset: no expiry. */
        ttl: duration('Time to live of a hash after its last update; unset = none.', { min: 1 }).optional(),
      })
      .strict(),
  })
  .strict()
  .describe('Per key, a Redis hash kept by reducers in the atomic commit.');

export type ProjectConfig = z.output<typeof projectStage>['project'];
