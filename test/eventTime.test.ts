/**
 * Stream time against bad clocks and slow reads, through the real CLI: an event from the future is
 * dead-lettered (E_FUTURE_TIME) and moves no stream time; a checkpoint poisoned by one before the check
 * existed is capped at restore; a read whose reply is slow does not count as quiet time for idle close.
 * Whole outputs are compared with the reference (test/helpers/reference.ts).
 */
import { encode } from '@msgpack/msgpack';
import { expect, it } from 'vitest';
import { CheckpointKeys } from '../src/redis/checkpointKeys.js';
import { expectedFor, expectOutputsMatch } from './helpers/expectations.js';
import {
  pipelineConfig,
  redis,
  startPipeline,
  type TestNames,
  testNames,
  useTestHooks,
  waitForDrain,
} from './helpers/pipeline.js';
import { waitFor } from './helpers/redis.js';
import { asRecord } from './helpers/reference.js';

useTestHooks();

const YEAR_2100 = Date.UTC(2100, 0, 1);

type Body = Record<string, unknown>;

function xadd(key: string, body: Body): Array<string | Buffer> {
  return ['*', 'key', key, 'data', Buffer.from(encode(body))];
}

/** Adds the events in one MULTI, so that one read sees all of them or none. */
async function addAll(stream: string, events: Array<[string, Body]>): Promise<void> {
  const tx = redis.multi();
  for (const [key, body] of events) tx.xadd(stream, ...(xadd(key, body) as [string, ...string[]]));
  await tx.exec();
}

/** The `<ns>:st` hash: key group → stream time. */
async function streamTimes(n: TestNames): Promise<number[]> {
  const keys = new CheckpointKeys(n.keyPrefix, n.input, n.group);
  return Object.values(await redis.hgetall(keys.streamTime())).map(Number);
}

function windowConfig(n: TestNames, window: Body, extra: Body = {}, shards = 2): string {
  return pipelineConfig(n, {
    shards,
    stages: [{ window: { aggregates: [{ fn: 'sum', field: 'amount' }], ...window } }],
    extra,
  });
}

/** Normal events a little in the past, with events from the future (and beyond Date's range) among them. */
function mixedInput(base: number): Array<[string, Body]> {
  const events: Array<[string, Body]> = [];
  for (let i = 0; i < 300; i++) events.push([`k${i % 12}`, { id: `e${i}`, ts: base + i * 20, amount: i }]);
  const wrongOffset = new Date().toISOString().replace('Z', '-12:00'); // the clock's digits, 12 h ahead
  events.splice(40, 0, ['k1', { id: 'f1', ts: YEAR_2100, amount: 1000 }]);
  events.splice(90, 0, ['k2', { id: 'f2', ts: 1e308, amount: 1000 }]);
  events.splice(150, 0, ['k3', { id: 'f3', ts: wrongOffset, amount: 1000 }]);
  events.splice(200, 0, ['k4', { id: 'f4', ts: String(YEAR_2100), amount: 1000 }]);
  return events;
}

it('dead-letters events from the future as E_FUTURE_TIME; every other window exact, stream time unmoved', async () => {
  const n = testNames('future');
  const base = Math.floor((Date.now() - 60_000) / 1000) * 1000;
  await addAll(n.input, mixedInput(base));
  const config = windowConfig(n, { size: '1s', idleClose: '500ms' });
  const expected = await expectedFor(redis, n, config);
  expect(expected.counts.deadLettered).toEqual({ E_FUTURE_TIME: 3, E_BAD_TIME: 1 });
  expect(expected.counts.late).toBe(0);

  const p = await startPipeline(config);
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: expected.sink.length, [n.dlq]: expected.deadLetters.length },
  });
  expect(state.done).toBe(true);
  await expectOutputsMatch(redis, n, expected, 'windows');
  // stream time is the last event's plus the idle close's quiet time: never the future event's
  const times = await streamTimes(n);
  expect(times.length).toBeGreaterThan(0);
  for (const t of times) {
    expect(t).toBeGreaterThanOrEqual(base);
    expect(t).toBeLessThanOrEqual(Date.now());
  }
  expect(await p.stop()).toBe(0);
});

