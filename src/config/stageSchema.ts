/**
 * The stages a pipeline runs per event, in config order: `filter`, `map` (mapSchema.ts), `dedup`,
 * `rateLimit`, `order`, `project` (projectSchema.ts) and `window` (part of the
 * pipeline file's schema, schema.ts; which stage may stand where is checked there).
 */
import { z } from 'zod';
import { duration, name } from './fields.js';
import { expression, mapStage } from './mapSchema.js';
import { projectStage } from './projectSchema.js';

const scalar = z.union([z.string(), z.number(), z.boolean()]);

/** One field comparison. */
const conditionSchema = z
  .object({
    /** Dot path into the body. */
    field: name('Dot path into the body.'),
    op: z.enum(['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in', 'exists']).describe('Comparison operator.'),
    /** The value to compare with: a list for `in`, a boolean for `exists` (default true). */
    value: z.union([scalar, z.array(scalar)]).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.op === 'in' && !Array.isArray(c.value)) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: '`in` needs a list, e.g. value: [a, b]' });
    } else if (c.op === 'exists' && c.value !== undefined && typeof c.value !== 'boolean') {
      ctx.addIssue({ code: 'custom', path: ['value'], message: '`exists` takes true or false' });
    } else if (c.op !== 'in' && c.op !== 'exists' && (c.value === undefined || Array.isArray(c.value))) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: `\`${c.op}\` needs one value` });
    } else if (['gt', 'gte', 'lt', 'lte'].includes(c.op) && typeof c.value === 'boolean') {
      ctx.addIssue({ code: 'custom', path: ['value'], message: `\`${c.op}\` needs a number or a string` });
    }
  });

/** Keeps events for which every condition holds (AND), or for which an expression is true. */
const filterStage = z
  .object({
    filter: z
      .object({
        /** Field comparisons, ANDed. */
        where: z.array(conditionSchema).min(1, { message: 'needs at least one condition' }).optional(),
        /** A condition expression (true keeps the event); instead of `where`. */
        when: expression('Keep the event when this is true.').optional(),
      })
      .strict()
      .superRefine((f, ctx) => {
        if ((f.where === undefined) === (f.when === undefined)) {
          ctx.addIssue({
            code: 'custom',
            message: 'needs exactly one of `where` (a list of comparisons) or `when` (an expression)',
          });
        }
      }),
  })
  .strict()
  .describe('Keeps events for which every condition holds, or the `when` expression is true.');

/** Drops an event whose ID was seen within the TTL (in event time). */
const dedupStage = z
  .object({
    dedup: z
      .object({
        /** How long (in stream time) an event ID is remembered. @defaultValue 10m */
        ttl: duration('How long an event ID is remembered, in event time.').default(600_000),
        /** Upper bound of remembered IDs per shard; the oldest are forgotten first. @defaultValue 100000 */
        maxEntries: z.number().int().min(1).default(100_000).describe('Max remembered IDs per shard.'),
        /**
         * What makes two events the same: `id`, the body's ID (`body.idPath`); `content`, a SHA-256 of the
         * body's bytes, or of the canonical encoding of `fields` when given. @defaultValue id
         */
        by: z.enum(['id', 'content']).default('id').describe('Dedup by event ID or by content hash.'),
        /** `by: content` only: hash just these body fields (dot paths), not the whole body. */
        fields: z
          .array(name('Dot path of a body field to hash.'))
          .min(1, { message: 'needs at least one field, or leave `fields` out to hash the whole body' })
          .optional(),
      })
      .strict()
      .superRefine((d, ctx) => {
        if (d.fields !== undefined && d.by !== 'content') {
          ctx.addIssue({ code: 'custom', path: ['fields'], message: 'only `by: content` takes `fields`' });
        }
      }),
  })
  .strict()
  .describe('Drops events whose ID (or content) was seen within the TTL.');

const aggregateSchema = z
  .object({
    fn: z.enum(['count', 'sum', 'min', 'max', 'avg']).describe('Aggregate function.'),
    /** Dot path of a numeric body field; not used by `count`. */
    field: name('Dot path of a numeric body field.').optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.fn !== 'count' && a.field === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['field'],
        message: `\`${a.fn}\` needs a field, e.g. field: amount`,
      });
    }
  });

/**
 * Event-time windows per key: epoch-aligned `[start, end)` (tumbling, hopping), per-key sessions split by
 * an inactivity `gap`, or Kafka Streams-style sliding windows `[t - size, t]` (docs/configuration.md).
 */
