/**
 * Scale out, part 1: three real `streamshard run` processes share a pipeline of 8 partitions on one
 * Redis. The input (duplicates, out-of-order and malformed events, and entries written to the wrong
 * partition) is a backlog the instances drain while one joins, leaves (SIGTERM), is killed (kill -9), is
 * paused past its lease TTL (SIGSTOP), or all restart one by one. Every case ends with the whole output
 * equal to the oracle's (run per partition), nothing pending, and every partition led by exactly one
 * live instance, the partitions balanced (2 or 3 each).
 */
import { describe, expect, it } from 'vitest';
import { Lease } from '../src/lease/lease.js';
import { partitionConfigs } from '../src/partition/scope.js';
import { CheckpointKeys } from '../src/redis/checkpointKeys.js';
import { produce } from '../src/tools/produce/producer.js';
import { parseMetrics } from './helpers/metricsText.js';
import {
  expectedForPartitions,
  expectPartitionedOutputsMatch,
  parsedConfig,
  partitionStreams,
} from './helpers/partitioned.js';
import {
  groupState,
  httpGet,
  pipelineConfig,
  redis,
  type RunningPipeline,
  startPipeline,
  type TestNames,
  testNames,
  useTestHooks,
} from './helpers/pipeline.js';
import { waitFor } from './helpers/redis.js';
import type { Expected } from './helpers/reference.js';

useTestHooks();

const PARTITIONS = 8;
const COUNT = 60_000;
const WRONG = 25;
const TTL_MS = 2000;

function configFor(n: TestNames, consumer: string): string {
  const c = JSON.parse(
    pipelineConfig(n, {
      shards: 1,
      stages: [
        { filter: { where: [{ field: 'type', op: 'in', value: ['order', 'refund'] }] } },
        { dedup: { ttl: '2s', maxEntries: 10_000 } },
        {
          window: {
            type: 'tumbling',
            size: '1s',
            grace: '300ms',
            aggregates: [{ fn: 'sum', field: 'amount' }, { fn: 'count' }],
          },
        },
      ],
      extra: { lease: { ttl: `${TTL_MS}ms` }, shutdown: { timeout: '10s' } },
    }),
  ) as { source: Record<string, unknown> };
  c.source.partitions = PARTITIONS;
  c.source.consumer = consumer;
  return JSON.stringify(c);
}

interface Setup {
  n: TestNames;
  config: (consumer: string) => string;
  streams: string[];
  expected: Expected;
}

/** Writes the input to the partition streams (plus wrong-partition entries) and computes the oracle. */
async function setup(prefix: string, seed: number): Promise<Setup> {
  const n = testNames(prefix);
  const config = (consumer: string) => configFor(n, consumer);
  await produce(redis, n.input, {
    count: COUNT,
    keys: 300,
    seed,
    duplicatePct: 3,
    outOfOrderPct: 5,
    malformedPct: 1,
    startTs: 1_700_000_000_000,
    intervalMs: 0.5,
    outOfOrderMaxMs: 2000,
    encoding: 'msgpack',
    partitions: { count: PARTITIONS, keyGroups: 256, template: '{stream}:{{stream}:{p}}' },
  });
  const streams = partitionStreams(config('x'));
  // A producer's bug: entries of partition 1's keys written to partition 0's stream.
  const strays = await redis.xrangeBuffer(streams[1] as string, '-', '+', 'COUNT', WRONG);
  for (const [, fields] of strays) await redis.xadd(streams[0] as string, '*', ...fields);
  const expected = await expectedForPartitions(redis, config('x'));
  expect(expected.deadLetters.filter((d) => d.code === 'E_WRONG_PARTITION').length).toBeGreaterThan(0);
  return { n, config, streams, expected };
}

/** Entries the partition groups have read so far, summed. */
async function entriesRead(s: Setup): Promise<number> {
  let sum = 0;
  for (const stream of s.streams) sum += (await groupState(redis, stream, s.n.group)).entriesRead ?? 0;
  return sum;
}

async function whenRead(s: Setup, fraction: number): Promise<void> {
  await waitFor(
    `${fraction * 100}% of the input read`,
    async () => (await entriesRead(s)) >= COUNT * fraction,
    120_000,
  );
}

/** Every partition's group has read everything and acked it, and the outputs have their lengths. */
async function drained(s: Setup): Promise<void> {
  await waitFor(
    'every partition drained',
    async () => {
      for (const stream of s.streams) {
        const g = await groupState(redis, stream, s.n.group);
        if (!g.exists || g.pending !== 0 || !g.caughtUp) return false;
      }
      return (
        (await redis.xlen(s.n.sink)) >= s.expected.sink.length &&
        (await redis.xlen(s.n.dlq)) >= s.expected.deadLetters.length
      );
    },
    180_000,
  );
}

