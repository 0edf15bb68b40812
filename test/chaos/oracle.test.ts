/**
 * The chaos report can fail: the comparisons of test/chaos/oracle.ts, given outputs that equal the
 * oracle's except for deliberate damage — one result lost, one duplicated, one changed, one unexpected,
 * two swapped; the same for dead letters — count exactly that damage, and nothing on undamaged output.
 */
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { redis, useTestHooks } from '../helpers/pipeline.js';
import { uniqueName } from '../helpers/redis.js';
import { type ExpectedDeadLetter, type FieldPair, reference, sortWindows } from '../helpers/reference.js';
import { chaosNames, pipelineYaml } from './configs.js';
import { generatorOptions } from './harness.js';
import {
  checkDeadLetters,
  checkPassThrough,
  checkWindows,
  expectPassThrough,
  expectWindows,
  readInput,
} from './oracle.js';
import { startProducer } from './producer.js';

useTestHooks();

const ID_MS = 1_700_000_000_000;

async function writeRows(r: Redis, stream: string, rows: FieldPair[][]): Promise<void> {
  const p = r.pipeline();
  for (const row of rows) p.xadd(stream, '*', ...row.flatMap(([k, v]) => [k, Buffer.from(v, 'latin1')]));
  await p.exec();
}

async function writeDeadLetters(r: Redis, stream: string, rows: ExpectedDeadLetter[]): Promise<void> {
  await writeRows(
    r,
    stream,
    rows.map((d) => [...d.fields, ['error', `${d.code}: test`], ['source_id', d.sourceId]]),
  );
}

/** Index of the first row whose key has another row later on. */
function keyWithTwo(rows: FieldPair[][]): [number, number] {
  const seen = new Map<string, number>();
  for (let i = 0; i < rows.length; i++) {
    const key = (rows[i] as FieldPair[]).find((p) => p[0] === 'key')?.[1] ?? '';
    const first = seen.get(key);
    if (first !== undefined) return [first, i];
    seen.set(key, i);
  }
  throw new Error('no key with two rows');
}

describe('chaos report counters', () => {
  it('count exactly the damage done to an otherwise perfect output', { timeout: 60_000 }, async () => {
    const base = uniqueName('chaos-oracle');
    const names = chaosNames(base);
    const gen = { ...generatorOptions({ events: 20_000, kills: 0, seed: 11 }), keys: 200 };
    await startProducer(redis, names.input, gen, { rate: 1_000_000, idMs: ID_MS }).done;
    const input = await readInput(redis, names.input, gen, ID_MS);
    expect(input.check).toMatchObject({ matchesGenerator: true, entries: 20_000 });

    const windowsYaml = pipelineYaml('windows', names, 'x', { lease: false });
    const orderYaml = pipelineYaml('order', names, 'x', { lease: false });
    const windows = expectWindows(input.entries, windowsYaml);
    const order = expectPassThrough(input.entries, orderYaml);
    const passRows = reference(input.entries, parseConfig(orderYaml, '(test)', { env: {} })).sink;
    expect(windows.deadLetters.some((d) => d.code === 'E_LATE')).toBe(true);

    // undamaged: all zero (windows per key in window order, as a shard emits them)
    const sorted = sortWindows(windows.windows ?? []);
    await writeRows(redis, `${base}:perfect:w`, sorted);
    await writeRows(redis, `${base}:perfect:o`, passRows);
    await writeDeadLetters(redis, `${base}:perfect:d`, windows.deadLetters);
    const zero = { lost: 0, duplicated: 0, wrong: 0 };
    expect(await checkWindows(redis, `${base}:perfect:w`, windows.windows ?? [])).toMatchObject({
      ...zero,
      orderViolations: 0,
    });
    expect(await checkPassThrough(redis, `${base}:perfect:o`, order.passThrough ?? new Map())).toMatchObject({
      ...zero,
      orderViolations: 0,
    });
    expect(await checkDeadLetters(redis, `${base}:perfect:d`, windows.deadLetters)).toMatchObject(zero);

    // windows: #0 lost, #1 twice, #2 with another sum, one of an unknown key, two of one key swapped
    const w = sorted.map((r) => r.map((p) => [...p] as FieldPair));
    const [a, b] = keyWithTwo(w.slice(3)).map((i) => i + 3) as [number, number];
    [w[a], w[b]] = [w[b] as FieldPair[], w[a] as FieldPair[]];
    (w[2] as FieldPair[])[4] = ['sum_amount', '-1'];
    const stranger: FieldPair[] = [['key', 'nobody'], ...(w[3] as FieldPair[]).slice(1)];
    const damagedW = [...w.slice(1, 2), ...w.slice(1), stranger];
    await writeRows(redis, `${base}:damaged:w`, damagedW);
    expect(await checkWindows(redis, `${base}:damaged:w`, windows.windows ?? [])).toMatchObject({
      lost: 1,
      duplicated: 1,
      wrong: 2,
      orderViolations: 1,
    });

    // pass-through: #0 lost, #1 twice, one foreign entry, two entries of one key swapped
    const o = [...passRows];
    const [c, d] = keyWithTwo(o.slice(2)).map((i) => i + 2) as [number, number];
    [o[c], o[d]] = [o[d] as FieldPair[], o[c] as FieldPair[]];
    const damagedO = [
      ...o.slice(1, 2),
      ...o.slice(1),
      [
        ['key', 'k1'],
        ['data', 'not from the input'],
      ],
    ];
    await writeRows(redis, `${base}:damaged:o`, damagedO as FieldPair[][]);
    expect(await checkPassThrough(redis, `${base}:damaged:o`, order.passThrough ?? new Map())).toMatchObject({
      lost: 1,
      duplicated: 1,
      wrong: 1,
      orderViolations: 1,
    });

    // dead letters: #0 lost, #1 twice, #2 with another code
    const dl = windows.deadLetters.map((x) => ({ ...x }));
    (dl[2] as ExpectedDeadLetter).code =
      (dl[2] as ExpectedDeadLetter).code === 'E_LATE' ? 'E_BAD_BODY' : 'E_LATE';
    await writeDeadLetters(redis, `${base}:damaged:d`, [...dl.slice(1, 2), ...dl.slice(1)]);
    const dlCheck = await checkDeadLetters(redis, `${base}:damaged:d`, windows.deadLetters);
    expect(dlCheck).toMatchObject({ lost: 1, duplicated: 1, wrong: 1 });
    expect(dlCheck.byCode.actual).not.toEqual(dlCheck.byCode.expected);

    // the input check notices an entry the generator did not make
    await redis.xadd(names.input, '*', 'key', 'k1', 'data', 'extra');
    expect((await readInput(redis, names.input, gen, ID_MS)).check).toMatchObject({
      matchesGenerator: false,
      entries: 20_001,
    });
  });
});
