/**
 * `streamshard tap -c FILE [--results] [--dead-letters] [--input] [--limit N]`: follows a pipeline's
 * streams live, like `vector tap`: entries added from now on, decoded (inspect/entryView.ts), one JSON
 * line each on stdout.
 *
 * A tap reads with plain `XREAD BLOCK` from each stream's last ID at start, never through a consumer
 * group: it takes nothing from the pipeline (no entry becomes pending, nothing is acked) and it can run
 * next to any number of other taps. Each stream's "last ID" is its `last-generated-id` (XINFO STREAM),
 * not `$` on every call, so no entry added between two reads is missed.
 */
import type { Command } from 'commander';
import type { Redis } from 'ioredis';
import { NoSuchKeyError } from '../errors.js';
import { classifyRedisError } from '../redis/errors.js';
import { fieldOf } from '../source/redisSource.js';
import { nonNegativeInt, UsageError, usageChecked } from './format.js';
import { EntryView, type StreamKind } from '../inspect/entryView.js';
import { partitionConfigs } from '../partition/scope.js';
import { withSession } from './session.js';

interface RawOptions {
  config: string;
  results?: boolean;
  deadLetters?: boolean;
  input?: boolean;
  limit: string;
}

/** How long one XREAD waits, so that a stop signal is seen within this. */
const BLOCK_MS = 1000;
const COUNT = 500;

export function registerTap(program: Command): void {
  program
    .command('tap')
    .summary("follow a pipeline's input, output and dead-letter streams live, decoded, as JSON lines")
    .description(
      "follow a pipeline's streams live: every entry added from now on, decoded (bodies as the shards " +
        'decode them), as one JSON line on stdout, until --limit entries or Ctrl-C. Reads with XREAD, ' +
        'never through a consumer group: a tap takes nothing away from the pipeline',
    )
    .requiredOption('-c, --config <file>', 'pipeline file (YAML or JSON)')
    .option('--results', 'the output stream (sink.stream)')
    .option('--dead-letters', 'the dead-letter stream (deadLetter.stream)')
    .option('--input', "the input stream (source.stream; every partition's stream when partitioned)")
    .option('--limit <n>', 'exit after n entries; 0 = until Ctrl-C', '0')
    .addHelpText(
      'after',
      [
        '',
        'Without a stream flag, all three are followed. Each line names its stream ("input", "results",',
        '"dead-letters"), the entry ID, its fields, the decoded body (msgpack or json encoding; of input',
        'entries, dead letters, and results of a pipeline without a window stage, which are input copies), and',
        'for dead letters the code, message and source_id. Values that are not UTF-8 print as {"hex": "…"}.',
        'A summary goes to stderr at the end.',
        '',
        'Examples:',
        '  streamshard tap -c pipeline.yaml --dead-letters',
        '  streamshard tap -c pipeline.yaml --results --limit 10 | jq .fields',
      ].join('\n'),
    )
    .action(async (o: RawOptions) => {
      process.exitCode = await usageChecked(() => tapCommand(o));
    });
}

async function tapCommand(o: RawOptions): Promise<number> {
  const limit = nonNegativeInt('--limit', o.limit);
  const chosen: StreamKind[] = [];
  if (o.input) chosen.push('input');
  if (o.results) chosen.push('results');
  if (o.deadLetters) chosen.push('dead-letters');
  const kinds: StreamKind[] = chosen.length > 0 ? chosen : ['input', 'results', 'dead-letters'];
  return withSession(o.config, 'tap', async ({ config, redis }) => {
    const streams = new Map<string, StreamKind>();
    for (const kind of kinds) {
      if (kind === 'input') for (const pc of partitionConfigs(config)) streams.set(pc.source.stream, kind);
      else if (kind === 'dead-letters') streams.set(config.deadLetter.stream, kind);
      else if (config.sink.type === 'stream') streams.set(config.sink.stream, kind);
      else if (chosen.includes('results'))
        throw new UsageError('--results: this pipeline has a stdout sink, no output stream');
    }
    const names = [...streams.keys()];
    const from = await Promise.all(names.map((s) => lastGeneratedId(redis, s)));
    process.stderr.write(
      `tapping ${names.map((s) => `${streams.get(s)} (${s})`).join(', ')}; Ctrl-C to stop\n`,
    );
    const view = new EntryView(config);
    let stopping = false;
    const onSignal = (): void => {
      stopping = true;
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    process.stdout.on('error', onSignal); // EPIPE: the reader (head, jq) is gone
    let n = 0;
    try {
      while (!stopping && (limit === 0 || n < limit)) {
        const reply = await redis.xreadBuffer(
          'COUNT',
          COUNT,
          'BLOCK',
          BLOCK_MS,
          'STREAMS',
          ...names,
          ...from,
        );
        for (const [key, entries] of reply ?? []) {
          const i = names.indexOf(key.toString());
          const kind = streams.get(key.toString()) as StreamKind;
          for (const [id, fields] of entries) {
            from[i] = id.toString();
            if (stopping || (limit > 0 && n >= limit)) break;
            process.stdout.write(`${JSON.stringify(view.of(kind, { id: from[i] as string, fields }))}\n`);
            n++;
          }
        }
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    process.stderr.write(`tapped ${n} entr${n === 1 ? 'y' : 'ies'}\n`);
    return 0;
  });
}

/** The stream's last generated ID (what `$` means now), or `0-0` when the stream does not exist yet. */
async function lastGeneratedId(redis: Redis, stream: string): Promise<string> {
  try {
    return String(fieldOf(await redis.xinfo('STREAM', stream), 'last-generated-id'));
  } catch (e) {
    if (classifyRedisError(e) instanceof NoSuchKeyError) return '0-0';
    throw classifyRedisError(e);
  }
}
