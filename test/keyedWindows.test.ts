/**
 * Session and sliding stages without Redis: the Kafka Streams SlidingWindows javadoc example, session
 * merging with the bridge last, and a checkpoint drain → restore round trip that continues exactly.
 */
import { expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import type { WindowConfig } from '../src/config/schema.js';
import { windowOperator } from '../src/shard/stages/window/operator.js';
import { ADDED, LATE, type WindowOperator } from '../src/shard/stages/window/windowStage.js';
import type { ByteString } from '../src/util/bytes.js';
import { addEvent } from './helpers/stages.js';

function windowConfig(window: Record<string, unknown>): WindowConfig {
  const text = JSON.stringify({
    source: { stream: 's', group: 'g' },
    sink: { stream: 'out' },
    deadLetter: { stream: 'dlq' },
    stages: [{ window: { aggregates: [{ fn: 'sum', field: 'v' }], ...window } }],
  });
  const c = parseConfig(text, 'test.yaml', { env: {} });
  return (c.stages[0] as { window: WindowConfig }).window;
}

const results = (out: ByteString[][]) =>
  out.map((r) => {
    const o: Record<string, string> = {};
    for (let i = 0; i < r.length; i += 2) o[String(r[i])] = String(r[i + 1]);
    return `${o.key} [${o.window_start};${o.window_end}] count ${o.count} sum ${o.sum_v}`;
  });

function feed(stage: WindowOperator, events: Array<[string, number, number]>): number[] {
  let streamTime = Number.NEGATIVE_INFINITY;
  return events.map(([key, ts, v]) => {
    streamTime = Math.max(streamTime, ts);
    return addEvent(stage, key, 0, ts, Float64Array.of(v), streamTime);
  });
}

it('sliding windows give the five windows of the Kafka Streams SlidingWindows javadoc example', () => {
  const stage = windowOperator(windowConfig({ type: 'sliding', size: 5000 }));
  expect(
    feed(stage, [
      ['A', 8000, 1],
      ['A', 9200, 2],
      ['A', 12400, 3],
    ]),
  ).toEqual([ADDED, ADDED, ADDED]);
  expect(stage.drain().opened).toEqual([{ keyGroup: 0, start: 0 }]);
  const out: ByteString[][] = [];
  stage.closeDue(1e9, out);
  expect(results(out).sort()).toEqual(
    [
      'A [3000;8000] count 1 sum 1',
      'A [4200;9200] count 2 sum 3',
      'A [7400;12400] count 3 sum 6',
      'A [8001;13001] count 2 sum 5',
      'A [9201;14201] count 1 sum 3',
    ].sort(),
  );
  expect(stage.openBuckets).toBe(0);
  expect(stage.drain().closed).toEqual([{ keyGroup: 0, start: 0 }]);
});

it('a sliding window closes when stream time passes end + grace, not at it', () => {
  const stage = windowOperator(windowConfig({ type: 'sliding', size: 1000, grace: 100 }));
  feed(stage, [['A', 5000, 1]]);
  const out: ByteString[][] = [];
  expect(stage.closePending(5100)).toBe(false);
  expect(stage.closeDue(5100, out)).toBe(0);
  expect(stage.closeDue(5101, out)).toBe(1);
  expect(addEvent(stage, 'A', 0, 5000, Float64Array.of(1), 5101)).toBe(LATE);
});

it('a bridging session event that comes last merges the sessions on both sides', () => {
  const stage = windowOperator(windowConfig({ type: 'session', gap: 100, grace: 1000 }));
  feed(stage, [
    ['k', 0, 1],
    ['k', 300, 2],
    ['k', 150, 4],
    ['k', 75, 8],
    ['k', 225, 16],
  ]);
  expect(stage.openBuckets).toBe(1);
  const out: ByteString[][] = [];
  stage.closeDue(1e9, out);
  expect(results(out)).toEqual(['k [0;400] count 5 sum 31']);
});

it('session state drained, restored into a new stage, continues exactly', () => {
  const cfg = windowConfig({ type: 'session', gap: 100, grace: 1000 });
  const a = windowOperator(cfg);
  feed(a, [
    ['k', 0, 1],
    ['k', 300, 2],
    ['j', 10, 5],
  ]);
  const d = a.drain();
  expect(d.opened).toEqual([{ keyGroup: 0, start: 0 }]);
  const b = windowOperator(cfg);
  for (const w of d.writes) b.restore(w.keyGroup, w.start, w.fields);
  expect(b.openBuckets).toBe(3);
  // the bridge after the restore
  for (const s of [a, b])
    feed(s, [
      ['k', 150, 4],
      ['k', 75, 8],
      ['k', 225, 16],
    ]);
  const outA: ByteString[][] = [];
  const outB: ByteString[][] = [];
  a.closeDue(1e9, outA);
  b.closeDue(1e9, outB);
  expect(results(outB).sort()).toEqual(results(outA).sort());
  expect(results(outB).sort()).toEqual(['j [10;110] count 1 sum 5', 'k [0;400] count 5 sum 31']);
});