it('with maxFutureSkew 0 an event from the future moves stream time, as before the check', async () => {
  const n = testNames('future-off');
  const base = Math.floor((Date.now() - 60_000) / 1000) * 1000;
  await addAll(n.input, mixedInput(base));
  const config = windowConfig(n, { size: '1s', idleClose: '500ms' }, { body: { maxFutureSkew: 0 } });
  const expected = await expectedFor(redis, n, config);
  expect(expected.counts.late).toBeGreaterThan(100);
  expect(expected.counts.deadLettered.E_FUTURE_TIME).toBeUndefined();
  // the windows of the events from the future never close: stream time never passes them
  expected.sink = expected.sink.filter((w) => Number(asRecord(w).window_start) < base + 3_600_000);
  const p = await startPipeline(config);
  await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: expected.sink.length, [n.dlq]: expected.deadLetters.length },
  });
  await expectOutputsMatch(redis, n, expected, 'windows');
  expect(Math.max(...(await streamTimes(n)))).toBe(YEAR_2100);
  expect(await p.stop()).toBe(0);
});

it('caps a checkpointed stream time from the future at restore, logs it, and later events are not late', async () => {
  const n = testNames('future-restore');
  // 1. a checkpoint poisoned as before the check: maxFutureSkew 0 lets the event move stream time
  const window = { size: '1s', grace: '3s', idleClose: '500ms' };
  await addAll(n.input, [['k', { id: 'f', ts: YEAR_2100, amount: 1 }]]);
  const old = await startPipeline(windowConfig(n, window, { body: { maxFutureSkew: 0 } }, 1));
  await waitFor('the stream time of 2100 in the checkpoint', async () =>
    (await streamTimes(n)).includes(YEAR_2100),
  );
  expect(await old.stop()).toBe(0);
  const poisonedId = (await redis.xrange(n.input, '-', '+'))[0]?.[0] as string;

  // 2. restarted with the check on: capped to now + 1s, with a warning naming the shard and both times
  const config = windowConfig(n, window, { body: { maxFutureSkew: '1s' } }, 1);
  const restartedAt = Date.now();
  const p = await startPipeline(config);
  const warning = p
    .logs()
    .filter((l) => l.includes('checkpointed stream time is further ahead'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)[0];
  expect(warning).toMatchObject({ level: 'warn', shard: 0, storedStreamTime: YEAR_2100 });
  const capped = warning?.cappedTo as number;
  expect(capped).toBeGreaterThanOrEqual(restartedAt + 1000);
  expect(capped).toBeLessThanOrEqual(Date.now() + 1000);

  // 3. events stamped now are not late (without the cap every one of them would be)
  const now = Date.now();
  await addAll(
    n.input,
    Array.from({ length: 50 }, (_, i): [string, Body] => [
      `k${i % 5}`,
      { id: `e${i}`, ts: now - 1000 + i, amount: i },
    ]),
  );
  const all = await expectedFor(redis, n, config);
  // the reference replays the whole stream with the check on: the 2100 event is E_FUTURE_TIME there,
  // while the pipeline took it (with the check off) into a window that never closes
  const expected = {
    ...all,
    deadLetters: all.deadLetters.filter((d) => d.sourceId !== poisonedId),
  };
  expect(all.deadLetters.map((d) => d.code)).toEqual(['E_FUTURE_TIME']);
  await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: expected.sink.length },
  });
  await expectOutputsMatch(redis, n, expected, 'windows');
  expect(await p.stop()).toBe(0);
});

it('does not count a slow read as quiet time: the events behind it are not late', async () => {
  const n = testNames('slow-read');
  const w = Math.floor((Date.now() - 60_000) / 2000) * 2000;
  const config = windowConfig(n, { size: '2s', idleClose: '300ms' }, {}, 1);
  // read 1: the first events of the window; read 2 (held back 3 s): more events of the same window
  await addAll(
    n.input,
    Array.from({ length: 20 }, (_, i): [string, Body] => [
      `k${i % 4}`,
      { id: `a${i}`, ts: w + 100, amount: i },
    ]),
  );
  const p = await startPipeline(config, { STREAMSHARD_FAULTS: 'hold-read-reply=2:3000' });
  await waitFor('the first read committed', async () => {
    const s = await waitForDrain(redis, { stream: n.input, group: n.group, outputs: {}, timeoutMs: 0 });
    return s.done;
  });
  await addAll(
    n.input,
    Array.from({ length: 20 }, (_, i): [string, Body] => [
      `k${i % 4}`,
      { id: `b${i}`, ts: w + 100 + i * 10, amount: 100 + i },
    ]),
  );
  const expected = await expectedFor(redis, n, config);
  expect(expected.counts.late).toBe(0);
  await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: expected.sink.length },
  });
  await expectOutputsMatch(redis, n, expected, 'windows'); // no E_LATE, every window whole
  expect(await p.stop()).toBe(0);
});
