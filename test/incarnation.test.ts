/**
 * Operator mistakes under a checkpoint (commit/incarnation.ts) and `streamshard reset` (cli/reset.ts):
 * (a) the input stream deleted and re-created while stopped → `run` refuses and names reset; after
 * `reset --yes` the output equals the reference for the new stream; (b) the group destroyed mid-run → the
 * pipeline stops, nothing replayed, the group not re-created; (c) the group destroyed and re-created at 0
 * mid-run → stopped before anything is processed twice; (d) reset refuses while an instance holds the
 * lease, and without --yes when there is no terminal; (e) a checkpoint without a marker (written before
 * incarnations) is adopted and the run goes on exactly. Also: a group moved back with XGROUP SETID stops
 * the run before anything is processed twice; an existing group of a fresh pipeline is adopted.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { MARKER_PREFIX } from '../src/commit/incarnation.js';
import { CheckpointKeys } from '../src/redis/checkpointKeys.js';
import { compareIds } from '../src/source/redisSource.js';
import { produce } from '../src/tools/produce/producer.js';
import { expectedFor, expectOutputsMatch } from './helpers/expectations.js';
import {
  CLI,
  groupState,
  pipelineConfig,
  readStream,
  redis,
  spawnPipeline,
  startPipeline,
  type TestNames,
  testNames,
  useTestHooks,
  waitForDrain,
} from './helpers/pipeline.js';
import { redisUrl } from './helpers/redis.js';
import { pairsOf } from './helpers/reference.js';

useTestHooks();

const T = 1_700_000_000_000;
const dir = mkdtempSync(join(tmpdir(), 'streamshard-incarnation-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const windowed = [
  {
    window: {
      size: '1s',
      grace: '200ms',
      idleClose: '500ms',
      aggregates: [{ fn: 'sum', field: 'amount' }, { fn: 'count' }],
    },
  },
];

async function load(n: TestNames, count: number, seed: number, startTs: number): Promise<void> {
  await produce(redis, n.input, {
    count,
    keys: 50,
    seed,
    duplicatePct: 0,
    outOfOrderPct: 0,
    malformedPct: 0,
    startTs,
    intervalMs: 1,
    outOfOrderMaxMs: 1,
    encoding: 'msgpack',
  });
}

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with stdin a pipe (not a terminal). */
function cli(args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, REDIS_URL: redisUrl() }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function configFile(n: TestNames, config: string): string {
  const file = join(dir, `${n.group.replace(/[^a-z0-9]/gi, '_')}.yaml`);
  writeFileSync(file, config);
  return file;
}

/** Every key under the pipeline's namespace. */
async function stateKeys(n: TestNames): Promise<string[]> {
  const keys = new CheckpointKeys(n.keyPrefix, n.input, n.group);
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', keys.scanPattern(), 'COUNT', 1000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found.sort();
}

async function drain(n: TestNames, sink: number, dlq = 0): Promise<void> {
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: sink, [n.dlq]: dlq },
  });
  expect(state).toMatchObject({ done: true });
}

it("(a) stream deleted and re-created while stopped: run refuses and names reset; after reset the output is the new stream's", async () => {
  const n = testNames('inc-recreated');
  const config = pipelineConfig(n, { shards: 2, stages: windowed });
  const file = configFile(n, config);
  await load(n, 3000, 61, T);
  const first = await startPipeline(config);
  await drain(n, (await expectedFor(redis, n, config)).sink.length);
  expect(await first.stop()).toBe(0);

  // the operator deletes the input and producers re-create it, with events older than the old stream time
  await redis.del(n.input);
  await load(n, 4000, 62, T - 3_600_000);
  const refused = await startPipeline(config).then(
    () => null,
    (e: Error) => e.message,
  );
  expect(refused).toContain('no longer exists');
  expect(refused).toMatch(/streamshard reset -c \S*pipeline\.yaml/);
  expect((await groupState(redis, n.input, n.group)).exists).toBe(false); // not re-created
  expect(await redis.xlen(n.dlq)).toBe(0); // nothing dead-lettered as late against the old stream time

  const reset = await cli(['reset', '-c', file, '--yes']);
  expect(reset, reset.stderr).toMatchObject({ code: 0 });
  expect(reset.stdout).toContain('stream time');
  // reset keeps the input and output streams; the old results are cleared by hand for the comparison
  expect(await redis.xlen(n.input)).toBe(4000);
  expect(await redis.exists(n.sink)).toBe(1);
  await redis.del(n.sink, n.dlq);

  const expected = await expectedFor(redis, n, config);
  const second = await startPipeline(config);
  await drain(n, expected.sink.length, expected.deadLetters.length);
  expect(await second.stop()).toBe(0);
  await expectOutputsMatch(redis, n, expected, 'windows');
});

