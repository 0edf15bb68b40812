/**
 * `streamshard dlq list|replay` as child processes on the dead letters of a real pipeline run: list
 * selects by code, ID and count; replay adds each dead letter's original fields (exactly the input
 * entry's bytes, `deliveries` and the error trailer taken off) to the input stream once — a dry run
 * writes nothing, two replays at once and a replay after `reset` add nothing more — and re-reads
 * `E_ENTRY_TOO_LARGE` inputs by source_id, refusing them when too large still or gone.
 */
import { encode } from '@msgpack/msgpack';
import { afterAll, expect, it } from 'vitest';
import { CheckpointKeys } from '../src/redis/checkpointKeys.js';
import { runCli, tempFiles } from './helpers/cli.js';
import {
  pipelineConfig,
  readStream,
  redis,
  startPipeline,
  testNames,
  useTestHooks,
  waitForDrain,
} from './helpers/pipeline.js';

useTestHooks();
const files = tempFiles('dlq');
afterAll(files.remove);

const msgpack = (o: unknown): Buffer => Buffer.from(encode(o));

interface Listed {
  id: string;
  code: string;
  source_id: string;
  fields: Record<string, unknown>;
  replayedAs: string | null;
}

const summary = (out: string): string => out.trim().split('\n').pop() ?? '';

