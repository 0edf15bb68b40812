/**
 * `streamshard tap` as a child process next to a running pipeline: it prints the entries added after it
 * started, from the input, output and dead-letter streams, with bodies decoded; it is no consumer of
 * the group (the pipeline still gets and acks everything, no consumer appears).
 */
import { encode } from '@msgpack/msgpack';
import { afterAll, afterEach, expect, it } from 'vitest';
import { spawnCli, stopCliChildren, tempFiles } from './helpers/cli.js';
import {
  pipelineConfig,
  redis,
  startPipeline,
  testNames,
  useTestHooks,
  waitForDrain,
} from './helpers/pipeline.js';

useTestHooks();
afterEach(stopCliChildren);
const files = tempFiles('tap');
afterAll(files.remove);

const msgpack = (o: unknown): Buffer => Buffer.from(encode(o));

interface TapLine {
  stream: string;
  id: string;
  fields: Record<string, unknown>;
  body?: unknown;
  bodyError?: string;
  code?: string;
  source_id?: string;
}

it('follows input, results and dead letters from now on, decoded, without consuming from the group', async () => {
  const n = testNames('tap');
  const yaml = pipelineConfig(n, { stages: [{ dedup: { ttl: '10m' } }] }); // pass-through: results are copies
  const file = files.write('tap.yaml', yaml);
  const before = String(
    await redis.xadd(n.input, '*', 'key', 'k0', 'data', msgpack({ id: 'e0', ts: Date.now() })),
  );
  const p = await startPipeline(yaml);
  await waitForDrain(redis, { stream: n.input, group: n.group, outputs: { [n.sink]: 1 } });
  const consumers = (await redis.xinfo('CONSUMERS', n.input, n.group)) as unknown[][];

  const tap = spawnCli(['tap', '-c', file, '--limit', '6']);
  await tap.waitForStderr('tapping input');
  const now = Date.now();
  const bodies = [
    { id: 'e1', ts: now, amount: 5, type: 'order' },
    { id: 'e2', ts: now + 1, amount: 7.5, nested: { a: [1, 'x'] } },
  ];
  const added = [
    String(await redis.xadd(n.input, '*', 'key', 'k1', 'data', msgpack(bodies[0]))),
    String(await redis.xadd(n.input, '*', 'key', 'k2', 'data', msgpack(bodies[1]))),
    String(await redis.xadd(n.input, '*', 'key', Buffer.from([0xff]), 'data', Buffer.from([0xc1]))),
  ];
  expect(await tap.exited).toBe(0);
  const lines = tap.lines().map((l) => JSON.parse(l) as TapLine);
  expect(lines).toHaveLength(6);
  expect(tap.stderr()).toContain('tapped 6 entries');
  const of = (stream: string) => lines.filter((l) => l.stream === stream);

  // input: exactly the three added after the tap started (not `before`), bodies decoded
  expect(of('input').map((l) => l.id)).toEqual(added);
  expect(of('input').map((l) => l.id)).not.toContain(before);
  expect(of('input')[0]).toEqual({ stream: 'input', id: added[0], fields: { key: 'k1' }, body: bodies[0] });
  expect(of('input')[1]).toMatchObject({ fields: { key: 'k2' }, body: bodies[1] });
  expect(of('input')[2]).toMatchObject({ fields: { key: { hex: 'ff' }, data: { hex: 'c1' } } });
  expect(of('input')[2]?.bodyError).toBeTruthy();
  // results: the pass-through copies, decoded the same way
  expect(of('results')).toHaveLength(2); // shards commit independently: in either order
  expect(of('results').map((l) => l.body)).toEqual(expect.arrayContaining(bodies));
  // the dead letter: its code and source, the key that is not UTF-8 as hex
  expect(of('dead-letters')).toHaveLength(1);
  expect(of('dead-letters')[0]).toMatchObject({
    code: 'E_BAD_BODY',
    source_id: added[2],
    fields: { key: { hex: 'ff' }, source_id: added[2] },
  });

  // the pipeline got and acked everything; the tap is no consumer of the group
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: 3, [n.dlq]: 1 },
  });
  expect(state).toMatchObject({ done: true, group: { pending: 0 } });
  expect(await redis.xinfo('CONSUMERS', n.input, n.group)).toHaveLength(consumers.length);
  expect(await p.stop()).toBe(0);
});

it('selects streams, refuses --results for a stdout sink, stops on Ctrl-C', async () => {
  const n = testNames('tap-select');
  const file = files.write('select.yaml', pipelineConfig(n));
  const tap = spawnCli(['tap', '-c', file, '--dead-letters']);
  await tap.waitForStderr('tapping dead-letters');
  expect(tap.stderr()).not.toContain('input (');
  await redis.xadd(n.input, '*', 'key', 'k', 'data', 'x'); // no pipeline runs: nothing reaches the dead letters
  await redis.xadd(n.dlq, '*', 'key', 'k', 'error', 'E_LATE: late', 'source_id', '1-1');
  const [line] = await tap.waitForLines(1);
  expect(JSON.parse(line as string)).toMatchObject({
    stream: 'dead-letters',
    code: 'E_LATE',
    message: 'late',
  });
  tap.signal('SIGINT');
  expect(await tap.exited).toBe(0);
  expect(tap.lines()).toHaveLength(1);
  expect(tap.stderr()).toContain('tapped 1 entry');

  const stdoutSink = JSON.parse(pipelineConfig(n)) as Record<string, unknown>;
  stdoutSink.sink = { type: 'stdout' };
  const stdoutFile = files.write('stdout.yaml', JSON.stringify(stdoutSink));
  const refused = spawnCli(['tap', '-c', stdoutFile, '--results']);
  expect(await refused.exited).toBe(2);
  expect(refused.stderr()).toContain('--results: this pipeline has a stdout sink');
});
