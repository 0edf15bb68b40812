import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GeneratorOptions, generateEvents } from '../src/tools/produce/generator.js';
import { produce } from '../src/tools/produce/producer.js';
import { connect, uniqueName } from './helpers/redis.js';

const base: GeneratorOptions = {
  count: 5000,
  keys: 100,
  seed: 7,
  duplicatePct: 5,
  outOfOrderPct: 5,
  malformedPct: 3,
  startTs: 1_700_000_000_000,
  intervalMs: 1,
  outOfOrderMaxMs: 1000,
  encoding: 'msgpack',
};

describe('produce', () => {
  let redis: Redis;
  const streams: string[] = [];
  const stream = (): string => {
    const name = uniqueName('test:producer');
    streams.push(name);
    return name;
  };

  beforeAll(async () => {
    redis = await connect();
  });
  afterAll(async () => {
    if (streams.length > 0) await redis.del(...streams);
    await redis.quit();
  });

  for (const method of ['script', 'pipeline'] as const) {
    it(`${method}: writes count entries, exactly the generated fields, in order`, async () => {
      const s = stream();
      const progress: number[] = [];
      const res = await produce(redis, s, { ...base, method }, (done, total) => {
        expect(total).toBe(base.count);
        progress.push(done);
      });
      expect(res.produced).toBe(base.count);
      expect(await redis.xlen(s)).toBe(base.count);
      expect(Object.values(res.byKind).reduce((a, b) => a + b, 0)).toBe(base.count);
      expect(res.byKind.malformed).toBeGreaterThan(0);
      expect(progress.at(-1)).toBe(base.count);
      expect(progress).toEqual([...progress].sort((a, b) => a - b));

      // One hex string per entry: a single comparison that still pins every field byte and boundary.
      const hex = (fields: Array<string | Buffer>): string =>
        fields.map((f) => (Buffer.isBuffer(f) ? f : Buffer.from(f)).toString('hex')).join(',');
      const written = (await redis.xrangeBuffer(s, '-', '+')).map(([, fields]) => hex(fields));
      const expected = [...generateEvents(base)].map((e) => hex(e.fields));
      expect(written.length).toBe(expected.length);
      expect(written.findIndex((w, i) => w !== expected[i])).toBe(-1);
    });
  }

  it('completes a small rated run and reports progress up to the total', async () => {
    const s = stream();
    let last = 0;
    const res = await produce(redis, s, { ...base, count: 300, rate: 2000, encoding: 'json' }, (done) => {
      last = done;
    });
    expect(res.produced).toBe(300);
    expect(last).toBe(300);
    expect(await redis.xlen(s)).toBe(300);
  });

  it('caps the stream with maxLen', async () => {
    const s = stream();
    await produce(redis, s, { ...base, count: 20_000, encoding: 'flat', maxLen: 1000 });
    const len = await redis.xlen(s);
    expect(len).toBeGreaterThanOrEqual(1000);
    expect(len).toBeLessThan(5000); // MAXLEN ~ trims whole macro-nodes, so a little above 1000
  });

  it('names the stream when Redis rejects the write', async () => {
    const s = stream();
    await redis.set(s, 'not a stream');
    await expect(produce(redis, s, { ...base, count: 10 })).rejects.toThrow(s);
    await expect(produce(redis, s, { ...base, count: 10, method: 'pipeline' })).rejects.toThrow(/WRONGTYPE/);
  });
});
