#!/usr/bin/env node
/**
 * The `streamshard` command line.
 */
import { Command } from 'commander';
import { jsonSchema } from '../config/schema.js';
import { registerDemo } from './demo.js';
import { registerDlq } from './dlq/command.js';
import { registerPrintConfig } from './printConfig.js';
import { registerProduce } from './produce.js';
import { resetCommand } from './reset.js';
import { runCommand } from './run.js';
import { registerStatus } from './status.js';
import { registerTap } from './tap.js';
import { registerTest } from './test.js';
import { exitOnConfigError, registerValidate } from './validate.js';

const program = new Command()
  .name('streamshard')
  .description(
    'Redis Streams processor: key-ordered worker shards, event-time windows, dedup, atomic commit + ack.',
  )
  .version('0.1.0')
  .showHelpAfterError();

program
  .command('run')
  .description('run a pipeline until SIGTERM/SIGINT (then drain, commit and exit 0)')
  .requiredOption('-c, --config <file>', 'pipeline file (YAML or JSON)')
  .action(async (o: { config: string }) => {
    process.exitCode = await runCommand(o.config);
  });

registerValidate(program);
registerPrintConfig(program);

program
  .command('reset')
  .description(
    "delete a pipeline's state (checkpoint, meta, lease) and its consumer group so that the next run " +
      'starts fresh; lists what it deletes and asks first. Never deletes the input, output or dead-letter streams',
  )
  .requiredOption('-c, --config <file>', 'pipeline file (YAML or JSON)')
  .option('-y, --yes', 'do not ask (for scripts); without it and without a terminal, reset refuses (exit 2)')
  .action(async (o: { config: string; yes?: boolean }) => {
    process.exitCode = await resetCommand(o.config, o.yes === true);
  });

program
  .command('schema')
  .description('print the JSON Schema of pipeline files (for editors)')
  .action(() => {
    process.stdout.write(`${JSON.stringify(jsonSchema(), null, 2)}\n`);
  });

registerStatus(program);
registerTap(program);
registerDlq(program);
registerTest(program);
registerProduce(program);
registerDemo(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  process.exitCode = exitOnConfigError(e); // a config problem is listed, never shown as a stack
}