/** The partitions an instance leads, from its /metrics (series exist only for led partitions). */
async function ledBy(p: RunningPipeline): Promise<number[]> {
  const text = (await httpGet(p.metricsPort, '/metrics')).body;
  return parseMetrics(text)
    .samples.filter((x) => x.name === 'streamshard_partition_pending')
    .map((x) => Number(x.labels.partition))
    .sort((a, b) => a - b);
}

/** Each partition led by exactly one of `live`, 2 or 3 partitions each (after hand-overs settle). */
async function expectBalancedOwnership(s: Setup, live: RunningPipeline[]): Promise<void> {
  let last: number[][] = [];
  await waitFor(
    'each partition led by exactly one instance, balanced',
    async () => {
      last = await Promise.all(live.map(ledBy));
      const all = last.flat().sort((a, b) => a - b);
      const counts = last.map((l) => l.length);
      const lo = Math.floor(PARTITIONS / live.length);
      return (
        JSON.stringify(all) === JSON.stringify([...Array(PARTITIONS).keys()]) &&
        counts.every((c) => c === lo || c === lo + 1)
      );
    },
    30_000,
  ).catch((e: Error) => {
    throw new Error(`${e.message}: led partitions per instance ${JSON.stringify(last)}`);
  });
  // The leases say the same: every partition's lease is held, by as many distinct owners as instances.
  const owners = new Set<string>();
  for (const pc of partitionConfigs(parsedConfig(s.config('x')))) {
    const value = await redis.get(CheckpointKeys.of(pc).lease());
    expect(value, `the lease of partition ${pc.partition.index}`).not.toBeNull();
    owners.add(Lease.ownerOf(value as string));
  }
  expect(owners.size).toBe(live.length);
}

async function finish(s: Setup, live: RunningPipeline[]): Promise<void> {
  await drained(s);
  await expectPartitionedOutputsMatch(redis, s.n, s.expected, 'windows');
  await expectBalancedOwnership(s, live);
  for (const p of live) expect(await p.stop('SIGTERM', 15_000)).toBe(0);
}

async function startThree(s: Setup, names = ['a', 'b', 'c']): Promise<RunningPipeline[]> {
  const out: RunningPipeline[] = [];
  for (const name of names) out.push(await startPipeline(s.config(`${s.n.consumer}-${name}`), {}, 60_000));
  return out;
}

describe('3 instances × 8 partitions on one Redis', () => {
  it('(a) steady state: the output equals the oracle, per-key order holds, partitions balanced', async () => {
    const s = await setup('parts-steady', 101);
    const live = await startThree(s);
    await finish(s, live);
  });

  it('(b) an instance joins mid-run: partitions move to it by hand-over, nothing lost or repeated', async () => {
    const s = await setup('parts-join', 102);
    const live = await startThree(s, ['a', 'b']);
    await whenRead(s, 0.2);
    live.push(await startPipeline(s.config(`${s.n.consumer}-c`), {}, 60_000));
    await finish(s, live);
  });

  it('(c) one leaves with SIGTERM: it drains, releases, the others take over at once', async () => {
    const s = await setup('parts-leave', 103);
    const live = await startThree(s);
    await whenRead(s, 0.2);
    const leaver = live.pop() as RunningPipeline;
    expect(await leaver.stop('SIGTERM', 15_000)).toBe(0);
    expect(leaver.logs().some((l) => l.includes('"msg":"partition released"'))).toBe(true);
    await finish(s, live);
  });

  it('(d) one is killed with kill -9: its partitions are taken over after the lease TTL', async () => {
    const s = await setup('parts-kill', 104);
    const live = await startThree(s);
    await whenRead(s, 0.2);
    await (live.pop() as RunningPipeline).kill9();
    await finish(s, live);
  });

  it('(e) one is paused (SIGSTOP) past the lease TTL: it is fenced per partition, then rejoins', async () => {
    const s = await setup('parts-pause', 105);
    const live = await startThree(s);
    await whenRead(s, 0.2);
    const paused = live[2] as RunningPipeline;
    process.kill(paused.pid, 'SIGSTOP');
    await new Promise((r) => setTimeout(r, TTL_MS * 2)); // the pause itself is the scenario
    process.kill(paused.pid, 'SIGCONT');
    await waitFor(
      'the paused instance notices its lost leases',
      async () => paused.logs().some((l) => l.includes('lease lost to another instance')),
      30_000,
    );
    await finish(s, live);
  });

  it('(f) a rolling restart of all three: each is replaced in turn, the output stays exact', async () => {
    const s = await setup('parts-rolling', 106);
    const live = await startThree(s);
    await whenRead(s, 0.1);
    for (const name of ['a2', 'b2', 'c2']) {
      const old = live.shift() as RunningPipeline;
      expect(await old.stop('SIGTERM', 15_000)).toBe(0);
      live.push(await startPipeline(s.config(`${s.n.consumer}-${name}`), {}, 60_000));
    }
    await finish(s, live);
  });
});
