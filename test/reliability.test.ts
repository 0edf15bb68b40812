/**
 * Exactly-once under faults, each at an exact point (STREAMSHARD_FAULTS, src/fault/faults.ts) or by
 * signals from outside: a kill right after a commit was applied and right before one was sent, a lost
 * commit reply, take-over by a standby, a paused old owner, stage errors, worker crashes and entries
 * delivered too often. Every case compares the whole output with the oracle's.
 */
import { expect, it } from 'vitest';
import { applyOps } from '../src/commit/applyOps.js';
import { FencedError } from '../src/errors.js';
import { Lease } from '../src/lease/lease.js';
import { CheckpointKeys } from '../src/redis/checkpointKeys.js';
import { RespConnection } from '../src/redis/respConnection.js';
import { OpsWriter } from '../src/shard/opsCodec.js';
import { RedisSource } from '../src/source/redisSource.js';
import { produce } from '../src/tools/produce/producer.js';
import { diffPassThrough, expectedFor, expectOutputsMatch } from './helpers/expectations.js';
import { parseMetrics, sumOf } from './helpers/metricsText.js';
import {
  groupState,
  httpGet,
  pipelineConfig,
  readStream,
  redis,
  startPipeline,
  type TestNames,
  testNames,
  useTestHooks,
  waitForDrain,
} from './helpers/pipeline.js';
import { redisUrl, waitFor } from './helpers/redis.js';
import { deadLetterOf, pairsOf, sortBySourceId } from './helpers/reference.js';

useTestHooks();

const T = 1_700_000_000_000;

const WINDOW_STAGES = [
  { dedup: { ttl: '1s', maxEntries: 5000 } },
  {
    window: {
      size: '1s',
      grace: '200ms',
      idleClose: '2s',
      aggregates: [
        { fn: 'sum', field: 'amount' },
        { fn: 'min', field: 'amount' },
      ],
    },
  },
];

async function loadInput(n: TestNames, count: number, seed: number, dirty = true): Promise<void> {
  await produce(redis, n.input, {
    count,
    keys: 100,
    seed,
    duplicatePct: dirty ? 3 : 0,
    outOfOrderPct: dirty ? 5 : 0,
    malformedPct: dirty ? 1 : 0,
    startTs: T,
    intervalMs: 0.5,
    outOfOrderMaxMs: 2000,
    encoding: 'msgpack',
  });
}

/** The test config with overrides merged into `source` and the top level. */
function configWith(
  n: TestNames,
  opts: { stages?: unknown[]; source?: Record<string, unknown>; top?: Record<string, unknown> },
): string {
  const c = JSON.parse(pipelineConfig(n, { shards: 2, stages: opts.stages ?? WINDOW_STAGES })) as Record<
    string,
    Record<string, unknown>
  >;
  c.source = { ...c.source, ...opts.source };
  return JSON.stringify({ ...c, ...opts.top });
}

async function acked(n: TestNames): Promise<number> {
  const g = await groupState(redis, n.input, n.group);
  return (g.entriesRead ?? 0) - g.pending;
}

/**
 * Waits until the leader sits in the read held by the `hold-read-reply` fault: entries delivered to it and
 * not acked (pending), nothing more read. Without the hold, a leader on a busy machine drained the whole
 * input before the test's kill or pause landed (seen with the load average at 8–12), and the take-over
 * had nothing to take over.
 */
async function leaderHolds(n: TestNames, minAcked: number): Promise<void> {
  let lastRead = -1;
  await waitFor('the leader holds a read with entries pending', async () => {
    const g = await groupState(redis, n.input, n.group);
    const read = g.entriesRead ?? 0;
    const held = g.pending > 0 && read === lastRead && read - g.pending >= minAcked;
    lastRead = read;
    return held;
  });
}

async function drained(n: TestNames, sink: number, dlq: number, timeoutMs = 100_000): Promise<void> {
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: sink, [n.dlq]: dlq },
    timeoutMs,
  });
  expect(state).toMatchObject({ done: true, group: { pending: 0, caughtUp: true } });
}

async function metric(port: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  const { samples } = parseMetrics((await httpGet(port, '/metrics')).body);
  return sumOf(samples, name, labels) ?? Number.NaN;
}

