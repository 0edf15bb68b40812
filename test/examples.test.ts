/**
 * The shipped example pipelines (config/*.yaml) run as users would start them — streams and ports from
 * the environment — on generated input in the example's encoding, and their whole output equals the
 * oracle's.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { produce } from '../src/tools/produce/producer.js';
import { expectOutputsMatch } from './helpers/expectations.js';
import {
  readStream,
  redis,
  ROOT,
  startPipeline,
  testNames,
  useTestHooks,
  waitForDrain,
} from './helpers/pipeline.js';
import { expectProjectionsMatch } from './helpers/projections.js';
import { reference } from './helpers/reference.js';
import { hashTagOf } from '../src/shard/stages/project/keyTemplate.js';

useTestHooks();

const examples = readdirSync(join(ROOT, 'config'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const COUNT = 5000;
const INTERVAL_MS = 2;

it.each(examples)('config/%s: output equals the reference', async (file) => {
  const n = testNames(file.replace(/\.yaml$/, ''));
  const env = {
    SOURCE_STREAM: n.input,
    GROUP: n.group,
    SINK_STREAM: n.sink,
    DLQ_STREAM: n.dlq,
    METRICS_PORT: '0',
    SHARDS: '2',
    IDLE_CLOSE: '300ms',
    // user-sessions.yaml and orders-sliding.yaml: their last windows close soon after the last event
    SESSION_GAP: '1s',
    SLIDING_SIZE: '1s',
    HOSTNAME: n.consumer,
    // customer-projection.yaml: its hashes under the test's own names
    PROJECTION_PREFIX: n.sink,
  };
  const text = readFileSync(join(ROOT, 'config', file), 'utf8');
  const config = parseConfig(text, file, { env });
  // the last event sits just before a 10 s boundary, so that the last windows close soon after it
  const lastTs = Math.ceil(Date.now() / 10_000) * 10_000 - 1;
  await produce(redis, n.input, {
    count: COUNT,
    keys: 50,
    seed: 61,
    duplicatePct: 3,
    outOfOrderPct: 5,
    malformedPct: 2,
    startTs: lastTs - (COUNT - 1) * INTERVAL_MS,
    intervalMs: INTERVAL_MS,
    outOfOrderMaxMs: 8000,
    encoding: config.body.encoding,
    keyField: config.key.field,
    bodyField: config.body.field,
  });
  const expected = reference(await readStream(redis, n.input), config);
  expect(expected.sink.length).toBeGreaterThan(0);

  const p = await startPipeline(text, env);
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: expected.sink.length, [n.dlq]: expected.deadLetters.length },
  });
  expect(await p.stop()).toBe(0);
  const windowed = config.stages.some((s) => 'window' in s);
  await expectOutputsMatch(redis, n, expected, windowed ? 'windows' : 'pass-through');
  for (const s of config.stages) {
    if (!('project' in s)) continue;
    const pattern = s.project.key.replaceAll('{tag}', hashTagOf(config.source.stream)).replace('{key}', '*');
    const sums = Object.entries(s.project.fields).filter(([, r]) => r.fn === 'sum');
    expect(expected.projections.size).toBeGreaterThan(0);
    await expectProjectionsMatch(redis, pattern, expected.projections, new Set(sums.map(([f]) => f)));
  }
  expect(state).toMatchObject({ done: true, group: { pending: 0, caughtUp: true } });
});
