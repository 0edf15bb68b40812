/**
 * Field builders shared by the schema files: a non-empty name, and a duration parsed to milliseconds.
 */
import { z } from 'zod';

/** A non-empty string option; `what` is its description and names it in the error. */
export const name = (what: string) =>
  z
    .string()
    .min(1, { message: `${what} must not be empty` })
    .describe(what);

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_RE = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/;

/** Parses "250ms", "10s", "1.5m", "2h", "1d" or a plain number of milliseconds; undefined when malformed. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined;
  const m = DURATION_RE.exec(value);
  if (!m) return /^\s*\d+\s*$/.test(value) ? Number(value) : undefined;
  return Math.round(Number(m[1]) * (UNIT_MS[m[2] as string] as number));
}

/**
 * A duration option: a number of milliseconds or a string with a unit. Parsed to milliseconds at load
 * time, so the engine only ever sees numbers.
 */
export function duration(description: string, opts: { min?: number } = {}) {
  return z
    .union([z.number(), z.string()])
    .describe(
      `${description} A duration: milliseconds as a number, or a string like "500ms", "10s", "5m", "1h".`,
    )
    .transform((raw, ctx) => {
      const ms = parseDuration(raw);
      if (ms === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `expected a duration like "10s", got ${JSON.stringify(raw)}`,
        });
        return z.NEVER;
      }
      if (opts.min !== undefined && ms < opts.min) {
        ctx.addIssue({ code: 'custom', message: `must be at least ${opts.min} ms, got ${ms} ms` });
        return z.NEVER;
      }
      return ms;
    });
}