it.each([
  ['kill-after-commit', 'right after a commit was applied, before its reply was handled: no result twice'],
  ['kill-before-commit', 'right before a commit was sent: nothing lost'],
])('%s: a process killed %s', async (fault) => {
  const n = testNames(fault);
  await loadInput(n, 40_000, fault.length);
  const config = configWith(n, {});
  const expected = await expectedFor(redis, n, config);

  const first = await startPipeline(config, { STREAMSHARD_FAULTS: `${fault}=6` });
  expect(await first.exited).toBeNull(); // killed by its own SIGKILL at the 6th commit
  const atKill = await groupState(redis, n.input, n.group);
  expect(atKill.pending, 'entries were in flight at the kill').toBeGreaterThan(0);

  const second = await startPipeline(config);
  await drained(n, expected.sink.length, expected.deadLetters.length);
  expect(await second.stop()).toBe(0);
  await expectOutputsMatch(redis, n, expected, 'windows');
});

it('a commit whose reply was lost is retried and not applied twice', async () => {
  const n = testNames('lost-reply');
  await loadInput(n, 20_000, 41);
  const config = configWith(n, {});
  const expected = await expectedFor(redis, n, config);
  const p = await startPipeline(config, { STREAMSHARD_FAULTS: 'lose-commit-reply=4' });
  await drained(n, expected.sink.length, expected.deadLetters.length);
  expect(await metric(p.metricsPort, 'streamshard_commits_deduplicated_total')).toBe(1);
  expect(await p.stop()).toBe(0);
  await expectOutputsMatch(redis, n, expected, 'windows');
});

/** A reader of the test's input whose fenced reads need `token` to be the holder of `leaseKey`. */
function fencedSource(
  reader: RespConnection,
  n: TestNames,
  leaseKey: string,
  consumer: string,
  token: string,
): RedisSource {
  return new RedisSource(reader, {
    stream: n.input,
    group: n.group,
    consumer,
    batchSize: 100,
    blockMs: 100,
    fence: () => ({ leaseKey, token }),
  });
}

it("the commit script rejects a commit fenced by another instance's lease and writes nothing", async () => {
  const n = testNames('fence');
  const keys = new CheckpointKeys(n.keyPrefix, n.input, n.group);
  const leaseKeys = { lease: keys.lease(), epoch: keys.epoch() };
  const old = new Lease(redis, leaseKeys, 'old', 200);
  expect(await old.tryAcquire()).toMatchObject({ held: true });
  const oldToken = old.token;
  // the old owner pauses past its TTL…
  await waitFor('the old lease lapsed', async () => (await redis.exists(keys.lease())) === 0);
  const next = new Lease(redis, leaseKeys, 'new', 10_000);
  expect(await next.tryAcquire()).toMatchObject({ held: true }); // …and another instance takes over
  expect(next.epoch).toBe(old.epoch + 1);
  expect(await old.tryAcquire()).toMatchObject({ held: false, holder: next.token });

  // …then its read, even if sent after the pause, delivers nothing: reads are fenced in Redis too
  await redis.xadd(n.input, '*', 'key', 'k', 'data', 'x');
  await redis.xgroup('CREATE', n.input, n.group, '0');
  const reader = new RespConnection({ url: redisUrl(), name: 'test:reader', connectTimeoutMs: 2000 });
  await reader.connect();
  const sourceOf = (consumer: string, token: string) =>
    fencedSource(reader, n, keys.lease(), consumer, token);
  const lateRead = await sourceOf('old', oldToken)
    .readFenced()
    .catch((e: unknown) => e);
  expect(lateRead).toBeInstanceOf(FencedError);
  expect((await groupState(redis, n.input, n.group)).pending).toBe(0);
  const read = await sourceOf('new', next.token).readFenced();
  expect(read[0]).toBe(1);
  reader.disconnect();
  expect((await groupState(redis, n.input, n.group)).pending).toBe(1);

  const w = new OpsWriter();
  w.reset();
  const list = w.beginArray();
  w.array(5);
  for (const a of ['XADD', n.sink, '*', 'late', 'write']) w.arg(a);
  w.endArray(list, 1);
  const blob = w.finish();
  const fence = { leaseKey: keys.lease(), appliedKey: keys.applied(), term: 't1' };
  const late = await applyOps(redis, { ...fence, token: oldToken }, 0, 0, blob).catch((e: unknown) => e);
  expect(late).toBeInstanceOf(FencedError);
  expect(await redis.exists(n.sink)).toBe(0);
  // the holder's commit goes through once; the same commit ID again is recognised and skipped
  expect(await applyOps(redis, { ...fence, token: next.token }, 0, 0, blob)).toBe(true);
  expect(await applyOps(redis, { ...fence, token: next.token }, 0, 0, blob)).toBe(false);
  expect(await redis.xlen(n.sink)).toBe(1);
  await next.release();
});

