/**
 * `streamshard status` as a child process against a real pipeline: every figure is checked against
 * Redis, read here independently (SCAN + MEMORY USAGE for the checkpoint size, the dedup logs' chunk
 * headers for the remembered IDs, the stream-time hash per shard, XRANGE of the dead letters for the
 * counts by code); ages are bounded by Redis TIME read before and after the command.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { PipelineStatus } from '../src/inspect/snapshot.js';
import { CheckpointKeys } from '../src/redis/checkpointKeys.js';
import { keyGroupsOfShard } from '../src/routing/hash.js';
import { produce } from '../src/tools/produce/producer.js';
import { runCli, spawnCli, stopCliChildren, tempFiles } from './helpers/cli.js';
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
afterEach(stopCliChildren);
const files = tempFiles('status');
afterAll(files.remove);

/** idleClose 0: windows stay open after the drain, so the state holds still while it is read. */
const STAGES = [
  { dedup: { ttl: '10m' } },
  { window: { size: '5s', grace: '1s', idleClose: 0, aggregates: [{ fn: 'sum', field: 'amount' }] } },
];

async function redisNow(): Promise<number> {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

const idMs = (id: string): number => Number(id.split('-')[0]);

/** `status --json`, with Redis TIME before and after it. */
async function status(
  file: string,
  args: string[] = [],
): Promise<{ s: PipelineStatus; before: number; after: number }> {
  const before = await redisNow();
  const run = await runCli(['status', '-c', file, '--json', ...args]);
  const after = await redisNow();
  expect(run, run.stderr).toMatchObject({ code: 0 });
  return { s: JSON.parse(run.stdout) as PipelineStatus, before, after };
}

/** The age status may report for entry `id`, given TIME before and after the command. */
function expectAge(age: number | null, id: string, before: number, after: number): void {
  expect(age).not.toBeNull();
  expect(age as number).toBeGreaterThanOrEqual(Math.max(0, before - idMs(id)) / 1000);
  expect(age as number).toBeLessThanOrEqual(Math.max(0, after - idMs(id)) / 1000);
}

describe('status', () => {
  it('shows the leader, a standby, the group, per-shard state, checkpoint bytes and dead letters, as Redis has them', async () => {
    const n = testNames('status');
    const yaml = pipelineConfig(n, { stages: STAGES });
    const file = files.write('running.yaml', yaml);
    await produce(redis, n.input, {
      count: 3000,
      keys: 60,
      seed: 11,
      duplicatePct: 3,
      outOfOrderPct: 3,
      malformedPct: 4,
      startTs: Date.now() - 90_000,
      intervalMs: 25,
      outOfOrderMaxMs: 8000,
      encoding: 'msgpack',
      keyField: 'key',
      bodyField: 'data',
    });
    const leader = await startPipeline(yaml);
    const drained = await waitForDrain(redis, { stream: n.input, group: n.group, outputs: {} });
    expect(drained.done).toBe(true);

    const { s, before, after } = await status(file);
    expect(s.pipeline).toBe(n.group);
    expect(s.lease).toMatchObject({ held: true, consumer: n.consumer });
    expect(s.lease.ttlMs).toBeGreaterThan(0);
    expect(s.instances?.connected).toBe(1);
    expect(s.input).toMatchObject({ stream: n.input, exists: true, length: 3000 });
    expect(s.group).toMatchObject({
      name: n.group,
      exists: true,
      pending: 0,
      lag: 0,
      oldestPendingId: null,
      oldestUnreadId: null,
    });
    expect(s.group.consumers.map((c) => c.name)).toEqual([n.consumer]); // the incarnation marker left out

    // output and dead-letter streams, dead letters by code
    const dead = await readStream(redis, n.dlq);
    const byCode: Record<string, number> = {};
    for (const e of dead) {
      const error = e.fields[e.fields.findIndex((f, i) => i % 2 === 0 && f.toString() === 'error') + 1];
      const code = String(error).split(':')[0] as string;
      byCode[code] = (byCode[code] ?? 0) + 1;
    }
    expect(Object.keys(byCode).length).toBeGreaterThanOrEqual(4);
    expect(s.deadLetters).toMatchObject({ stream: n.dlq, length: dead.length });
    expect(s.deadLetters.counts).toEqual({
      byCode: expect.any(Object),
      scanned: dead.length,
      complete: true,
    });
    expect(s.deadLetters.counts?.byCode).toEqual(byCode);
    const out = await redis.xrevrange(n.sink, '+', '-', 'COUNT', 1);
    expect(s.output).toMatchObject({ stream: n.sink, length: await redis.xlen(n.sink), lastId: out[0]?.[0] });
    const newest = [out[0]?.[0], dead[dead.length - 1]?.id].filter((x): x is string => x !== undefined);
    const newestId = newest.sort((a, b) => idMs(b) - idMs(a))[0] as string;
    expectAge(s.lastCommitAgeSeconds, newestId, before, after);

    // per shard: stream time, open (key, window) rows, remembered dedup IDs
    const keys = new CheckpointKeys(n.keyPrefix, n.input, n.group);
    const st = await redis.hgetall(keys.streamTime());
    expect(s.shards).toHaveLength(2);
    let openRows = 0;
    for (const sh of s.shards) {
      const groups = keyGroupsOfShard(sh.shard, 256, 2);
      expect(sh.keyGroups).toEqual([groups[0], groups[groups.length - 1]]);
      const times = groups
        .map((g) => st[String(g)])
        .filter((t): t is string => t !== undefined)
        .map(Number);
      expect(sh.streamTime).toBe(Math.max(...times));
      let rows = 0;
      let ids = 0;
      const starts = new Set<string>();
      for (const g of groups) {
        for (const start of await redis.smembers(keys.windowIndex(g))) {
          starts.add(start);
          rows += await redis.hlen(keys.window(g, Number(start)));
        }
        // dedup log chunks start with their ID count (u32, big-endian); nothing expired with a 10m TTL
        for (const chunk of await redis.lrangeBuffer(keys.dedup(g), 0, -1)) ids += chunk.readUInt32BE(0);
      }
      expect(sh).toMatchObject({
        openWindows: starts.size,
        openWindowKeys: rows,
        dedupIds: ids,
        problem: null,
      });
      expect(sh.streamTimeBehindSeconds).toBeCloseTo(
        (Date.parse(s.at) - (sh.streamTime as number)) / 1000,
        6,
      );
      openRows += rows;
    }
    expect(openRows).toBeGreaterThan(0);

    // checkpoint bytes: MEMORY USAGE of every key of the namespace that is the pipeline's (found by SCAN)
    let bytes = 0;
    let count = 0;
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', keys.scanPattern(), 'COUNT', 1000);
      cursor = next;
      for (const k of batch) {
        if (keys.kindOf(k) === null) continue;
        bytes += Number(await redis.memory('USAGE', k));
        count++;
      }
    } while (cursor !== '0');
    expect(s.checkpoint).toMatchObject({ keys: count, bytes });

    // the table: the same facts for humans
    const table = await runCli(['status', '-c', file]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^leader +${n.consumer} \\(lease epoch \\d+`, 'm'));
    expect(table.stdout).toMatch(/^group +\S+: lag 0, pending 0/m);
    expect(table.stdout).toMatch(
      /^shard +key groups +stream time +behind +windows +window keys +dedup IDs$/m,
    );
    expect(table.stdout).toMatch(/^0 +0-127 +\d{4}-/m);
    expect(table.stdout).toMatch(/^1 +128-255 +\d{4}-/m);

    // a standby: a second instance of the same pipeline, connected but without the lease
    const standby = await startPipeline(yaml, { HOSTNAME: `${n.consumer}-2` }, 30_000, 'standby');
    const withStandby = await status(file);
    expect(withStandby.s.instances?.connected).toBe(2);
    expect(withStandby.s.lease.consumer).toBe(n.consumer);
    const table2 = await runCli(['status', '-c', file]);
    expect(table2.stdout).toContain('2 instance(s) connected, 1 standing by');
    expect(await standby.stop()).toBe(0);
    expect(await leader.stop()).toBe(0);

    // stopped: no leader; new entries are lag, read-but-unacked ones pending, each with its age
    const stopped = await status(file);
    expect(stopped.s.lease.held).toBe(false);
    expect(stopped.s.instances?.connected).toBe(0);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push(String(await redis.xadd(n.input, '*', 'key', `late-${i}`, 'data', 'x')));
    await redis.xreadgroup('GROUP', n.group, 'someone-else', 'COUNT', 2, 'STREAMS', n.input, '>');
    const behind = await status(file);
    expect(behind.s.group).toMatchObject({
      pending: 2,
      lag: 3,
      oldestPendingId: ids[0],
      oldestUnreadId: ids[2],
    });
    expectAge(behind.s.group.oldestPendingAgeSeconds, ids[0] as string, behind.before, behind.after);
    expectAge(behind.s.group.oldestUnreadAgeSeconds, ids[2] as string, behind.before, behind.after);
    expect(behind.s.group.consumers.find((c) => c.name === 'someone-else')).toMatchObject({ pending: 2 });
  });

  it('works on a pipeline that never ran', async () => {
    const n = testNames('status-fresh');
    const file = files.write('fresh.yaml', pipelineConfig(n, { stages: STAGES }));
    const { s } = await status(file);
    expect(s).toMatchObject({
      lease: { held: false },
      instances: { connected: 0 },
      input: { exists: false, length: 0 },
      group: { exists: false, pending: 0 },
      output: { exists: false },
      deadLetters: { exists: false, counts: null },
      checkpoint: { keys: 0, bytes: 0 },
      lastCommitAgeSeconds: null,
    });
    expect(s.shards.map((sh) => sh.streamTime)).toEqual([null, null]);
    const table = await runCli(['status', '-c', file]);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain(`${n.group}: does not exist`);
    expect(table.stdout).toContain('none (no instance holds the lease)');
  });

  it('--shards regroups the key groups; --dead-letter-scan caps the count by code', async () => {
    const n = testNames('status-opts');
    const file = files.write('opts.yaml', pipelineConfig(n, { stages: STAGES }));
    for (let i = 0; i < 5; i++)
      await redis.xadd(n.dlq, '*', 'key', 'k', 'error', `E_BAD_BODY: ${i}`, 'source_id', '1-1');
    const { s } = await status(file, ['--shards', '4', '--dead-letter-scan', '3']);
    expect(s.shards.map((sh) => sh.keyGroups)).toEqual([
      [0, 63],
      [64, 127],
      [128, 191],
      [192, 255],
    ]);
    expect(s.deadLetters.counts).toEqual({ byCode: { E_BAD_BODY: 3 }, scanned: 3, complete: false });
    const bad = await runCli(['status', '-c', file, '--shards', 'two']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--shards: expected a non-negative integer');
  });

  it('--watch refreshes until Ctrl-C; an unreachable Redis exits 1 naming it', async () => {
    const n = testNames('status-watch');
    const file = files.write('watch.yaml', pipelineConfig(n, { stages: STAGES }));
    const watch = spawnCli(['status', '-c', file, '--json', '--watch', '0.1']);
    const lines = await watch.waitForLines(3);
    for (const l of lines) expect(JSON.parse(l)).toMatchObject({ pipeline: n.group });
    watch.signal('SIGINT');
    expect(await watch.exited).toBe(0);

    const down = await runCli(['status', '-c', file], { REDIS_URL: 'redis://127.0.0.1:1' });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('cannot connect to Redis at redis://127.0.0.1:1');
  });
});