const windowStage = z
  .object({
    window: z
      .object({
        /**
         * `tumbling`: back-to-back windows; `hopping`: windows of `size` every `advance`; `session`: a key's
         * events less than `gap` apart; `sliding`: every distinct window of `size` whose content changes at
         * an event. @defaultValue tumbling
         */
        type: z.enum(['tumbling', 'hopping', 'session', 'sliding']).default('tumbling'),
        /** Window length (not for `session`). */
        size: duration('Window length (tumbling, hopping, sliding).').optional(),
        /** Hopping only: distance between window starts; must divide `size`. */
        advance: duration('Hopping only: distance between window starts.').optional(),
        /** Session only: a session ends after this much event time without an event of its key. */
        gap: duration('Session only: inactivity gap that ends a session.').optional(),
        /** How long after its end a window waits for late events (in stream time). @defaultValue 0 */
        grace: duration('How long after its end a window accepts late events.').default(0),
        /**
         * When a shard has seen no event for this long (processing time), its stream time advances with the
         * wall clock so that due windows close. `0` disables it. @defaultValue 5s
         */
        idleClose: duration('Quiet time after which stream time follows the wall clock; 0 = off.').default(
          5000,
        ),
        /** The aggregates; `count` is always emitted. */
        aggregates: z.array(aggregateSchema).default([]),
      })
      .strict()
      .superRefine((w, ctx) => {
        const issue = (path: string, message: string) =>
          ctx.addIssue({ code: 'custom', path: [path], message });
        if (w.type === 'session') {
          if (w.gap === undefined) issue('gap', 'session windows need `gap`, e.g. gap: 30m');
          else if (w.gap <= 0) issue('gap', 'must be greater than 0');
          if (w.size !== undefined) issue('size', 'session windows take `gap`, not `size`');
          if (w.advance !== undefined) issue('advance', 'only hopping windows take `advance`');
          return;
        }
        if (w.gap !== undefined) issue('gap', 'only session windows take `gap`');
        if (w.size === undefined) {
          issue('size', `${w.type} windows need \`size\`, e.g. size: 10s`);
          return;
        }
        if (w.size <= 0) issue('size', 'must be greater than 0');
        if (w.type === 'hopping') {
          if (w.advance === undefined) {
            issue('advance', 'hopping windows need `advance`');
          } else if (w.advance <= 0 || w.advance > w.size || w.size % w.advance !== 0) {
            issue('advance', `must be > 0 and divide size (${w.size} ms), got ${w.advance} ms`);
          }
        } else if (w.advance !== undefined && w.advance !== w.size) {
          issue('advance', 'only hopping windows take `advance`');
        }
      }),
  })
  .strict()
  .describe('Event-time windows per key.');

/**
 * The window length that decides when a window of `w` closes after its last event: `gap` for sessions,
 * `size` otherwise (the schema requires the one of its type).
 */
export function windowSpan(w: { type: string; size?: number | undefined; gap?: number | undefined }): number {
  return (w.type === 'session' ? w.gap : w.size) ?? 0;
}

const RATE_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const RATE_RE = /^\s*(\d+(?:\.\d+)?)\s*\/\s*(ms|s|m|h|d)\s*$/;

/** `"100/s"` → 100 events per 1000 ms; undefined when malformed or not positive. */
export function parseRate(text: string): { events: number; perMs: number } | undefined {
  const m = RATE_RE.exec(text);
  if (!m) return undefined;
  const events = Number(m[1]);
  return events > 0 ? { events, perMs: RATE_UNIT_MS[m[2] as string] as number } : undefined;
}

/** A token bucket per key or per shard, refilled in event time; excess events are dropped or dead-lettered. */
const rateLimitStage = z
  .object({
    rateLimit: z
      .object({
        /** One bucket per key, or one for the whole shard. @defaultValue key */
        per: z.enum(['key', 'shard']).default('key').describe('One bucket per key, or one per shard.'),
        /** Refill rate in event time: `<events>/<unit>`, unit ms, s, m, h or d, e.g. `100/s`, `5/m`. */
        rate: z
          .string()
          .describe('Refill rate in event time, e.g. "100/s", "5/m".')
          .transform((raw, ctx) => {
            const r = parseRate(raw);
            if (r === undefined) {
              ctx.addIssue({
                code: 'custom',
                message: `expected a rate like "100/s", got ${JSON.stringify(raw)}`,
              });
              return z.NEVER;
            }
            return r;
          }),
        /** Bucket size: events let through at once after a quiet period. @defaultValue the rate's events, at least 1 */
        burst: z.number().int().min(1).optional().describe("Bucket size (default: the rate's event count)."),
        /** `drop`: count excess events (metric `events_rate_limited_total`); `deadLetter`: E_RATE_LIMITED. @defaultValue drop */
        onExcess: z.enum(['drop', 'deadLetter']).default('drop').describe('What happens to excess events.'),
      })
      .strict()
      .transform((c) => ({ ...c, burst: c.burst ?? Math.max(1, Math.floor(c.rate.events)) })),
  })
  .strict()
  .describe('Token-bucket rate limit in event time.');

/** Per key, applies events in version order, holding a gap for a while. */
const orderStage = z
  .object({
    order: z
      .object({
        /** Dot path of the event's version in the body: an integer (or an integer string). */
        versionPath: name('Dot path of the event version (an integer).'),
        /** Most events held per key while a version is missing; one more resolves the gap. @defaultValue 100 */
        maxBuffered: z.number().int().min(1).max(100_000).default(100).describe('Most events held per key.'),
        /** How long (stream time) a gap is held before `onGap` resolves it. @defaultValue 30s */
        timeout: duration('How long a gap is held, in stream time.', { min: 1 }).default(30_000),
        /** `deadLetter`: the held events go to the dead-letter stream (E_VERSION_GAP); `skip`: go on from the lowest held. @defaultValue deadLetter */
        onGap: z.enum(['deadLetter', 'skip']).default('deadLetter').describe('What a timed-out gap does.'),
        /** A key with nothing held is forgotten after this much stream time without an event; must exceed `timeout`. @defaultValue 1h */
        keyTtl: duration("How long an idle key's next version is remembered, in stream time.").default(
          3_600_000,
        ),
      })
      .strict()
      .superRefine((o, ctx) => {
        if (o.keyTtl <= o.timeout) {
          ctx.addIssue({
            code: 'custom',
            path: ['keyTtl'],
            message: `must exceed timeout (${o.timeout} ms), got ${o.keyTtl} ms`,
          });
        }
      }),
  })
  .strict()
  .describe('Per key, applies events in version order.');

/** One entry of `stages`. */
export const stageSchema = z.union([
  filterStage,
  mapStage,
  dedupStage,
  rateLimitStage,
  orderStage,
  projectStage,
  windowStage,
]);
