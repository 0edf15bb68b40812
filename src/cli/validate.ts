/**
 * `streamshard validate [-c FILE]… [FILE…]`: checks each pipeline file; prints every problem of a file
 * with its path and a hint, or a one-line summary when it is valid. Exits 1 when any file has a problem.
 * Meant for CI before deploying configs.
 */
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { ConfigError, formatProblems } from '../errors.js';
import { EXIT_USAGE } from './format.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .summary('check pipeline files; every problem with its path, exit 1 if any')
    .description(
      'check pipeline files: prints every problem with its path (or "ok" and a summary) per file; exits 1 ' +
        'if any file has a problem',
    )
    .argument('[files...]', 'pipeline files (YAML or JSON), as well as or instead of -c')
    .option('-c, --config <file>', 'pipeline file; repeat for several', collect, [])
    .addHelpText(
      'after',
      [
        '',
        'Environment references (${VAR}, ${VAR:-default}), REDIS_URL and LOG_LEVEL are checked as `run` would',
        'check them, with the current environment.',
        '',
        'Examples:',
        '  streamshard validate -c pipeline.yaml',
        '  streamshard validate config/*.yaml',
      ].join('\n'),
    )
    .action((files: string[], o: { config: string[] }) => {
      process.exitCode = validateCommand([...o.config, ...files]);
    });
}

export function validateCommand(files: string[]): number {
  if (files.length === 0) {
    process.stderr.write('validate: name at least one pipeline file (-c FILE, or FILE…)\n');
    return EXIT_USAGE;
  }
  let invalid = 0;
  for (const file of files) {
    try {
      const c = loadConfig(file);
      const stages = c.stages.map((s) => Object.keys(s)[0]).join(' → ') || '(pass-through)';
      const sink = c.sink.type === 'stdout' ? 'stdout' : c.sink.stream;
      process.stdout.write(
        `ok: ${file}: ${c.source.stream} → [${stages}] → ${sink} (${c.shards} shard(s))\n`,
      );
    } catch (e) {
      exitOnConfigError(e);
      invalid++;
    }
  }
  if (files.length > 1) {
    process.stdout.write(`${files.length - invalid} of ${files.length} files valid\n`);
  }
  return invalid > 0 ? 1 : 0;
}

/** Prints a config error for humans; returns the exit code. Rethrows anything else. */
export function exitOnConfigError(e: unknown): number {
  if (!(e instanceof ConfigError)) throw e;
  process.stderr.write(
    `invalid pipeline config ${e.file}: ${e.problems.length} problem(s)\n${formatProblems(e.problems)}\n`,
  );
  return 1;
}