/** Starts a pass-through pipeline over `count` entries and waits until all are written. */
async function runningPassThrough(n: TestNames, count: number) {
  const config = pipelineConfig(n, { shards: 2 });
  await load(n, count, 63, T);
  const expected = await expectedFor(redis, n, config);
  const p = spawnPipeline(config);
  await p.waitForMsg(['ready'], 30_000);
  await drain(n, count);
  return { p, expected };
}

/** The sink has exactly the expected pass-through output, each source entry once. */
async function expectNothingTwice(n: TestNames, expected: Awaited<ReturnType<typeof expectedFor>>) {
  const sink = (await readStream(redis, n.sink)).map((e) => JSON.stringify(pairsOf(e.fields)));
  expect(new Set(sink).size).toBe(sink.length);
  expect(sink.length).toBe(expected.sink.length);
  await expectOutputsMatch(redis, n, expected, 'pass-through');
}

it('(b) group destroyed mid-run: the pipeline stops with the error, nothing replayed, group not re-created', async () => {
  const n = testNames('inc-destroyed');
  const { p, expected } = await runningPassThrough(n, 2000);
  await redis.xgroup('DESTROY', n.input, n.group);
  await redis.xadd(n.input, '*', 'key', 'late-comer', 'data', 'x'); // a read would have work to do
  const exit = await p.exited;
  expect(exit.code).toBe(1);
  const failed = p.lastOf(['pipeline failed']);
  expect(String(failed?.err)).toContain(`consumer group "${n.group}" no longer exists`);
  expect(String(failed?.err)).toContain('streamshard reset -c');
  expect((await groupState(redis, n.input, n.group)).exists).toBe(false);
  await expectNothingTwice(n, expected);
});

it('(c) group destroyed and re-created at 0 by hand mid-run: detected before anything is processed twice', async () => {
  const n = testNames('inc-rewound');
  const { p, expected } = await runningPassThrough(n, 2000);
  await redis.multi().xgroup('DESTROY', n.input, n.group).xgroup('CREATE', n.input, n.group, '0').exec();
  const exit = await p.exited;
  expect(exit.code).toBe(1);
  const failed = p.lastOf(['pipeline failed']);
  expect(String(failed?.err)).toContain('destroyed and re-created');
  expect(String(failed?.err)).toContain('streamshard reset -c');
  await expectNothingTwice(n, expected);
  // and a restart refuses too (the re-created group lacks the marker)
  const refused = await startPipeline(pipelineConfig(n, { shards: 2 })).then(
    () => null,
    (e: Error) => e.message,
  );
  expect(refused).toContain('is not the one the state was written for');
  await expectNothingTwice(n, expected);
});

it('a group moved back with XGROUP SETID mid-run: stopped before processing twice; the marker is still there', async () => {
  const n = testNames('inc-setid');
  const { p, expected } = await runningPassThrough(n, 2000);
  await redis.xgroup('SETID', n.input, n.group, '0');
  const exit = await p.exited;
  expect(exit.code).toBe(1);
  const failed = p.lastOf(['pipeline failed']);
  expect(String(failed?.err)).toContain('was moved back (XGROUP SETID)');
  expect(String(failed?.err)).toContain('streamshard reset -c');
  await expectNothingTwice(n, expected);
  const marker = await redis.hget(new CheckpointKeys(n.keyPrefix, n.input, n.group).meta(), 'incarnation');
  const consumers = (await redis.xinfo('CONSUMERS', n.input, n.group)) as unknown[][];
  expect(consumers.map((c) => String(c[1]))).toContain(marker);
});