it('a read after a take-over is fenced although the previous read had armed its WATCH', async () => {
  const n = testNames('fence-armed');
  const lease = new CheckpointKeys(n.keyPrefix, n.input, n.group).lease();
  await redis.set(lease, '1:a');
  await redis.xgroup('CREATE', n.input, n.group, '0', 'MKSTREAM');
  const reader = new RespConnection({ url: redisUrl(), name: 'test:reader', connectTimeoutMs: 2000 });
  await reader.connect();
  const sourceOf = (consumer: string, token: string) => fencedSource(reader, n, lease, consumer, token);
  const a = sourceOf('a', '1:a');
  const read = async (s: RedisSource) => {
    const r = await s.readFenced();
    return r[0] === 1 ? r[1].count : 0;
  };
  await redis.xadd(n.input, '*', 'key', 'k', 'data', '1');
  expect(await read(a)).toBe(1); // sent with the WATCH + GET of a's next read, which saw a's token
  await redis.set(lease, '2:b'); // taken over after that WATCH
  await redis.xadd(n.input, '*', 'key', 'k', 'data', '2');
  const late = await a.readFenced().catch((e: unknown) => e);
  expect(late).toBeInstanceOf(FencedError); // its EXEC failed, and the re-armed GET saw the new holder
  expect((await groupState(redis, n.input, n.group)).pending).toBe(1);

  // the holder's own renewal also fails one EXEC: the read is retried at once and goes through
  const b = sourceOf('b', '2:b');
  expect(await read(b)).toBe(1);
  await redis.pexpire(lease, 60_000);
  await redis.xadd(n.input, '*', 'key', 'k', 'data', '3');
  expect(await read(b)).toBe(1);
  expect((await groupState(redis, n.input, n.group)).pending).toBe(3);
  reader.disconnect();
});

it('a standby takes over a killed leader: claims its pending entries and continues exactly', async () => {
  const n = testNames('takeover');
  const COUNT = 100_000;
  await loadInput(n, COUNT, 43);
  const as = (consumer: string) => configWith(n, { source: { consumer, claimIdle: '500ms' } });
  const expected = await expectedFor(redis, n, as('a'));

  // a holds its 10th read (its entries pending) until it is killed
  const a = await startPipeline(as('a'), { STREAMSHARD_FAULTS: 'hold-read-reply=10:600000' });
  const b = await startPipeline(as('b'), {}, 30_000, 'standby');
  const standby = await httpGet(b.metricsPort, '/readyz');
  expect(standby.status).toBe(503);
  expect(JSON.parse(standby.body)).toMatchObject({ role: 'standby' });
  expect(await metric(b.metricsPort, 'streamshard_leader')).toBe(0);
  expect(await metric(a.metricsPort, 'streamshard_leader')).toBe(1);
  expect((await httpGet(a.metricsPort, '/readyz')).status).toBe(200);

  await leaderHolds(n, 5000);
  await a.kill9();
  const atKill = await groupState(redis, n.input, n.group);
  expect(atKill.pending, 'a died with entries in flight').toBeGreaterThan(0);

  await waitFor('the standby leads', async () => b.logs().some((l) => l.includes('"msg":"ready"')), 30_000);
  expect(b.logs().some((l) => l.includes('claimed pending entries of other consumers'))).toBe(true);
  await drained(n, expected.sink.length, expected.deadLetters.length);
  expect((await httpGet(b.metricsPort, '/readyz')).status).toBe(200);
  expect(await metric(b.metricsPort, 'streamshard_recovery_seconds')).toBeGreaterThan(0);
  expect(await b.stop()).toBe(0);
  await expectOutputsMatch(redis, n, expected, 'windows');
});

it('a paused leader loses its lease; after it resumes it commits nothing and stands by', async () => {
  const n = testNames('paused');
  const COUNT = 100_000;
  await loadInput(n, COUNT, 44);
  const as = (consumer: string) => configWith(n, { source: { consumer, claimIdle: '500ms' } });
  const expected = await expectedFor(redis, n, as('a'));

  // a pauses with a read in hand: held 20 s, then (after SIGCONT) routed, processed and fenced
  const a = await startPipeline(as('a'), { STREAMSHARD_FAULTS: 'hold-read-reply=10:20000' });
  const b = await startPipeline(as('b'), {}, 30_000, 'standby');
  await leaderHolds(n, 5000);
  process.kill(a.pid, 'SIGSTOP');
  try {
    await waitFor('the standby leads', async () => b.logs().some((l) => l.includes('"msg":"ready"')), 30_000);
    const at = await acked(n);
    await waitFor('the new leader makes progress', async () => (await acked(n)) > at + 5000, 60_000);
  } finally {
    process.kill(a.pid, 'SIGCONT');
  }
  await waitFor(
    'the old leader stands down',
    async () => a.logs().some((l) => l.includes('lease lost')),
    30_000,
  );
  await drained(n, expected.sink.length, expected.deadLetters.length);
  const aReady = await httpGet(a.metricsPort, '/readyz');
  expect(JSON.parse(aReady.body)).toMatchObject({ role: 'standby' });
  expect(await b.stop()).toBe(0);
  expect(await a.stop()).toBe(0);
  await expectOutputsMatch(redis, n, expected, 'windows');
});