it('lists dead letters and replays their original fields once, however often and however many run', async () => {
  const n = testNames('dlq');
  const config = JSON.parse(
    pipelineConfig(n, {
      shards: 2,
      stages: [
        { dedup: { ttl: '10m' } },
        { window: { size: '5s', idleClose: 0, aggregates: [{ fn: 'sum', field: 'amount' }] } },
      ],
      extra: { retry: { attempts: 2, backoff: '1ms' } },
    }),
  ) as { source: Record<string, unknown> };
  config.source.maxEntryBytes = 1024;
  const file = files.write('dlq.yaml', JSON.stringify(config));
  config.source.maxEntryBytes = 65_536;
  const roomy = files.write('roomy.yaml', JSON.stringify(config));

  const ts = Date.now() - 60_000;
  const add = async (...fields: Array<string | Buffer>) => String(await redis.xadd(n.input, '*', ...fields));
  for (let i = 0; i < 20; i++)
    await add('key', `k${i % 5}`, 'data', msgpack({ id: `g${i}`, ts: ts + i, amount: i }));
  const sources: Record<string, string[]> = {
    E_BAD_TIME: [],
    E_BAD_FIELD: [],
    E_BAD_BODY: [],
    E_STAGE_FAILED: [],
    E_ENTRY_TOO_LARGE: [],
  };
  for (let i = 0; i < 3; i++) {
    sources.E_BAD_TIME?.push(
      await add('key', `t${i}`, 'data', msgpack({ id: `t${i}`, ts: 'yesterday', amount: 1 })),
    );
    sources.E_BAD_FIELD?.push(await add('key', `f${i}`, 'data', msgpack({ id: `f${i}`, ts, amount: 'abc' })));
  }
  sources.E_BAD_BODY?.push(await add('key', Buffer.from([0xff, 0x00]), 'data', Buffer.from([0xc1, 0xfe])));
  sources.E_STAGE_FAILED?.push(
    await add('key', 'kbad', 'data', msgpack({ id: 'b', ts, amount: 2 }), 'extra', 'x'),
  );
  const big = msgpack({ id: 'big', ts, amount: 3, pad: 'x'.repeat(2000) });
  sources.E_ENTRY_TOO_LARGE?.push(
    await add('key', 'kbig1', 'data', big),
    await add('key', 'kbig2', 'data', big),
  );

  const p = await startPipeline(
    JSON.stringify({ ...config, source: { ...config.source, maxEntryBytes: 1024 } }),
    {
      STREAMSHARD_FAULTS: 'stage-throw=kbad:always',
    },
  );
  const drained = await waitForDrain(redis, { stream: n.input, group: n.group, outputs: { [n.dlq]: 10 } });
  expect(drained.done).toBe(true);
  expect(await p.stop()).toBe(0);

  // list: every dead letter with its code and source; selections by code, ID and count
  const all = await runCli(['dlq', 'list', '-c', file, '--json', '--limit', '0']);
  expect(all.code, all.stderr).toBe(0);
  const listed = all.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Listed);
  expect(listed.map((l) => l.id)).toEqual((await readStream(redis, n.dlq)).map((e) => e.id));
  for (const [code, ids] of Object.entries(sources)) {
    expect(
      listed
        .filter((l) => l.code === code)
        .map((l) => l.source_id)
        .sort(),
      code,
    ).toEqual([...ids].sort());
  }
  const stageFailed = (await readStream(redis, n.dlq)).find((e) =>
    e.fields.some((f) => f.toString().startsWith('E_STAGE')),
  );
  expect(stageFailed?.fields.map(String)).toContain('deliveries'); // the trailer replay must take off
  const table = await runCli(['dlq', 'list', '-c', file, '--code', 'E_BAD_TIME']);
  const rows = table.stdout.trim().split('\n');
  expect(rows[0]).toMatch(/^ID +CODE +SOURCE_ID +KEY +REPLAYED AS +MESSAGE$/);
  expect(rows.slice(1)).toHaveLength(3);
  for (const r of rows.slice(1))
    expect(r).toMatch(/ E_BAD_TIME +\d+-\d+ +"t\d" +— +event time is not epoch ms/);
  const page = await runCli([
    'dlq',
    'list',
    '-c',
    file,
    '--json',
    '--since',
    listed[2]?.id as string,
    '--limit',
    '2',
  ]);
  expect(
    page.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as Listed).id),
  ).toEqual([listed[2]?.id, listed[3]?.id]);

  // a dry run writes nothing and says what it would do; the oversized entries are still too large
  const inputBefore = await redis.xlen(n.input);
  const dry = await runCli(['dlq', 'replay', '-c', file, '--dry-run']);
  expect(dry.code, dry.stderr).toBe(0);
  expect(dry.stdout.match(/^would replay +\d+-\d+ /gm)).toHaveLength(8);
  expect(dry.stdout.match(/^refused .*still more than source\.maxEntryBytes \(1024\)/gm)).toHaveLength(2);
  expect(summary(dry.stdout)).toBe(
    `would replay 8 into "${n.input}", 0 replayed before, 2 refused (dry run: nothing written)`,
  );
  expect(await redis.xlen(n.input)).toBe(inputBefore);

  // two replays at once: each dead letter is added once, with exactly the input entry's fields
  const codes = ['--code', 'E_BAD_TIME,E_BAD_FIELD', '--code', 'E_BAD_BODY', '--code', 'E_STAGE_FAILED'];
  const both = await Promise.all([1, 2].map(() => runCli(['dlq', 'replay', '-c', file, ...codes])));
  for (const r of both) expect(r.code, r.stderr).toBe(0);
  const replayed = both.map((r) => Number(/^replayed (\d+) into/m.exec(summary(r.stdout))?.[1]));
  expect(replayed[0] + replayed[1]).toBe(8);
  expect(await redis.xlen(n.input)).toBe(inputBefore + 8);
  const marks = await redis.hgetall(new CheckpointKeys(n.keyPrefix, n.input, n.group).ns + ':replayed');
  expect(Object.keys(marks)).toHaveLength(8);
  const input = new Map((await readStream(redis, n.input)).map((e) => [e.id, e.fields]));
  for (const l of listed.filter((x) => x.code !== 'E_ENTRY_TOO_LARGE')) {
    const added = marks[l.id] as string;
    expect(input.get(added), `${l.code} ${l.id}`).toEqual(input.get(l.source_id));
  }

  // again: nothing more
  const again = await runCli(['dlq', 'replay', '-c', file, ...codes]);
  expect(summary(again.stdout)).toBe(`replayed 0 into "${n.input}", 8 replayed before, 0 refused`);
  expect(again.stdout.match(/^already replayed .*: replayed before as \d+-\d+$/gm)).toHaveLength(8);
  expect(await redis.xlen(n.input)).toBe(inputBefore + 8);

  // oversized: re-read by source_id once the limit allows it; refused once the input entry is gone
  await redis.xdel(n.input, sources.E_ENTRY_TOO_LARGE?.[1] as string);
  const large = await runCli(['dlq', 'replay', '-c', roomy, '--code', 'E_ENTRY_TOO_LARGE']);
  expect(large.code, large.stderr).toBe(0);
  expect(summary(large.stdout)).toBe(`replayed 1 into "${n.input}", 0 replayed before, 1 refused`);
  expect(large.stdout).toMatch(/^refused .*"kbig2".*the input entry \d+-\d+ is no longer in/m);
  const bigMark = (await redis.hgetall(new CheckpointKeys(n.keyPrefix, n.input, n.group).ns + ':replayed'))[
    listed.find((l) => l.source_id === sources.E_ENTRY_TOO_LARGE?.[0])?.id as string
  ];
  const [[, bigFields] = ['', []]] = await redis.xrangeBuffer(n.input, bigMark as string, bigMark as string);
  expect(bigFields).toEqual([Buffer.from('key'), Buffer.from('kbig1'), Buffer.from('data'), big]);

  // the list shows what was replayed as what
  const after = (await runCli(['dlq', 'list', '-c', file, '--json', '--code', 'E_STAGE_FAILED'])).stdout;
  expect((JSON.parse(after) as Listed).replayedAs).toBe(
    marks[listed.find((l) => l.code === 'E_STAGE_FAILED')?.id as string],
  );

  // reset keeps the marks (and the dead-letter stream): a replay after it still adds nothing
  const reset = await runCli(['reset', '-c', file, '--yes']);
  expect(reset.code, reset.stderr).toBe(0);
  expect(reset.stdout).toContain(':replayed (which dead letters `dlq replay` replayed already)');
  const afterReset = await runCli(['dlq', 'replay', '-c', file, ...codes]);
  expect(summary(afterReset.stdout)).toBe(`replayed 0 into "${n.input}", 8 replayed before, 0 refused`);
});

it('rejects unknown codes and malformed IDs (exit 2)', async () => {
  const n = testNames('dlq-usage');
  const file = files.write('usage.yaml', pipelineConfig(n));
  const code = await runCli(['dlq', 'replay', '-c', file, '--code', 'E_NOPE']);
  expect(code.code).toBe(2);
  expect(code.stderr).toContain('--code: "E_NOPE" is not a dead-letter code; one of E_BAD_BODY');
  const since = await runCli(['dlq', 'list', '-c', file, '--since', 'yesterday']);
  expect(since.code).toBe(2);
  expect(since.stderr).toContain('--since: expected a stream ID');
  const empty = await runCli(['dlq', 'list', '-c', file]);
  expect(empty).toMatchObject({ code: 0, stdout: 'no dead letters selected\n' });
});
