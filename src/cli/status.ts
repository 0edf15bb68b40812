/**
 * `streamshard status -c FILE [--json] [--watch [seconds]]`: a pipeline's state in Redis at a glance —
 * leader and standbys, lag and pending in entries and seconds, per-shard stream time, open windows and
 * dedup IDs, checkpoint size, output and dead-letter streams, dead letters by code, age of the last
 * commit. Reads only (inspect/snapshot.ts); works whether the pipeline runs or not.
 */
import type { Command } from 'commander';
import { age, bytes, nonNegativeInt, positiveNumber, table, UsageError, usageChecked } from './format.js';
import type { PipelineStatus } from '../inspect/snapshot.js';
import { snapshot } from '../inspect/snapshot.js';
import type { StreamTip } from '../inspect/streams.js';
import { partitionConfig } from '../partition/scope.js';
import { CheckpointKeys } from '../redis/checkpointKeys.js';
import { withSession } from './session.js';

interface RawOptions {
  config: string;
  json?: boolean;
  watch?: string | boolean;
  shards?: string;
  partition?: string;
  deadLetterScan: string;
}

const DEFAULT_WATCH_SECONDS = 2;
const DEFAULT_DEAD_LETTER_SCAN = '10000';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .summary('show leader, lag, stream time, windows, checkpoint size and dead letters of a pipeline')
    .description(
      "show a pipeline's state in Redis: leader and standbys, consumer-group lag and pending (entries and " +
        'age in seconds), per-shard stream time, open windows and dedup IDs, checkpoint size, output and ' +
        'dead-letter streams, dead letters by code, age of the last commit. Reads only; works whether the ' +
        'pipeline runs or not',
    )
    .requiredOption('-c, --config <file>', 'pipeline file (YAML or JSON)')
    .option('--json', 'print one JSON object (fields: docs/operations.md) instead of the table')
    .option('--watch [seconds]', `refresh every N seconds (default ${DEFAULT_WATCH_SECONDS}) until Ctrl-C`)
    .option(
      '--shards <n>',
      "group key groups as a pipeline with n shards does (default: the config's `shards`; `auto` is " +
        "cores − 1 of this host, which may differ from the running instance's)",
    )
    .option(
      '--partition <n>',
      'with source.partitions > 1: which partition the group, leader and shard rows describe (default 0); ' +
        'every partition gets a summary row',
    )
    .option(
      '--dead-letter-scan <n>',
      'count dead letters by code over the newest n entries of the dead-letter stream (one XREVRANGE per ' +
        '1000); 0 = the whole stream',
      DEFAULT_DEAD_LETTER_SCAN,
    )
    .addHelpText(
      'after',
      [
        '',
        'Ages are measured against Redis TIME. The per-shard figures load the checkpoint as a restart does',
        '(one shard at a time), and the checkpoint size is MEMORY USAGE of its keys: on a large state both',
        'cost what a restore costs, so keep --watch intervals generous there.',
        '',
        'Examples:',
        '  streamshard status -c pipeline.yaml',
        '  streamshard status -c pipeline.yaml --watch 5',
        '  streamshard status -c pipeline.yaml --json | jq .group.oldestUnreadAgeSeconds',
      ].join('\n'),
    )
    .action(async (o: RawOptions) => {
      process.exitCode = await usageChecked(() => statusCommand(o));
    });
}

async function statusCommand(o: RawOptions): Promise<number> {
  const watch =
    o.watch === undefined
      ? null
      : o.watch === true
        ? DEFAULT_WATCH_SECONDS
        : positiveNumber('--watch', String(o.watch));
  const shards = o.shards === undefined ? null : nonNegativeInt('--shards', o.shards);
  if (shards === 0) throw new UsageError('--shards: expected a positive integer, got "0"');
  const deadLetterScan = nonNegativeInt('--dead-letter-scan', o.deadLetterScan);
  return withSession(o.config, 'status', async ({ config, redis, keys }) => {
    if (shards !== null && shards > config.keyGroups) {
      throw new UsageError(`--shards: at most keyGroups (${config.keyGroups}), got ${shards}`);
    }
    const partition = o.partition === undefined ? 0 : nonNegativeInt('--partition', o.partition);
    if (partition >= config.source.partitions) {
      throw new UsageError(
        `--partition: the pipeline has ${config.source.partitions} partition(s) (0…${config.source.partitions - 1}), got ${partition}`,
      );
    }
    const scoped = partitionConfig(config, partition);
    const c = shards === null ? scoped : { ...scoped, shards };
    const partKeys = config.source.partitions > 1 ? CheckpointKeys.of(c) : keys;
    const show = async (): Promise<void> => {
      const s = await snapshot(redis, partKeys, c, { deadLetterScan });
      process.stdout.write(o.json ? `${JSON.stringify(s)}\n` : `${render(s).join('\n')}\n`);
    };
    if (watch === null) {
      await show();
      return 0;
    }
    await watchLoop(watch, show, o.json !== true && process.stdout.isTTY === true);
    return 0;
  });
}

