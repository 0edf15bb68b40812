/**
 * Entries Redis holds but a pipeline cannot copy or should not load never stop it (issue 10, items 1–2):
 * a wide entry (40,001 field pairs) is processed in window mode and dead-lettered E_ENTRY_TOO_LARGE in
 * pass-through mode (a copy is one XADD); entries past `source.maxEntryBytes` — one long value, or many
 * small fields — are dead-lettered with their key only. Everything else comes out exactly as the oracle
 * says, and every dead letter's `source_id` is a real input ID.
 */
import { encode } from '@msgpack/msgpack';
import { expect, it } from 'vitest';
import { CheckpointKeys } from '../src/redis/checkpointKeys.js';
import { RespConnection } from '../src/redis/respConnection.js';
import { RedisSource } from '../src/source/redisSource.js';
import { expectedFor, expectOutputsMatch } from './helpers/expectations.js';
import {
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
import { deadLetterOf } from './helpers/reference.js';

useTestHooks();

const T = 1_700_000_000_000;
const WINDOW = {
  window: { size: '1s', idleClose: '1s', aggregates: [{ fn: 'sum', field: 'amount' }] },
};

const body = (i: number) => Buffer.from(encode({ id: `e${i}`, ts: T + i * 10, amount: i }));

/** `n` field pairs `f<i> v<i>`. */
function pairs(n: number, prefix = 'f'): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`${prefix}${i}`, `v${i}`);
  return out;
}

/**
 * Normal entries of keys a, b, c, with `special` written after the 100th, all in the stream before the
 * pipeline starts.
 */
async function fill(n: TestNames, special: Array<Array<string | Buffer>>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (i === 100) for (const fields of special) await redis.xadd(n.input, '*', ...fields);
    await redis.xadd(n.input, '*', 'key', 'abc'[i % 3] as string, 'data', body(i));
  }
}

async function runToDrain(n: TestNames, config: string, mode: 'windows' | 'pass-through') {
  const expected = await expectedFor(redis, n, config);
  const p = await startPipeline(config);
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: expected.sink.length, [n.dlq]: expected.deadLetters.length },
  });
  expect(p.running()).toBe(true); // still running after all of it
  expect(await p.stop()).toBe(0);
  expect(state).toMatchObject({ done: true, group: { pending: 0, caughtUp: true } });
  await expectOutputsMatch(redis, n, expected, mode);
  // no junk: every dead letter names an input entry
  const ids = new Set((await readStream(redis, n.input)).map((e) => e.id));
  const dlq = (await readStream(redis, n.dlq)).map(deadLetterOf);
  expect(dlq.filter((d) => !ids.has(d.sourceId))).toEqual([]);
  return { expected, dlq, logs: p.logs() };
}

const WIDE = ['key', 'a', 'data', body(100), ...pairs(40_000)]; // in time order with the rest

it('windows: an entry of 40,001 field pairs between entries of its key is processed and counted', async () => {
  const n = testNames('wide-windows');
  await fill(n, [WIDE]);
  const config = pipelineConfig(n, { shards: 1, stages: [WINDOW] });
  const { expected, dlq } = await runToDrain(n, config, 'windows');
  expect(dlq).toEqual([]);
  const a1000 = expected.sink.find((r) => r[0]?.[1] === 'a' && r[1]?.[1] === String(T + 1000));
  expect(a1000).toBeDefined(); // the wide entry's window (ts T + 1,000) is in the compared output
});

it('pass-through: that entry is dead-lettered E_ENTRY_TOO_LARGE with its key, the rest passes through', async () => {
  const n = testNames('wide-pass');
  await fill(n, [WIDE]);
  const config = pipelineConfig(n, { shards: 1 });
  const { dlq } = await runToDrain(n, config, 'pass-through');
  expect(dlq.map((d) => [d.code, d.fields, d.error])).toEqual([
    [
      'E_ENTRY_TOO_LARGE',
      [['key', 'a']],
      'E_ENTRY_TOO_LARGE: 80004 fields (names and values): more than one XADD can copy (5988)',
    ],
  ]);
});

it('entries past source.maxEntryBytes — one long value, or many small fields — are dead-lettered with their key', async () => {
  const n = testNames('too-large');
  const long = Buffer.alloc(2 * 1024 * 1024, 0x61);
  await fill(n, [
    ['key', 'b', 'data', long],
    ['key', 'c', 'data', body(101), ...pairs(500, 'field')], // ~5.6 KB in small fields
    ['data', long], // no key at all
  ]);
  const c = JSON.parse(pipelineConfig(n, { shards: 2, stages: [WINDOW] }));
  c.source.maxEntryBytes = 4096;
  const { dlq } = await runToDrain(n, JSON.stringify(c), 'windows');
  const limit = '(field names and values) is larger than source.maxEntryBytes (4096)';
  const byKey = (d: { fields: unknown }) => JSON.stringify(d.fields);
  const got = [...dlq].sort((x, y) => (byKey(x) < byKey(y) ? -1 : 1)).map((d) => [d.fields, d.error]);
  expect(got).toEqual([
    [[['key', 'b']], `E_ENTRY_TOO_LARGE: entry of ${long.length + 8} bytes ${limit}`],
    [[['key', 'c']], expect.stringMatching(/^E_ENTRY_TOO_LARGE: entry of \d+ bytes \(field names/)],
    [[], `E_ENTRY_TOO_LARGE: entry of ${long.length + 4} bytes ${limit}`],
  ]);
});

it('an idle reader woken by a burst fetches one entry to wake up, not the whole burst', async () => {
  const n = testNames('wake');
  const lease = new CheckpointKeys(n.keyPrefix, n.input, n.group).lease();
  await redis.set(lease, '1:a');
  await redis.xgroup('CREATE', n.input, n.group, '0', 'MKSTREAM');
  const name = `test:reader:${n.group}`;
  const reader = new RespConnection({ url: redisUrl(), name, connectTimeoutMs: 2000 });
  await reader.connect();
  const source = new RedisSource(reader, {
    stream: n.input,
    group: n.group,
    consumer: 'a',
    batchSize: 100,
    blockMs: 10_000,
    fence: () => ({ leaseKey: lease, token: '1:a' }),
  });
  expect((await source.read()).entries.count).toBe(0); // the (empty) re-read of own pending entries
  const copied = reader.replies.copied;
  const reading = source.read(); // nothing new: it blocks in XREAD until entries come
  await waitFor('the reader blocked in XREAD', async () =>
    String(await redis.call('CLIENT', 'LIST'))
      .split('\n')
      .find((l: string) => l.includes(`name=${name} `) && l.includes('cmd=xread')),
  );
  const burst = redis.multi();
  for (let i = 0; i < 2000; i++) burst.xadd(n.input, '*', 'key', `k${i}`, 'data', Buffer.alloc(1000, 0x61));
  await burst.exec();
  expect((await reading).entries.count).toBe(100); // batchSize
  // the fenced read's ~100 KB (when its reply spanned chunks), not the 2 MB of the whole burst
  expect(reader.replies.copied - copied).toBeLessThan(500_000);
  reader.disconnect();
});
