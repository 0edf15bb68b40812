/**
 * Small text helpers for the human output of the operator commands: aligned columns, ages, sizes, and
 * option values checked once (a bad value is a usage error, exit 2).
 */

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

/** `0.4 s`, `12 s`, `3 min 5 s`, `2 h 10 min`, `3 d 4 h`. */
export function age(seconds: number): string {
  const s = Math.abs(seconds);
  const sign = seconds < 0 ? '-' : '';
  if (s < 10) return `${sign}${s.toFixed(1)} s`;
  if (s < 60) return `${sign}${Math.round(s)} s`;
  if (s < 3600) return `${sign}${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`;
  if (s < 86_400) return `${sign}${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${sign}${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** `512 B`, `1.5 KiB`, `12.3 MiB`, `1.1 GiB`. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** A command-line value that is not usable: the command prints it and exits 2. */
export class UsageError extends Error {}

/** Exit code for usage errors (bad option values), as `produce` uses it. */
export const EXIT_USAGE = 2;

/** A non-negative integer option value (`--limit 10`). @throws UsageError naming the flag */
export function nonNegativeInt(flag: string, raw: string): number {
  const v = /^\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(v))
    throw new UsageError(`${flag}: expected a non-negative integer, got "${raw}"`);
  return v;
}

/** A positive number option value (`--watch 0.5`). @throws UsageError naming the flag */
export function positiveNumber(flag: string, raw: string): number {
  const v = /^(\d+\.?\d*|\.\d+)$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!(v > 0)) throw new UsageError(`${flag}: expected a positive number, got "${raw}"`);
  return v;
}

/** A stream entry ID (`1700000000000-0`, or `1700000000000` for its first sequence number). */
export function streamId(flag: string, raw: string): string {
  if (!/^\d+(-\d+)?$/.test(raw))
    throw new UsageError(`${flag}: expected a stream ID like 1700000000000-0, got "${raw}"`);
  return raw;
}

/** Runs a command body, turning a UsageError into its message on stderr and exit 2. */
export async function usageChecked(fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${e.message}\n`);
    return EXIT_USAGE;
  }
}
