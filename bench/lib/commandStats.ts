/**
 * Redis commands per event from `INFO commandstats`: calls per command, read before and after a
 * measurement. Commands a Lua script runs (`redis.call`) count under their own names as well as the
 * script's `evalsha`, as Redis counts them: the total is the work Redis did, command by command. The
 * bench's own polling (`XINFO`, `INFO`, `XGROUP`) is left out; streamshard's occasional `XINFO` (its lag
 * sampler, every few seconds) goes with it.
 */
import type { Redis } from 'ioredis';

/** Commands the bench itself sends while it measures. */
const BENCH_OWN = new Set(['info', 'xinfo', 'xinfo|groups', 'xinfo|consumers', 'xgroup', 'xgroup|setid']);

export type CommandCalls = Map<string, number>;

export async function commandCalls(redis: Redis): Promise<CommandCalls> {
  const info = await redis.info('commandstats');
  const calls: CommandCalls = new Map();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const name = (m[1] as string).toLowerCase();
    if (!BENCH_OWN.has(name)) calls.set(name, Number(m[2]));
  }
  return calls;
}

/** Calls per command between two readings, largest first (commands with no calls left out). */
export function callsBetween(before: CommandCalls, after: CommandCalls): Record<string, number> {
  const out: Array<[string, number]> = [];
  for (const [name, n] of after) {
    const d = n - (before.get(name) ?? 0);
    if (d > 0) out.push([name, d]);
  }
  out.sort((a, b) => b[1] - a[1]);
  return Object.fromEntries(out);
}
