/**
 * The `partitions` chaos scenario's own parts can fail: its schedule keeps the promised bounds, and its
 * input check accepts exactly what the routed producer wrote — each entry in its key's partition stream
 * (or the next one, on purpose), a retried chunk recognised — and names the first entry that is not.
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/tools/produce/generator.js';
import { redis, useTestHooks } from '../helpers/pipeline.js';
import { uniqueName } from '../helpers/redis.js';
import type { StreamEntry } from '../helpers/reference.js';
import { generatorOptions, ID_MS } from './harness.js';
import {
  MAX_ALIVE,
  MIN_ALIVE,
  misrouted,
  partitionNames,
  partitionOfEntry,
  partitionPipelineConfigs,
  START_ALIVE,
} from './partitionConfigs.js';
import { expectPartitioned, readPartitionedInput } from './partitionInput.js';
import { planPartitionActions } from './partitionPlan.js';
import { startProducer } from './producer.js';

useTestHooks();

describe('the partitions scenario', () => {
  it('plans the configured kills, keeps 1–4 instances alive, and quick kills only right after a join', () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7]) {
      for (const kills of [1, 10, 50]) {
        const plan = planPartitionActions(kills, mulberry32(seed), { minLeaves: 1 });
        let alive = START_ALIVE;
        plan.forEach((a, i) => {
          alive += a.kind === 'join' ? 1 : -1;
          expect(alive).toBeGreaterThanOrEqual(MIN_ALIVE);
          expect(alive).toBeLessThanOrEqual(MAX_ALIVE);
          if (a.quick) expect([a.kind, plan[i - 1]?.kind]).toEqual(['kill', 'join']);
        });
        expect(plan.filter((a) => a.kind === 'kill').length).toBe(kills);
        expect(plan.filter((a) => a.kind === 'leave').length).toBeGreaterThanOrEqual(1);
        expect(plan.filter((a) => a.kind === 'join').length).toBeGreaterThanOrEqual(1);
      }
    }
  });

  it('reads back what the routed producer wrote, recognises a retried chunk, and names the first damage', async () => {
    const names = partitionNames(uniqueName('pchaos'));
    const configs = partitionPipelineConfigs(names, { leaseTtl: '2s', idleClose: '10s' });
    const streams = configs.map((c) => c.source.stream);
    const gen = generatorOptions({ events: 20_000, kills: 0, seed: 5 });
    const write = () =>
      startProducer(redis, names.input, gen, {
        rate: 1_000_000,
        idMs: ID_MS,
        routed: { streams, route: partitionOfEntry },
      }).done;
    expect((await write()).alreadyWritten).toBe(0);
    const wrong = Array.from({ length: gen.count }, (_, i) => i).filter(misrouted).length;
    expect(wrong).toBeGreaterThan(0);

    const input = await readPartitionedInput(redis, streams, gen, ID_MS);
    expect(input.check).toMatchObject({ matchesGenerator: true, entries: 20_000, misrouted: wrong });
    expect(input.check.perPartition.every((n) => n > 0)).toBe(true);
    const victim = (input.byPartition[3] as StreamEntry[])[10] as StreamEntry;
    const expected = expectPartitioned(input, configs);
    const wrongPartition = expected.deadLetters.filter((d) => d.code === 'E_WRONG_PARTITION').length;
    expect(wrongPartition).toBeGreaterThan(0);
    expect(wrongPartition).toBeLessThanOrEqual(wrong);

    // Writing the same input again finds every chunk in place (20 chunks of 1,000) and adds nothing.
    expect((await write()).alreadyWritten).toBe(20);
    const lengths = await Promise.all(streams.map((s) => redis.xlen(s)));
    expect(lengths).toEqual(input.check.perPartition);

    await redis.xdel(streams[3] as string, victim.id);
    const damaged = await readPartitionedInput(redis, streams, gen, ID_MS);
    expect(damaged.check.matchesGenerator).toBe(false);
    expect(damaged.check.firstMismatch).toContain('partition 3');
  });
});
