/**
 * `streamshard validate -c FILE`: prints every problem with its path and a hint, exits 1 when there is
 * any; prints a one-line summary and exits 0 otherwise. Meant for CI before deploying a config.
 */
import { loadConfig } from '../config/load.js';
import { ConfigError, formatProblems } from '../errors.js';

export function validateCommand(file: string): number {
  try {
    const c = loadConfig(file);
    const stages = c.stages.map((s) => Object.keys(s)[0]).join(' → ') || '(pass-through)';
    const sink = c.sink.type === 'stdout' ? 'stdout' : c.sink.stream;
    process.stdout.write(`ok: ${file}: ${c.source.stream} → [${stages}] → ${sink} (${c.shards} shard(s))\n`);
    return 0;
  } catch (e) {
    return exitOnConfigError(e);
  }
}

/** Prints a config error for humans; returns the exit code. Rethrows anything else. */
export function exitOnConfigError(e: unknown): number {
  if (!(e instanceof ConfigError)) throw e;
  process.stderr.write(
    `invalid pipeline config ${e.file}: ${e.problems.length} problem(s)\n${formatProblems(e.problems)}\n`,
  );
  return 1;
}
