/**
 * `streamshard dlq list|replay -c FILE [--code E_…] [--since ID] [--limit N] [--dry-run] [--json]`:
 * look at dead letters, and re-drive them into the input stream after a fix (replay.ts).
 */
import type { Command } from 'commander';
import { DeadLetterCode } from '../../errors.js';
import { printable } from '../../sink/sink.js';
import { nonNegativeInt, streamId, table, UsageError, usageChecked } from '../format.js';
import { EntryView } from '../../inspect/entryView.js';
import { withSession } from '../session.js';
import { replay } from './replay.js';
import { type Selection, selectDeadLetters } from './select.js';

interface RawOptions {
  config: string;
  code: string[];
  since: string;
  limit?: string;
  dryRun?: boolean;
  json?: boolean;
}

const CODES: readonly string[] = Object.values(DeadLetterCode);
const DEFAULT_LIST_LIMIT = '100';

const collect = (v: string, prev: string[]): string[] => [...prev, ...v.split(',').filter((s) => s !== '')];

/** The options both subcommands take. */
function selectionOptions(cmd: Command, limitHelp: string, limitDefault?: string): Command {
  return cmd
    .requiredOption('-c, --config <file>', 'pipeline file (YAML or JSON)')
    .option(
      '--code <code>',
      `only dead letters with this code (repeat, or separate with commas): ${CODES.join(', ')}`,
      collect,
      [],
    )
    .option('--since <id>', 'start at this dead-letter entry ID (inclusive), e.g. 1700000000000-0', '-')
    .option('--limit <n>', limitHelp, limitDefault);
}

function selection(o: RawOptions, defaultLimit: number): Selection {
  for (const c of o.code) {
    if (!CODES.includes(c))
      throw new UsageError(`--code: "${c}" is not a dead-letter code; one of ${CODES.join(', ')}`);
  }
  return {
    codes: o.code,
    since: o.since === '-' ? '-' : streamId('--since', o.since),
    limit: o.limit === undefined ? defaultLimit : nonNegativeInt('--limit', o.limit),
  };
}

export function registerDlq(program: Command): void {
  const dlq = program
    .command('dlq')
    .description("list a pipeline's dead letters, or replay them into its input stream after a fix");

  selectionOptions(
    dlq
      .command('list')
      .description('list dead letters, oldest first: ID, code, source_id, key, whether replayed, message'),
    'show at most n; 0 = all',
    DEFAULT_LIST_LIMIT,
  )
    .option('--json', 'one JSON object per dead letter (decoded body included) instead of the table')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  streamshard dlq list -c pipeline.yaml',
        '  streamshard dlq list -c pipeline.yaml --code E_BAD_TIME --since 1700000000000-0 --json',
      ].join('\n'),
    )
    .action(async (o: RawOptions) => {
      process.exitCode = await usageChecked(() => listCommand(o));
    });

  selectionOptions(
    dlq
      .command('replay')
      .description(
        'add the selected dead letters to the input stream again, with their original fields, in order; ' +
          'each one once: a replayed dead letter is marked (in the same script call as its XADD), so ' +
          'replaying again adds nothing for it',
      ),
    'look at the first n selected dead letters only; 0 = all (the default)',
  )
    .option('--dry-run', 'print what would be replayed, write nothing')
    .addHelpText(
      'after',
      [
        '',
        'Each dead letter prints one line: replayed (→ the new input entry ID), already replayed, would',
        'replay (--dry-run), or refused with the reason. E_ENTRY_TOO_LARGE dead letters hold only the key:',
        'their input entry is read again by source_id while the input stream still has it (refused when it',
        'is gone, or still larger than source.maxEntryBytes). Replay marks are kept in',
        '<keyPrefix>:<stream>:<group>:replayed; `streamshard reset` keeps them. Fix the cause first: a',
        'replayed event goes through the pipeline again (an E_LATE event is normally late again).',
        '',
        'Examples:',
        '  streamshard dlq replay -c pipeline.yaml --code E_BAD_FIELD --dry-run',
        '  streamshard dlq replay -c pipeline.yaml --code E_BAD_FIELD',
      ].join('\n'),
    )
    .action(async (o: RawOptions) => {
      process.exitCode = await usageChecked(() => replayCommand(o));
    });
}

async function listCommand(o: RawOptions): Promise<number> {
  const sel = selection(o, Number(DEFAULT_LIST_LIMIT));
  return withSession(o.config, 'dlq', async ({ config, redis, keys }) => {
    const view = new EntryView(config);
    const rows: string[][] = [['ID', 'CODE', 'SOURCE_ID', 'KEY', 'REPLAYED AS', 'MESSAGE']];
    for await (const s of selectDeadLetters(redis, keys, config, sel)) {
      if (o.json) {
        const v = { ...view.of('dead-letters', s.raw), replayedAs: s.replayedAs };
        process.stdout.write(`${JSON.stringify(v)}\n`);
        continue;
      }
      const key = s.dl.key === null ? '—' : JSON.stringify(printable(s.dl.key));
      const message = s.dl.message.length > 100 ? `${s.dl.message.slice(0, 99)}…` : s.dl.message;
      rows.push([s.dl.id, s.dl.code || '?', s.dl.sourceId ?? '—', key, s.replayedAs ?? '—', message]);
    }
    if (!o.json) {
      const lines = rows.length > 1 ? table(rows) : ['no dead letters selected'];
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return 0;
  });
}

async function replayCommand(o: RawOptions): Promise<number> {
  const sel = selection(o, 0);
  return withSession(o.config, 'dlq', async ({ config, redis, keys }) => {
    const say = (line: string) => process.stdout.write(`${line}\n`);
    const dry = o.dryRun === true;
    const sum = await replay(redis, keys, config, sel, dry, say);
    say(
      `${dry ? 'would replay' : 'replayed'} ${sum.replayed} into "${config.source.stream}"` +
        `${config.source.partitions > 1 ? ` (each into its key's partition stream, ${config.source.partitions} partitions)` : ''}, ` +
        `${sum.already} replayed before, ${sum.refused} refused${dry ? ' (dry run: nothing written)' : ''}`,
    );
    return 0;
  });
}
