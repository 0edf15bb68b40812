/**
 * The `order` stage, whole output against the brute-force oracle on 4 shards: per key, versions arrive
 * shuffled, with gaps that never fill (missing versions), duplicates, malformed versions and bodies, and
 * event times out of order. Pass-through with `onGap: deadLetter` (the output per key must come in version
 * order), windows with `onGap: skip`, and a kill -9 mid-load whose restart must neither lose nor reorder
 * held events (they live in the checkpoint). Limit of the oracle: it does not model idle ticks, so held
 * events must not wait for one at the end (see the flush rounds).
 */
import { decode, encode } from '@msgpack/msgpack';
import { expect, it } from 'vitest';
import { mulberry32 } from '../src/tools/produce/generator.js';
import { killMidLoad, restartAndCompare } from './helpers/crash.js';
import { expectedFor, expectOutputsMatch } from './helpers/expectations.js';
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

const T = 1_700_000_000_000;

/**
 * `keys` keys with versions 1..perKey each: ~2% never sent (gaps), ~3% sent twice, each key's sequence
 * shuffled locally (a version moves up to 6 places), ~1% with a bad version and a few undecodable
 * bodies; keys interleaved at random, event times 2 ms apart ± 300 ms.
 */
async function produceVersions(
  stream: string,
  seed: number,
  keys: number,
  perKey: number,
  flushRounds = 0,
): Promise<number> {
  const rnd = mulberry32(seed);
  const queues: Array<Array<Record<string, unknown> | 'bad-body'>> = [];
  for (let k = 0; k < keys; k++) {
    const q: Array<Record<string, unknown> | 'bad-body'> = [];
    for (let v = 1; v <= perKey; v++) {
      const x = rnd();
      if (x < 0.02) continue; // a gap that never fills
      q.push({ id: `k${k}-${v}`, v, amount: 1 + Math.floor(rnd() * 100) });
      if (x < 0.05)
        q.push({ id: `k${k}-${v}`, v, amount: 0 }); // a resent version
      else if (x < 0.06) q.push({ id: `k${k}-bad${v}`, v: rnd() < 0.5 ? 'abc' : undefined, amount: 1 });
      else if (x < 0.062) q.push('bad-body');
    }
    for (let i = 0; i < q.length; i++) {
      if (rnd() < 0.3) {
        const j = Math.min(q.length - 1, i + 1 + Math.floor(rnd() * 6));
        [q[i], q[j]] = [q[j] as Record<string, unknown>, q[i] as Record<string, unknown>];
      }
    }
    queues.push(q);
  }
  let n = 0;
  let pipe = redis.pipeline();
  for (;;) {
    const live = queues.map((q, k) => [q, k] as const).filter(([q]) => q.length > 0);
    if (live.length === 0) break;
    const [q, k] = live[Math.floor(rnd() * live.length)] as (typeof live)[number];
    const item = q.shift();
    const ts = T + n * 2 + Math.floor((rnd() - 0.5) * 600);
    const data = item === 'bad-body' ? Buffer.from('not msgpack') : Buffer.from(encode({ ...item, ts }));
    pipe.xadd(stream, '*', 'key', `k${k}`, 'data', data);
    if (++n % 1000 === 0) {
      await pipe.exec();
      pipe = redis.pipeline();
    }
  }
  // Rounds of one event per key with no valid version (E_BAD_VERSION) far later in event time: they move
  // every shard's stream time past each gap's timeout, so that gaps are resolved while input is processed,
  // not by idle ticks at the end (which the oracle does not model).
  const lastTs = T + n * 2;
  for (let round = 1; round <= flushRounds; round++) {
    for (let k = 0; k < keys; k++) {
      const body = { id: `flush-${round}-${k}`, v: 'none', amount: 50, ts: lastTs + round * 5000 };
      pipe.xadd(stream, '*', 'key', `k${k}`, 'data', Buffer.from(encode(body)));
      n++;
    }
  }
  await pipe.exec();
  return n;
}

async function run(n: ReturnType<typeof testNames>, config: string, windows: boolean) {
  const expected = await expectedFor(redis, n, config);
  const p = await startPipeline(config);
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: expected.sink.length, [n.dlq]: expected.deadLetters.length },
  });
  expect(await p.stop()).toBe(0);
  await expectOutputsMatch(redis, n, expected, windows ? 'windows' : 'pass-through');
  expect(state).toMatchObject({ done: true, group: { pending: 0, caughtUp: true } });
  return expected;
}

it('pass-through, gaps dead-lettered: equals the reference, each key in version order', async () => {
  const n = testNames('order-dl');
  await produceVersions(n.input, 71, 60, 150);
  const config = pipelineConfig(n, {
    shards: 4,
    stages: [{ order: { versionPath: 'v', maxBuffered: 5, timeout: '400ms', onGap: 'deadLetter' } }],
  });
  const expected = await run(n, config, false);
  expect(expected.counts.deadLettered.E_VERSION_GAP).toBeGreaterThan(50);
  expect(expected.counts.deadLettered.E_BAD_VERSION).toBeGreaterThan(20);
  expect(expected.counts.deduplicated).toBeGreaterThan(200);
  // what the reference promises, checked on the sink itself: per key, versions strictly increasing
  const last = new Map<string, number>();
  for (const e of await readStream(redis, n.sink)) {
    const key = (e.fields[1] as Buffer).toString();
    const v = (decode(e.fields[3] as Buffer) as { v: number }).v;
    expect(v, key).toBeGreaterThan(last.get(key) ?? Number.NEGATIVE_INFINITY);
    last.set(key, v);
  }
});

it('windows behind the order stage, gaps skipped: equals the reference', async () => {
  const n = testNames('order-skip');
  await produceVersions(n.input, 72, 60, 150, 6); // maxBuffered 4: at most 4 resolutions per key
  const config = pipelineConfig(n, {
    shards: 4,
    stages: [
      { filter: { where: [{ field: 'amount', op: 'gt', value: 3 }] } },
      { order: { versionPath: 'v', maxBuffered: 4, timeout: '300ms', onGap: 'skip' } },
      { dedup: { ttl: '1s', maxEntries: 1000 } },
      {
        window: { size: '1s', grace: '200ms', idleClose: '1s', aggregates: [{ fn: 'sum', field: 'amount' }] },
      },
    ],
  });
  const expected = await run(n, config, true);
  expect(expected.counts.windowsEmitted).toBeGreaterThan(500);
  expect(expected.counts.late).toBeGreaterThan(0);
});

it('kill -9 mid-load, restart: held events are neither lost nor reordered', async () => {
  const n = testNames('order-kill9');
  const count = await produceVersions(n.input, 73, 200, 600);
  const config = pipelineConfig(n, {
    shards: 4,
    stages: [{ order: { versionPath: 'v', maxBuffered: 6, timeout: '2s', onGap: 'skip' } }],
  });
  const expected = await expectedFor(redis, n, config);
  await killMidLoad(redis, n, config, count);
  const held = await redis.keys(`${n.keyPrefix}:*:ob:*`);
  expect(held.length, 'held events in the checkpoint at the crash').toBeGreaterThan(0);

  await restartAndCompare(redis, n, config, expected, 'pass-through');
});
