/**
 * `streamshard print-config -c FILE [--json]`: the pipeline as `run` would use it — environment
 * references replaced, every default filled in, `shards: auto`, the consumer name and the Redis URL
 * resolved — as YAML (or JSON). Durations are in milliseconds. The password of the Redis URL is masked.
 */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { loadConfig, type PipelineConfig } from '../config/load.js';
import { redactUrl } from '../redis/connect.js';
import { exitOnConfigError } from './validate.js';

export function registerPrintConfig(program: Command): void {
  program
    .command('print-config')
    .summary('print a pipeline file with every default and ${VAR} resolved')
    .description(
      'print a pipeline file resolved as `run` uses it: ${VAR} references replaced, every default filled ' +
        'in, `shards: auto`, the consumer name and the Redis URL resolved (password masked); durations in ms',
    )
    .requiredOption('-c, --config <file>', 'pipeline file (YAML or JSON)')
    .option('--json', 'print JSON instead of YAML')
    .addHelpText(
      'after',
      [
        '',
        '`shards: auto` and the default consumer name (the hostname) resolve on the host that runs the command.',
        '',
        'Examples:',
        '  streamshard print-config -c pipeline.yaml',
        '  SHARDS=4 streamshard print-config -c config/orders-tumbling.yaml --json | jq .shards',
      ].join('\n'),
    )
    .action((o: { config: string; json?: boolean }) => {
      process.exitCode = printConfig(o.config, o.json === true);
    });
}

function printConfig(file: string, json: boolean): number {
  let c: PipelineConfig;
  try {
    c = loadConfig(file);
  } catch (e) {
    return exitOnConfigError(e);
  }
  // `partition` is the engine's view of one partition (partition/scope.ts), not an option of the file.
  const { partition: _scope, ...options } = c;
  const shown = { ...options, redis: { ...c.redis, url: redactUrl(c.redis.url) } };
  if (json) process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
  else
    process.stdout.write(
      `# ${file}, resolved by streamshard print-config (durations in ms)\n${stringify(shown)}`,
    );
  return 0;
}
