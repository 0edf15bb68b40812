/**
 * Expressions end to end, against real Redis: random input (duplicates, out-of-order, malformed) through
 * `filter.when` + `map` + dedup + a tumbling window over mapped fields, with the envelope configured;
 * the whole sink and dead-letter streams (E_EXPRESSION from the filter and from the map, with their
 * envelope fields) compared with the brute-force reference, whose expressions are spelled out as plain
 * functions next to their text.
 */
import { expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { produce } from '../src/tools/produce/producer.js';
import { expectOutputsMatch } from './helpers/expectations.js';
import {
  pipelineConfig,
  readStream,
  redis,
  startPipeline,
  testNames,
  useTestHooks,
  waitForDrain,
} from './helpers/pipeline.js';
import { reference } from './helpers/reference.js';
import { type Body, type ExpressionOracle, RefExpressionError, refNumber } from './helpers/referenceMap.js';

useTestHooks();

/** `==` of the docs: equal values, or a number and a decimal string of it. */
function eq(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'string') return safeNumber(b) === a;
  if (typeof a === 'string' && typeof b === 'number') return safeNumber(a) === b;
  return false;
}

function safeNumber(v: unknown): number | undefined {
  try {
    return refNumber(v);
  } catch {
    return undefined;
  }
}

/** `>` of the docs where one side is a number: both as numbers, else a failure. */
function gt(a: unknown, b: number): boolean {
  if (typeof a !== 'number' && typeof a !== 'string') throw new RefExpressionError('not comparable');
  return refNumber(a) > b;
}

const WHEN = 'type == "order" or amount > 900';
const GROSS = 'amount * 2';
const oracles = new Map<string, ExpressionOracle>([
  [WHEN, (b: Body) => eq(b.type, 'order') || gt(b.amount, 900)],
  [GROSS, (b: Body) => refNumber(b.amount) * 2],
]);

it('filter.when + map + dedup + window, and E_EXPRESSION dead letters with the envelope, equal the reference', async () => {
  const n = testNames('expr');
  await produce(redis, n.input, {
    count: 20_000,
    keys: 150,
    seed: 41,
    duplicatePct: 5,
    outOfOrderPct: 10,
    malformedPct: 2,
    startTs: 1_700_000_000_000,
    intervalMs: 0.7,
    outOfOrderMaxMs: 2500,
    encoding: 'msgpack',
  });
  const text = pipelineConfig(n, {
    shards: 3,
    stages: [
      { filter: { when: WHEN } },
      { map: { set: { gross: GROSS }, rename: { amount: 'net' }, remove: ['seq'] } },
      { dedup: { ttl: '700ms', maxEntries: 150 } },
      {
        window: {
          size: '1s',
          grace: '200ms',
          idleClose: '1s',
          aggregates: [{ fn: 'sum', field: 'gross' }, { fn: 'max', field: 'net' }, { fn: 'count' }],
        },
      },
    ],
    extra: { body: { envelope: { type: 'type', version: 'seq' } } },
  });
  const config = parseConfig(text, '(test)', { env: {} });
  const expected = reference(await readStream(redis, n.input), config, { expressions: oracles });
  // the input exercises what it should: both kinds of expression failure, drops, late events
  const failures = expected.deadLetters.filter((d) => d.code === 'E_EXPRESSION');
  expect(failures.length).toBeGreaterThan(20);
  expect(failures.some((d) => d.fields.some(([k, v]) => k === 'event_type' && v === 'refund'))).toBe(true);
  expect(failures.some((d) => d.fields.some(([k, v]) => k === 'event_type' && v === 'order'))).toBe(true);
  expect(expected.counts.filtered).toBeGreaterThan(500);
  expect(expected.counts.deduplicated).toBeGreaterThan(100);
  expect(expected.counts.late).toBeGreaterThan(50);
  expect(expected.counts.windowsEmitted).toBeGreaterThan(1000);

  const p = await startPipeline(text);
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: expected.sink.length, [n.dlq]: expected.deadLetters.length },
  });
  expect(await p.stop()).toBe(0);
  await expectOutputsMatch(redis, n, expected, 'windows');
  expect(state).toMatchObject({ done: true, group: { pending: 0, caughtUp: true } });
  // each expression failure is dead-lettered with its message, never retried
  const dlq = await readStream(redis, n.dlq);
  const messages = dlq
    .map((e) => e.fields.map((f) => f.toString()))
    .filter((f) => f.includes('deliveries') || f.some((v) => v.startsWith('E_EXPRESSION')));
  expect(messages.every((f) => !f.includes('deliveries'))).toBe(true);
  expect(new Set(messages.map((f) => f[f.indexOf('error') + 1]))).toEqual(
    new Set([
      'E_EXPRESSION: stages[0].filter.when: type == "order" or amount > 900: `>` needs numbers, got the string "abc"',
      'E_EXPRESSION: stages[1].map.set.gross: amount * 2: `*` needs numbers, got the string "abc"',
    ]),
  );
});
