/**
 * `streamshard test -c FILE TESTS.yaml`: unit tests for a pipeline config, like `rpk connect test`. Each
 * case of the tests file (configTest/cases.ts) runs the pipeline on its input events against a private
 * redis-server, and what the pipeline wrote is compared with what the case expects (configTest/compare.ts);
 * differences are printed. Exits 1 when a case fails.
 */
import type { Command } from 'commander';
import { pino } from 'pino';
import { loadConfig, type PipelineConfig } from '../config/load.js';
import { ConfigError, formatProblems } from '../errors.js';
import { connectRedis, openRedis, redactUrl } from '../redis/connect.js';
import { type LocalRedis, startLocalRedis } from '../tools/localRedis.js';
import { createLogger } from '../util/log.js';
import { loadTests, type TestCase } from './configTest/cases.js';
import { compareDeadLetters, compareResults } from './configTest/compare.js';
import { runCase } from './configTest/runCase.js';
import { positiveNumber, usageChecked } from './format.js';
import { exitOnConfigError } from './validate.js';

interface RawOptions {
  config: string;
  redis?: string;
  timeout: string;
  verbose?: boolean;
}

export function registerTest(program: Command): void {
  program
    .command('test')
    .summary('run the unit tests of a pipeline config against a private redis-server')
    .description(
      "run a pipeline config's unit tests: each case's input events go through the pipeline on a private " +
        'redis-server, and its results and dead letters are compared with the expected ones; differences ' +
        'are printed, exit 1 if any case fails',
    )
    .requiredOption('-c, --config <file>', 'pipeline file (YAML or JSON)')
    .argument('<tests>', 'the tests file (YAML): see docs/operations.md')
    .option(
      '--redis <url>',
      'use this Redis instead of starting a private redis-server (keys of their own per case, deleted after)',
    )
    .option(
      '--timeout <seconds>',
      'longest wait for each step of a case (start, commit, windows closing)',
      '30',
    )
    .option('--verbose', "show the pipeline's logs (LOG_LEVEL, default info) on stderr")
    .addHelpText(
      'after',
      [
        '',
        'A tests file:',
        '  tests:',
        '    - name: totals per customer',
        '      input:                              # stream entries, in order',
        '        - { key: c1, body: { id: a, ts: 1000, amount: 10 } }    # encoded as body.encoding',
        '        - { key: c1, fields: { data: "not msgpack" } }          # raw stream fields',
        '      results:                            # optional; exactly these, in any order',
        '        - { key: c1, window_start: 0, count: 1, sum_amount: 10 }',
        '      deadLetters:                        # optional; exactly these, in any order',
        '        - { code: E_BAD_BODY, key: c1 }',
        '',
        'An expected entry lists only the fields it checks; numbers match by value. Every window the inputs',
        'open is closed before comparing (a flush event per shard after the inputs), so give inputs event',
        'times in the past: small epoch ms such as 1000 read well. A case without `results:` (or',
        '`deadLetters:`) does not check them.',
        '',
        'Examples:',
        '  streamshard test -c config/orders-tumbling.yaml config/tests/orders-tumbling.yaml',
        '  streamshard test -c pipeline.yaml pipeline.tests.yaml --redis redis://127.0.0.1:6379',
      ].join('\n'),
    )
    .action(async (tests: string, o: RawOptions) => {
      process.exitCode = await usageChecked(() => testCommand(tests, o));
    });
}

const say = (line: string) => process.stdout.write(`${line}\n`);

async function testCommand(testsFile: string, o: RawOptions): Promise<number> {
  const timeoutMs = positiveNumber('--timeout', o.timeout) * 1000;
  let config: PipelineConfig;
  let cases: TestCase[];
  try {
    config = loadConfig(o.config);
  } catch (e) {
    return exitOnConfigError(e);
  }
  try {
    cases = loadTests(testsFile);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(
      `invalid tests file ${e.file}: ${e.problems.length} problem(s)\n${formatProblems(e.problems)}\n`,
    );
    return 1;
  }
  const logger = o.verbose ? createLogger(config.name) : pino({ level: 'silent' });
  let local: LocalRedis | null = null;
  let url = o.redis;
  if (url === undefined) {
    local = await startLocalRedis();
    url = local.url;
  }
  const redis = connectRedis({ url, name: 'streamshard:test', connectTimeoutMs: 10_000 });
  redis.on('error', () => {});
  try {
    await openRedis(redis);
    say(
      `${testsFile}: ${cases.length} test(s) of ${o.config} on ${local ? 'a private redis-server' : redactUrl(url)}`,
    );
    let failed = 0;
    for (const t of cases) {
      const t0 = performance.now();
      const lines: string[] = [];
      let summary = '';
      try {
        const run = await runCase(redis, url, config, t, { timeoutMs, logger });
        const checks = [
          t.results === undefined ? null : compareResults(t.results, run.results),
          t.deadLetters === undefined ? null : compareDeadLetters(t.deadLetters, run.deadLetters),
        ];
        for (const c of checks) if (c !== null && !c.ok) lines.push(...c.lines);
        summary = `${t.input.length} input(s) → ${run.results.length} result(s), ${run.deadLetters.length} dead letter(s)`;
      } catch (e) {
        lines.push(`error: ${(e as Error).message}`);
      }
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      if (lines.length > 0) failed++;
      say(`${lines.length === 0 ? '✔' : '✘'} ${t.name}${summary === '' ? '' : ` (${summary})`} ${secs} s`);
      for (const l of lines) say(`    ${l}`);
    }
    say(`${cases.length - failed} passed, ${failed} failed`);
    return failed > 0 ? 1 : 0;
  } finally {
    redis.disconnect();
    await local?.stop();
  }
}
