/**
 * Keys are bytes end to end (issue 10, item 3), through the CLI: keys that are not valid UTF-8 (`\xff`,
 * `\xfe`, keys that differ only in such bytes, short and long), a leading BOM, a valid multi-byte key.
 * Results read back with XRANGE carry each key's exact bytes and equal the brute-force reference; the
 * checkpoint's hash fields are the exact key bytes; after kill -9 mid-window and a restart no two keys'
 * states merge; dead letters copy the key's bytes. The same run checks the number rules (a hex string is
 * no number) and sum overflow (`E_OVERFLOW`, the window unchanged).
 */
import { encode } from '@msgpack/msgpack';
import { expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { CheckpointKeys } from '../src/redis/checkpointKeys.js';
import { fnv1a, keyGroupOf } from '../src/routing/hash.js';
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
import { deadLetterOf, raw } from './helpers/reference.js';

useTestHooks();

const T = 1_700_000_000_000;

const KEYS: Buffer[] = [
  Buffer.of(0xff),
  Buffer.of(0xfe),
  Buffer.of(0x6b, 0xff), // keys differing only in an invalid byte
  Buffer.of(0x6b, 0xfe),
  Buffer.concat([Buffer.from('a-long-key-name-'), Buffer.of(0xff)]), // > 12 bytes: another decode path
  Buffer.concat([Buffer.from('a-long-key-name-'), Buffer.of(0xfe)]),
  Buffer.from('\uFEFFk'), // a leading BOM is key bytes
  Buffer.from('k'),
  Buffer.from('é€'), // valid multi-byte UTF-8
];

/** `count` events from `from` on, 5 ms apart in event time, keys in turn. */
function events(from: number, count: number): Array<Array<string | Buffer>> {
  return Array.from({ length: count }, (_, j) => {
    const i = from + j;
    const body = { id: `e${i}`, ts: T + i * 5, amount: (i % 13) - 3 };
    return ['key', KEYS[i % KEYS.length] as Buffer, 'data', Buffer.from(encode(body))];
  });
}

async function add(stream: string, entries: Array<Array<string | Buffer>>): Promise<void> {
  const p = redis.pipeline();
  for (const fields of entries) p.xadd(stream, '*', ...fields);
  await p.exec();
}

it('keeps every key its own bytes in results, checkpoint and dead letters, across kill -9', async () => {
  const n = testNames('binary-keys');
  const stages = (idleClose: string) => [
    {
      window: {
        size: '1s',
        idleClose,
        aggregates: [
          { fn: 'count' },
          { fn: 'sum', field: 'amount' },
          { fn: 'min', field: 'amount' },
          { fn: 'max', field: 'amount' },
          { fn: 'avg', field: 'amount' },
        ],
      },
    },
  ];
  // Run 1 closes windows by event time only, so the open window is in the checkpoint when it is killed.
  const first = pipelineConfig(n, { shards: 2, batchSize: 50, stages: stages('0') });
  const second = pipelineConfig(n, { shards: 2, batchSize: 50, stages: stages('1s') });

  const bad = (key: Buffer, amount: unknown, ts = T + 1000) => [
    'key',
    key,
    'data',
    Buffer.from(encode({ id: `bad-${raw(key)}-${String(amount)}`, ts, amount })),
  ];
  await add(n.input, [
    ...events(0, 300),
    bad(Buffer.of(0xff), 'abc'), // E_BAD_FIELD: the dead letter keeps the key's bytes
    bad(Buffer.of(0xfe), '0x10'), // a hex string is not a number: E_BAD_FIELD, not 16
    bad(Buffer.of(0xfd), 1e308, T + 1400), // two sums of 1e308 in one window: the second overflows
    bad(Buffer.of(0xfd), 1e308, T + 1401),
    ...events(300, 300),
  ]);

  let p = await startPipeline(first);
  let state = await waitForDrain(redis, { stream: n.input, group: n.group, outputs: {} });
  expect(state.done).toBe(true);

  // The open window [T+2000, T+3000) is checkpointed with one hash field per key, each its exact bytes.
  const c = parseConfig(first, '(test)', { env: {} });
  const keys = new CheckpointKeys(c.redis.keyPrefix, c.source.stream, c.source.group);
  const held: string[] = [];
  for (const key of KEYS) {
    const hash = keys.window(keyGroupOf(fnv1a(key), c.keyGroups), T + 2000);
    const fields = (await redis.callBuffer('HGETALL', hash)) as Buffer[];
    for (let i = 0; i < fields.length; i += 2) held.push(raw(fields[i] as Buffer));
  }
  expect([...new Set(held)].sort()).toEqual(KEYS.map(raw).sort());

  await p.kill9();
  await add(n.input, events(600, 500));
  const expected = await expectedFor(redis, n, second);
  expect(expected.counts.deadLettered).toEqual({ E_BAD_FIELD: 2, E_OVERFLOW: 1 });
  p = await startPipeline(second);
  state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: expected.sink.length, [n.dlq]: expected.deadLetters.length },
  });
  expect(await p.stop()).toBe(0);
  expect(state.done).toBe(true);
  // Whole output: results by (exact key bytes, window), dead letters with their original field bytes.
  await expectOutputsMatch(redis, n, expected, 'windows');
  expect(new Set(expected.sink.map((r) => r[0]?.[1])).size).toBe(KEYS.length + 1); // + the 1e308 key
  const overflow = (await readStream(redis, n.dlq)).map(deadLetterOf).find((d) => d.code === 'E_OVERFLOW');
  expect(overflow?.error).toMatch(
    /^E_OVERFLOW: sum_amount of the key's window \[1700000001000, 1700000002000\) would exceed 1\.79/,
  );
});