it('(d) reset refuses while an instance holds the lease, and without --yes and a terminal', async () => {
  const n = testNames('inc-reset');
  const config = pipelineConfig(n, { shards: 1 });
  const file = configFile(n, config);
  await load(n, 500, 64, T);
  const p = await startPipeline(config);
  await drain(n, 500);
  const keys = new CheckpointKeys(n.keyPrefix, n.input, n.group);
  const holder = await redis.get(keys.lease());
  expect(holder).not.toBeNull();

  const busy = await cli(['reset', '-c', file, '--yes']);
  expect(busy.code).toBe(1);
  expect(busy.stderr).toContain(`instance ${holder} holds the lease`);
  expect(busy.stderr).toContain('Stop it first');
  expect(await p.stop()).toBe(0);

  const before = await stateKeys(n);
  expect(before).toContain(keys.meta());
  const unconfirmed = await cli(['reset', '-c', file]);
  expect(unconfirmed.code).toBe(2);
  expect(unconfirmed.stderr).toContain('--yes');
  expect(unconfirmed.stdout).toContain(`consumer group "${n.group}"`);
  expect(await stateKeys(n)).toEqual(before);
  expect((await groupState(redis, n.input, n.group)).exists).toBe(true);

  const done = await cli(['reset', '-c', file, '--yes']);
  expect(done, done.stderr).toMatchObject({ code: 0 });
  expect(await stateKeys(n)).toEqual([keys.epoch()]);
  expect((await groupState(redis, n.input, n.group)).exists).toBe(false);
  expect(await redis.xlen(n.input)).toBe(500);
  expect(await redis.xlen(n.sink)).toBe(500);
  const again = await cli(['reset', '-c', file, '--yes']);
  expect(again.stdout).toContain('nothing to reset');

  // fresh again: the whole stream is processed once more (startId 0), with a new marker
  const fresh = await startPipeline(config);
  await drain(n, 1000);
  expect(await fresh.stop()).toBe(0);
  expect(await redis.hget(keys.meta(), 'incarnation')).toMatch(new RegExp(`^${MARKER_PREFIX}[0-9a-f]{16}$`));
});

it('(e) a checkpoint written before incarnations is adopted and the run goes on exactly', async () => {
  const n = testNames('inc-migrate');
  const config = pipelineConfig(n, { shards: 2, stages: windowed });
  const keys = new CheckpointKeys(n.keyPrefix, n.input, n.group);
  await load(n, 3000, 65, T);
  const first = await startPipeline(config);
  await drain(n, (await expectedFor(redis, n, config)).sink.length);
  expect(await first.stop()).toBe(0);

  // make it look like a checkpoint of the previous version: no marker recorded, none in the group
  const marker = await redis.hget(keys.meta(), 'incarnation');
  expect(marker).toMatch(new RegExp(`^${MARKER_PREFIX}`));
  await redis.hdel(keys.meta(), 'incarnation');
  await redis.xgroup('DELCONSUMER', n.input, n.group, marker as string);

  await load(n, 3000, 66, T + 3_600_000);
  const expected = await expectedFor(redis, n, config);
  const second = await startPipeline(config);
  await drain(n, expected.sink.length, expected.deadLetters.length);
  expect(await second.stop()).toBe(0);
  expect(second.logs().some((l) => l.includes('for a checkpoint written before incarnations'))).toBe(true);
  await expectOutputsMatch(redis, n, expected, 'windows');

  const adopted = await redis.hget(keys.meta(), 'incarnation');
  expect(adopted).not.toBe(marker);
  const consumers = (await redis.xinfo('CONSUMERS', n.input, n.group)) as unknown[][];
  expect(consumers.map((c) => String(c[1]))).toContain(adopted);
  // the marker never reads: it has no pending entries
  expect(consumers.find((c) => String(c[1]) === adopted)?.[3]).toBe(0);
});

it('an existing group of a fresh pipeline is adopted; a run after the marker was lost refuses', async () => {
  const n = testNames('inc-adopt');
  await load(n, 200, 67, T);
  await redis.xgroup('CREATE', n.input, n.group, '0');
  const config = pipelineConfig(n, { shards: 1 });
  const p = await startPipeline(config);
  await drain(n, 200);
  expect(await p.stop()).toBe(0);
  expect(p.logs().some((l) => l.includes('adopted the existing consumer group'))).toBe(true);
  const keys = new CheckpointKeys(n.keyPrefix, n.input, n.group);
  await redis.xgroup(
    'DELCONSUMER',
    n.input,
    n.group,
    (await redis.hget(keys.meta(), 'incarnation')) as string,
  );
  const refused = await startPipeline(config).then(
    () => null,
    (e: Error) => e.message,
  );
  expect(refused).toContain('is not the one the state was written for');
});

it('stream IDs are ordered by their numbers, not as text', () => {
  expect(compareIds('10-0', '9-0')).toBeGreaterThan(0);
  expect(compareIds('1-10', '1-9')).toBeGreaterThan(0);
  expect(compareIds('1-0', '1-0')).toBe(0);
  expect(compareIds('9-99', '10-0')).toBeLessThan(0);
  expect(compareIds('18446744073709551615-0', '18446744073709551614-18446744073709551615')).toBeGreaterThan(
    0,
  );
});