it('a stage error that clears within the retries changes nothing', async () => {
  const n = testNames('transient');
  await loadInput(n, 20_000, 45);
  const config = configWith(n, { top: { retry: { attempts: 3, backoff: '1ms' } } });
  const expected = await expectedFor(redis, n, config);
  const p = await startPipeline(config, { STREAMSHARD_FAULTS: 'stage-throw=k7:2' });
  await drained(n, expected.sink.length, expected.deadLetters.length);
  expect(await metric(p.metricsPort, 'streamshard_stage_retries_total')).toBeGreaterThan(100);
  expect(await p.stop()).toBe(0);
  await expectOutputsMatch(redis, n, expected, 'windows');
});

/** Pass-through output of a clean input where every entry of `poisonKey` is dead-lettered with `code`. */
async function expectPoisonedPassThrough(n: TestNames, poisonKey: string, code: string): Promise<void> {
  const input = await readStream(redis, n.input);
  const isPoison = (fields: Buffer[]) => pairsOf(fields).some(([k, v]) => k === 'key' && v === poisonKey);
  const sink = (await readStream(redis, n.sink)).map((e) => pairsOf(e.fields));
  expect(
    diffPassThrough(
      input.filter((e) => !isPoison(e.fields)).map((e) => pairsOf(e.fields)),
      sink,
    ),
  ).toEqual([]);
  const dlq = sortBySourceId((await readStream(redis, n.dlq)).map(deadLetterOf));
  const poisoned = input.filter((e) => isPoison(e.fields));
  expect(poisoned.length).toBeGreaterThan(3);
  expect(dlq.map((d) => [d.sourceId, d.code])).toEqual(poisoned.map((e) => [e.id, code]));
  for (const d of dlq) expect(d.fields.map((f) => f[0])).toContain('deliveries');
}

it('an event whose stage always throws is dead-lettered after the retries, with its delivery count', async () => {
  const n = testNames('poison');
  await loadInput(n, 5000, 46, false);
  const config = configWith(n, { stages: [], top: { retry: { attempts: 3, backoff: '1ms' } } });
  const input = await readStream(redis, n.input);
  const poison = input.filter((e) => pairsOf(e.fields).some(([k, v]) => k === 'key' && v === 'k3')).length;
  const p = await startPipeline(config, { STREAMSHARD_FAULTS: 'stage-throw=k3:always' });
  await drained(n, input.length - poison, poison);
  expect(
    await metric(p.metricsPort, 'streamshard_events_dead_lettered_total', { reason: 'E_STAGE_FAILED' }),
  ).toBe(poison);
  expect(await p.stop()).toBe(0);
  await expectPoisonedPassThrough(n, 'k3', 'E_STAGE_FAILED');
  const first = deadLetterOf((await readStream(redis, n.dlq))[0] as (typeof input)[number]);
  expect(first.error).toMatch(/^E_STAGE_FAILED: 3 tries failed, last: injected stage fault/);
});

it('a crashed shard worker is restarted from the checkpoint; the output is exact', async () => {
  const n = testNames('crash');
  await loadInput(n, 40_000, 47);
  const config = configWith(n, {});
  const expected = await expectedFor(redis, n, config);
  const p = await startPipeline(config, { STREAMSHARD_FAULTS: 'crash-worker-once=1:4' });
  await drained(n, expected.sink.length, expected.deadLetters.length);
  expect(await metric(p.metricsPort, 'streamshard_worker_restarts_total')).toBe(1);
  expect(await p.stop()).toBe(0);
  expect(p.logs().some((l) => l.includes('shard worker crashed'))).toBe(true);
  await expectOutputsMatch(redis, n, expected, 'windows');
});

