/**
 * The operator's commands on a partitioned pipeline (4 partitions, one instance): `status` lists every
 * partition with its leader and group figures; `dlq replay` puts an entry dead-lettered as
 * E_WRONG_PARTITION into the stream of its key's partition, where it is processed; `reset` deletes every
 * partition's group and state.
 */
import { afterAll, expect, it } from 'vitest';
import { partitionConfigs } from '../src/partition/scope.js';
import { partitionOf } from '../src/partition/partitionOf.js';
import { CheckpointKeys } from '../src/redis/checkpointKeys.js';
import { produce } from '../src/tools/produce/producer.js';
import { runCli, tempFiles } from './helpers/cli.js';
import { parsedConfig } from './helpers/partitioned.js';
import {
  groupState,
  pipelineConfig,
  redis,
  startPipeline,
  testNames,
  useTestHooks,
} from './helpers/pipeline.js';
import { waitFor } from './helpers/redis.js';

useTestHooks();
const files = tempFiles('partitions-cli');
afterAll(() => files.remove());

it('status, dlq replay and reset cover every partition', async () => {
  const n = testNames('parts-cli');
  const raw = JSON.parse(pipelineConfig(n, { shards: 1 })) as { source: Record<string, unknown> };
  raw.source.partitions = 4;
  const text = JSON.stringify(raw);
  const file = files.write('p.yaml', text);
  const parts = partitionConfigs(parsedConfig(text));
  await produce(redis, n.input, {
    count: 400,
    keys: 40,
    seed: 7,
    duplicatePct: 0,
    outOfOrderPct: 0,
    malformedPct: 0,
    intervalMs: 1,
    outOfOrderMaxMs: 1,
    startTs: 1_700_000_000_000,
    encoding: 'msgpack',
    partitions: { count: 4, keyGroups: 256, template: '{stream}:{{stream}:{p}}' },
  });
  // one entry of partition 2's keys written to partition 0's stream
  const [[, stray] = [null, []]] = await redis.xrangeBuffer(
    parts[2]?.source.stream as string,
    '-',
    '+',
    'COUNT',
    1,
  );
  await redis.xadd(parts[0]?.source.stream as string, '*', ...(stray as Buffer[]));
  const key = (stray as Buffer[])[1] as Buffer;
  expect(partitionOf(new Uint8Array(key), 256, 4)).toBe(2);

  const p = await startPipeline(text);
  await waitFor(
    '401 entries handled',
    async () => (await redis.xlen(n.sink)) + (await redis.xlen(n.dlq)) >= 401,
  );
  const [dl] = await redis.xrange(n.dlq, '-', '+');
  expect(dl?.[1].join(' ')).toContain('E_WRONG_PARTITION');

  const status = await runCli(['status', '-c', file, '--json']);
  expect(status.code, status.stderr).toBe(0);
  const s = JSON.parse(status.stdout) as {
    partitions: Array<{ stream: string; leader: string; pending: number }>;
  };
  expect(s.partitions.map((x) => [x.stream, x.leader, x.pending])).toEqual(
    parts.map((pc) => [pc.source.stream, n.consumer, 0]),
  );
  const table = await runCli(['status', '-c', file, '--partition', '3']);
  expect(table.code, table.stderr).toBe(0);
  expect(table.stdout).toContain(parts[3]?.source.stream);
  expect((await runCli(['status', '-c', file, '--partition', '4'])).code).toBe(2);

  const lenBefore = await redis.xlen(parts[2]?.source.stream as string);
  const replay = await runCli(['dlq', 'replay', '-c', file, '--code', 'E_WRONG_PARTITION']);
  expect(replay.code, replay.stderr).toBe(0);
  expect(await redis.xlen(parts[2]?.source.stream as string)).toBe(lenBefore + 1);
  await waitFor(
    'the replayed entry processed in its partition',
    async () => (await redis.xlen(n.sink)) === 401,
  );
  expect(await p.stop()).toBe(0);

  const reset = await runCli(['reset', '-c', file, '--yes']);
  expect(reset.code, reset.stderr).toBe(0);
  for (const pc of parts) {
    expect((await groupState(redis, pc.source.stream, n.group)).exists).toBe(false);
    const keys = CheckpointKeys.of(pc);
    expect(await redis.exists(keys.meta(), keys.applied(), keys.lease())).toBe(0);
  }
});
