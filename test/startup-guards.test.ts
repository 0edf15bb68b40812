/**
 * Start-up refuses what would corrupt output or state: a checkpoint written with other window settings or
 * key-group count, and an output key that exists but is not a stream. `run` exits 1 and says why.
 */
import { expect, it } from 'vitest';
import { pipelineConfig, redis, startPipeline, testNames, useTestHooks } from './helpers/pipeline.js';

useTestHooks();

const windowOf = (size: string) => [
  { window: { size, grace: 0, aggregates: [{ fn: 'sum', field: 'amount' }] } },
];

async function failedStart(config: string): Promise<string[]> {
  const err = await startPipeline(config).then(
    () => null,
    (e: Error) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return String(err?.message).split('\n');
}

it('refuses a checkpoint written with other window settings or keyGroups', async () => {
  const n = testNames('guard');
  const p = await startPipeline(pipelineConfig(n, { stages: windowOf('10s') }));
  expect(await p.stop()).toBe(0);

  const otherWindow = await failedStart(pipelineConfig(n, { stages: windowOf('20s') }));
  expect(otherWindow.some((l) => l.includes('was written with other keyGroups or window settings'))).toBe(
    true,
  );
  const otherGroups = await failedStart(
    pipelineConfig(n, { stages: windowOf('10s'), extra: { keyGroups: 128 } }),
  );
  expect(otherGroups.some((l) => l.includes('was written with other keyGroups or window settings'))).toBe(
    true,
  );

  // the original settings still start
  const again = await startPipeline(pipelineConfig(n, { stages: windowOf('10s') }));
  expect(await again.stop()).toBe(0);
});

it('refuses an output key that is not a stream', async () => {
  const n = testNames('guard-type');
  await redis.hset(n.sink, 'not', 'a stream');
  const lines = await failedStart(pipelineConfig(n));
  expect(lines.some((l) => l.includes(n.sink) && l.includes('exists and is a hash, not a stream'))).toBe(
    true,
  );
});