it('an entry that crashes the worker every time is isolated and dead-lettered; the rest is exact', async () => {
  const n = testNames('crashkey');
  await loadInput(n, 1500, 48, false);
  const config = configWith(n, { stages: [], top: { retry: { attempts: 2, backoff: '1ms' } } });
  const input = await readStream(redis, n.input);
  const poison = input.filter((e) => pairsOf(e.fields).some(([k, v]) => k === 'key' && v === 'k5')).length;
  const p = await startPipeline(config, { STREAMSHARD_FAULTS: 'crash-on-key=k5' });
  await drained(n, input.length - poison, poison);
  expect(await p.stop()).toBe(0);
  const dlq = (await readStream(redis, n.dlq)).map(deadLetterOf);
  expect(dlq.every((d) => d.error.startsWith('E_WORKER_CRASH: '))).toBe(true);
  await expectPoisonedPassThrough(n, 'k5', 'E_WORKER_CRASH');
});

it('pending entries delivered more than maxDeliveries times are dead-lettered without processing', async () => {
  const n = testNames('deliveries');
  await loadInput(n, 2000, 49, false);
  await redis.xgroup('CREATE', n.input, n.group, '0');
  // a previous life read 10 entries and crashed on them four times (each re-read counts a delivery)
  await redis.xreadgroup('GROUP', n.group, n.consumer, 'COUNT', 10, 'STREAMS', n.input, '>');
  for (let i = 0; i < 3; i++)
    await redis.xreadgroup('GROUP', n.group, n.consumer, 'COUNT', 10, 'STREAMS', n.input, '0');
  const config = configWith(n, { stages: [], source: { maxDeliveries: 4 } });
  const p = await startPipeline(config);
  await drained(n, 1990, 10);
  expect(await p.stop()).toBe(0);
  const input = await readStream(redis, n.input);
  const dlq = (await readStream(redis, n.dlq)).map(deadLetterOf);
  expect(sortBySourceId(dlq).map((d) => d.sourceId)).toEqual(input.slice(0, 10).map((e) => e.id));
  for (const d of dlq) {
    expect(d.error).toBe('E_MAX_DELIVERIES: delivered 5 times (source.maxDeliveries is 4)');
    expect(d.fields.slice(-1)).toEqual([['deliveries', '5']]);
  }
  const sink = (await readStream(redis, n.sink)).map((e) => pairsOf(e.fields));
  expect(
    diffPassThrough(
      input.slice(10).map((e) => pairsOf(e.fields)),
      sink,
    ),
  ).toEqual([]);
  expect(sink).toHaveLength(1990);
});

it('when Redis no longer has the previous commit (lost writes), the leader reloads its state from Redis', async () => {
  const n = testNames('statelost');
  const COUNT = 60_000;
  await loadInput(n, COUNT, 50);
  const config = configWith(n, {});
  const expected = await expectedFor(redis, n, config);
  const p = await startPipeline(config);
  await waitFor('a fifth acked', async () => (await acked(n)) >= COUNT / 5);
  // what a restart with `appendfsync everysec` or a failover to a lagging replica looks like to shard 0
  const keys = new CheckpointKeys(n.keyPrefix, n.input, n.group);
  await redis.hset(keys.applied(), '0', 'a-commit-redis-lost');
  await waitFor('the leader reloads', async () => p.logs().some((l) => l.includes('reloading all state')));
  await drained(n, expected.sink.length, expected.deadLetters.length);
  expect(await p.stop()).toBe(0);
  await expectOutputsMatch(redis, n, expected, 'windows');
});

it('reader connections killed mid-read (no Redis restart): reads resume, nothing stuck, output exact', async () => {
  const n = testNames('blips');
  const COUNT = 60_000;
  await loadInput(n, COUNT, 52);
  const config = configWith(n, { top: { name: n.group } });
  const expected = await expectedFor(redis, n, config);
  const p = await startPipeline(config);
  const readerId = async () => {
    const list = String(await redis.client('LIST')).split('\n');
    const line = list.find((l) => l.includes(`name=streamshard:${n.group}:reader`));
    return line === undefined ? undefined : /id=(\d+)/.exec(line)?.[1];
  };
  for (let i = 1; i <= 5; i++) {
    await waitFor(`${i * 10}% acked`, async () => (await acked(n)) >= (COUNT * i) / 10);
    await waitFor('the reader is connected', async () => (await readerId()) !== undefined);
    const id = (await readerId()) as string;
    await redis.client('KILL', 'ID', id);
  }
  await drained(n, expected.sink.length, expected.deadLetters.length, 40_000);
  expect(await p.stop()).toBe(0);
  await expectOutputsMatch(redis, n, expected, 'windows');
});