/** Refreshes until SIGINT/SIGTERM; a failed refresh (Redis away) is reported and the next one tried. */
async function watchLoop(seconds: number, show: () => Promise<void>, clear: boolean): Promise<void> {
  let stop = (): void => {};
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  let stopping = false;
  const onSignal = (): void => {
    stopping = true;
    stop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    while (!stopping) {
      if (clear) process.stdout.write('\x1b[2J\x1b[H');
      try {
        await show();
      } catch (e) {
        process.stderr.write(`status failed: ${(e as Error).message}; retrying\n`);
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([stopped, new Promise((r) => (timer = setTimeout(r, seconds * 1000)))]);
      clearTimeout(timer);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const dash = '—';
const ageOr = (s: number | null): string => (s === null ? dash : `${age(s)} ago`);

function tipLine(t: StreamTip | { stream: string; problem: string }): string {
  if ('problem' in t) return t.problem;
  if (!t.exists) return `${t.stream}: does not exist`;
  return `${t.stream}: ${t.length} entries${t.lastId === null ? '' : `, newest ${ageOr(t.lastAgeSeconds)}`}`;
}

/** The human table. */
export function render(s: PipelineStatus): string[] {
  const rows: string[][] = [];
  const row = (label: string, text: string) => rows.push([label, text]);
  row('pipeline', `${s.pipeline} on ${s.redis} at ${s.at}`);
  const l = s.lease;
  const inst = s.instances;
  const standbys = inst === null ? null : Math.max(0, inst.connected - (l.held ? 1 : 0));
  row(
    'leader',
    (l.held
      ? `${l.consumer} (lease epoch ${l.epoch}, lapses in ${age((l.ttlMs ?? 0) / 1000)} unless renewed)`
      : 'none (no instance holds the lease)') +
      (inst === null
        ? '; instances unknown (CLIENT LIST refused)'
        : `; ${inst.connected} instance(s) connected, ${standbys} standing by`),
  );
  row('input', tipLine(s.input));
  const g = s.group;
  if (!g.exists) row('group', `${g.name}: does not exist`);
  else {
    row(
      'group',
      `${g.name}: lag ${g.lag ?? '?'}, pending ${g.pending}, last delivered ${g.lastDeliveredId ?? dash}`,
    );
    row(
      '',
      `oldest pending ${g.oldestPendingId ?? dash}${g.oldestPendingId === null ? '' : ` (${ageOr(g.oldestPendingAgeSeconds)})`}, ` +
        `oldest unread ${g.oldestUnreadId ?? dash}${g.oldestUnreadId === null ? '' : ` (${ageOr(g.oldestUnreadAgeSeconds)})`}`,
    );
    row(
      'consumers',
      g.consumers.length === 0
        ? dash
        : g.consumers.map((c) => `${c.name} (pending ${c.pending}, idle ${age(c.idleMs / 1000)})`).join(', '),
    );
  }
  row('output', s.output === null ? 'stdout sink' : tipLine(s.output));
  row('dead letters', tipLine(s.deadLetters));
  const counts = s.deadLetters.counts;
  if (counts !== null) {
    const list = Object.entries(counts.byCode)
      .map(([code, n]) => `${code} ${n}`)
      .join(', ');
    row('', `${list} (${counts.complete ? 'whole stream' : `newest ${counts.scanned} counted`})`);
  }
  row(
    'last commit',
    s.lastCommitAgeSeconds === null
      ? `${dash} (no output or dead-letter entry yet)`
      : `at most ${age(s.lastCommitAgeSeconds)} ago (the newest output or dead-letter entry)`,
  );
  const cp = s.checkpoint;
  row(
    'checkpoint',
    cp === null
      ? 'size unknown (MEMORY USAGE refused)'
      : `${bytes(cp.bytes)} in ${cp.keys} keys` +
          (cp.keys === 0
            ? ''
            : ` (${Object.entries(cp.byKind)
                .map(([kind, k]) => `${kind} ${bytes(k?.bytes ?? 0)}`)
                .join(', ')})`),
  );
  const shardRows = [
    ['shard', 'key groups', 'stream time', 'behind', 'windows', 'window keys', 'dedup IDs'],
    ...s.shards.map((sh) => [
      String(sh.shard),
      `${sh.keyGroups[0]}-${sh.keyGroups[1]}`,
      sh.streamTime === null ? dash : new Date(sh.streamTime).toISOString(),
      sh.streamTimeBehindSeconds === null ? dash : age(sh.streamTimeBehindSeconds),
      String(sh.openWindows),
      String(sh.openWindowKeys),
      sh.dedupIds === null ? '?' : String(sh.dedupIds),
    ]),
  ];
  const problems = s.shards
    .filter((sh) => sh.problem !== null)
    .map((sh) => `shard ${sh.shard}: ${sh.problem}`);
  const parts =
    s.partitions === null
      ? []
      : [
          '',
          ...table([
            ['partition', 'stream', 'leader', 'pending', 'lag', 'oldest pending', 'oldest unread'],
            ...s.partitions.map((p) => [
              String(p.partition),
              p.stream,
              p.leader ?? 'none',
              String(p.pending),
              p.lag === null ? '?' : String(p.lag),
              ageOr(p.oldestPendingAgeSeconds),
              ageOr(p.oldestUnreadAgeSeconds),
            ]),
          ]),
        ];
  return [...table(rows), '', ...table(shardRows), ...problems, ...parts];
}
