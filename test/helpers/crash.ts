/**
 * The kill -9 scenario the restart tests share: a pipeline killed mid-load, then a second one started on
 * the same state, whose output must equal the reference as if nothing had happened.
 */
import type { Redis } from 'ioredis';
import { expect } from 'vitest';
import { expectOutputsMatch } from './expectations.js';
import { groupState, startPipeline, type TestNames, waitForDrain } from './pipeline.js';
import { waitFor } from './redis.js';
import type { Expected } from './reference.js';

/** Starts `config`, kills it with SIGKILL once a fifth of the `count` input entries are acked. */
export async function killMidLoad(redis: Redis, n: TestNames, config: string, count: number): Promise<void> {
  const first = await startPipeline(config);
  await waitFor('a fifth of the input acked', async () => {
    const g = await groupState(redis, n.input, n.group);
    return g.entriesRead !== null && g.entriesRead - g.pending >= count / 5;
  });
  await first.kill9();
  const atKill = await groupState(redis, n.input, n.group);
  expect(atKill.caughtUp && atKill.pending === 0, 'the crash must happen mid-load').toBe(false);
}

/** Starts `config` again, lets it drain, stops it, and compares the whole output with `expected`. */
export async function restartAndCompare(
  redis: Redis,
  n: TestNames,
  config: string,
  expected: Expected,
  mode: 'windows' | 'pass-through',
): Promise<void> {
  const second = await startPipeline(config);
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: expected.sink.length, [n.dlq]: expected.deadLetters.length },
    timeoutMs: 120_000,
  });
  expect(await second.stop()).toBe(0);
  await expectOutputsMatch(redis, n, expected, mode);
  expect(state).toMatchObject({ done: true, group: { pending: 0, caughtUp: true } });
}
