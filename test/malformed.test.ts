/**
 * Bad input never stops the pipeline: every malformed entry goes to the dead-letter stream with its
 * original fields, an `error` carrying the code, and `source_id`; it is acked; the valid events around it
 * still produce exactly the expected results.
 */
import { encode } from '@msgpack/msgpack';
import { expect, it } from 'vitest';
import { produce } from '../src/tools/produce/producer.js';
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
import { deadLetterOf, pairsOf } from './helpers/reference.js';

useTestHooks();

const T = 1_700_000_000_000;
const COUNT = 3000;

it.each(['msgpack', 'json'] as const)(
  '%s: dead-letters every kind of malformed entry, acks it, keeps going',
  async (encoding) => {
    const n = testNames(`malformed-${encoding}`);
    const body = (v: unknown) => (encoding === 'json' ? JSON.stringify(v) : Buffer.from(encode(v)));
    // generated: undecodable body, missing key, missing ts, ts "yesterday", amount "abc", empty key
    await produce(redis, n.input, {
      count: COUNT,
      keys: 20,
      seed: 21,
      duplicatePct: 0,
      outOfOrderPct: 0,
      malformedPct: 20,
      startTs: T,
      intervalMs: 1,
      outOfOrderMaxMs: 1,
      encoding,
    });
    // written by hand: what the generator does not make, then valid events after all the bad ones
    const ts = T + COUNT;
    const handWritten: Array<[string, Array<string | Buffer>]> = [
      ['E_MISSING_ID', ['key', 'k1', 'data', body({ ts, amount: 1 })]],
      ['E_MISSING_ID', ['key', 'k1', 'data', body({ id: { x: 1 }, ts, amount: 1 })]],
      ['E_BAD_BODY', ['key', 'k1', 'data', body([1, 2, 3])]],
      ['E_BAD_BODY', ['key', 'k1', 'other', 'x']],
      ['E_BAD_FIELD', ['key', 'k1', 'data', body({ id: 'm1', ts, amount: true }), 'extra', 'kept']],
      ['E_BAD_TIME', ['key', 'k1', 'data', body({ id: 'm2', ts: 'soon', amount: 1 })]],
      ['ok', ['key', 'k1', 'data', body({ id: 'm3', ts: new Date(ts).toISOString(), amount: '2.5' })]],
      ['ok', ['key', 'k2', 'data', body({ id: 'm4', ts: String(ts + 1), amount: 4 })]],
    ];
    for (const [, fields] of handWritten) await redis.xadd(n.input, '*', ...fields);

    const config = pipelineConfig(n, {
      shards: 2,
      extra: { body: { encoding } },
      stages: [
        { dedup: { ttl: '10s' } },
        {
          window: {
            size: '1s',
            idleClose: '1s',
            aggregates: [
              { fn: 'sum', field: 'amount' },
              { fn: 'max', field: 'amount' },
            ],
          },
        },
      ],
    });
    const expected = await expectedFor(redis, n, config);
    for (const code of [
      'E_MISSING_KEY',
      'E_BAD_BODY',
      'E_MISSING_TIME',
      'E_BAD_TIME',
      'E_MISSING_ID',
      'E_BAD_FIELD',
    ]) {
      expect(expected.counts.deadLettered[code as 'E_BAD_BODY']).toBeGreaterThan(0);
    }

    const p = await startPipeline(config);
    const state = await waitForDrain(redis, {
      stream: n.input,
      group: n.group,
      outputs: { [n.sink]: expected.sink.length, [n.dlq]: expected.deadLetters.length },
    });
    // still running after all of it
    expect(p.running()).toBe(true);
    expect(await p.stop()).toBe(0);

    await expectOutputsMatch(redis, n, expected, 'windows');
    expect(state).toMatchObject({ done: true, group: { pending: 0, caughtUp: true } });

    // the hand-written entries: original fields kept verbatim, in order, then error and source_id
    const input = await readStream(redis, n.input);
    const dlq = new Map((await readStream(redis, n.dlq)).map((e) => [deadLetterOf(e).sourceId, e]));
    for (const [i, [code, fields]] of handWritten.entries()) {
      const source = input[input.length - handWritten.length + i];
      const dead = source && dlq.get(source.id);
      if (code === 'ok') {
        expect(dead).toBeUndefined();
        continue;
      }
      expect(dead, `${code} entry`).toBeDefined();
      const pairs = pairsOf(dead?.fields ?? []);
      expect(pairs.slice(0, -2)).toEqual(pairsOf(fields.map((f) => Buffer.from(f))));
      expect(pairs.at(-2)?.[0]).toBe('error');
      expect(pairs.at(-2)?.[1]).toMatch(new RegExp(`^${code}: `));
      expect(pairs.at(-1)).toEqual(['source_id', source?.id]);
    }
  },
);
