/** The pipeline file: defaults, interpolation, every problem reported with its path, and the shipped schema. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { jsonSchema } from '../src/config/schema.js';
import { ConfigError } from '../src/errors.js';

const MIN = 'source: { stream: in }\nsink: { stream: out }\ndeadLetter: { stream: dlq }\n';

function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, 'test.yaml', { env });
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => `${p.path}: ${p.message}`);
    throw e;
  }
  throw new Error('expected the config to be rejected');
}

describe('pipeline config', () => {
  it('fills documented defaults and resolves env-dependent ones', () => {
    const c = parseConfig(MIN, 't', { env: { REDIS_URL: 'redis://r:1', HOSTNAME: 'pod-7' }, cpus: 4 });
    expect(c.redis.url).toBe('redis://r:1');
    expect(c.source).toMatchObject({
      group: 'streamshard',
      consumer: 'pod-7',
      batchSize: 1000,
      block: 1000,
      startId: '0',
    });
    expect(c.key.field).toBe('key');
    expect(c.body).toEqual({
      encoding: 'msgpack',
      field: 'data',
      idPath: 'id',
      timePath: 'ts',
      maxFutureSkew: 60_000,
    });
    expect(c.shards).toBe(3); // auto = cores - 1
    expect(c.keyGroups).toBe(256);
    expect(c.commit).toEqual({ maxEvents: 1000, maxDelay: 10 });
    expect(c.metrics).toEqual({ port: 9464, host: '0.0.0.0', prefix: 'streamshard_', statsEvery: 60_000 });
    expect(parseConfig(MIN, 't', { env: {}, cpus: 1 }).redis.url).toBe('redis://127.0.0.1:6379');
    expect(parseConfig(MIN, 't', { env: {}, cpus: 1 }).shards).toBe(1);
  });

  it('parses durations in any unit to milliseconds', () => {
    const c = parseConfig(
      `${MIN}stages:\n  - dedup: { ttl: 2h }\n  - window: { type: hopping, size: 1m, advance: 15s, grace: 500ms, idleClose: 0 }\n`,
      't',
      { env: {} },
    );
    expect(c.stages).toEqual([
      { dedup: { ttl: 7_200_000, maxEntries: 100_000, by: 'id' } },
      {
        window: { type: 'hopping', size: 60_000, advance: 15_000, grace: 500, idleClose: 0, aggregates: [] },
      },
    ]);
  });

  it('interpolates $VAR references with and without a default, and reports unset variables', () => {
    const ref = (v: string) => `$\{${v}}`; // written out so that no linter takes them for template slips
    const text = `source: { stream: "${ref('IN')}" }\nsink: { stream: "${ref('OUT:-results')}" }\ndeadLetter: { stream: dlq }\n`;
    const c = parseConfig(text, 't', { env: { IN: 'events' } });
    expect(c.source.stream).toBe('events');
    expect(c.sink).toEqual({ type: 'stream', stream: 'results' });
    expect(problems(text, {})).toEqual(['source.stream: environment variable IN is not set']);
    // values only: a reference in a comment is left alone; a whole-value reference keeps its YAML type
    const typed = parseConfig(
      `# uses ${ref('UNSET_IN_COMMENT')}\n${MIN}metrics:\n  port: ${ref('PORT:-9999')}\n`,
      't',
      {
        env: {},
      },
    );
    expect(typed.metrics.port).toBe(9999);
  });

  it('reports every problem with its path and a fix', () => {
    const text = `source: { stream: in, batchSize: 0, startId: "5" }
sink: { stream: in }
deadLetter: { stream: dlq }
shards: 0
stages:
  - dedup: { ttl: soon }
  - window: { size: ten, aggregates: [{ fn: sum }, { fn: median, field: x }] }
  - filter: { where: [{ field: a, op: in, value: 1 }, { field: b, op: gt }] }
  - windw: { size: 1s }
`;
    expect(problems(text).sort()).toEqual(
      [
        'source.batchSize: Too small: expected number to be >=1',
        'source.startId: Invalid option: expected one of "0"|"$"',
        'shards: Too small: expected number to be >=1',
        'stages[0].dedup.ttl: expected a duration like "10s", got "soon"',
        'stages[1].window.size: expected a duration like "10s", got "ten"',
        'stages[1].window.aggregates[0].field: `sum` needs a field, e.g. field: amount',
        'stages[1].window.aggregates[1].fn: Invalid option: expected one of "count"|"sum"|"min"|"max"|"avg"',
        'stages[2].filter.where[0].value: `in` needs a list, e.g. value: [a, b]',
        'stages[2].filter.where[1].value: `gt` needs one value',
        'stages[3]: not a known form',
        // cross-field rules are reported together with the field errors
        'stages[1]: the window stage must be the last stage',
        'sink.stream: must differ from source.stream',
      ].sort(),
    );
  });

  it('checks cross-field rules', () => {
    expect(
      problems(`${MIN}stages:\n  - window: { size: 10s }\n  - dedup: {}\n  - dedup: {}\n`).sort(),
    ).toEqual([
      'stages[0]: the window stage must be the last stage',
      'stages[2]: only one dedup stage is allowed',
    ]);
    expect(problems(`${MIN}stages:\n  - window: { type: hopping, size: 10s, advance: 3s }\n`)).toEqual([
      'stages[0].window.advance: must be > 0 and divide size (10000 ms), got 3000 ms',
    ]);
    expect(problems(`${MIN}stages:\n  - window: { size: 10s, aggregates: [{ fn: avg }] }\n`)).toEqual([
      'stages[0].window.aggregates[0].field: `avg` needs a field, e.g. field: amount',
    ]);
    expect(
      problems('source: { stream: a }\nsink: { stream: a }\ndeadLetter: { stream: a }\n').sort(),
    ).toEqual([
      'deadLetter.stream: must differ from source.stream',
      'sink.stream: must differ from source.stream',
    ]);
    expect(problems(`${MIN}keyGroups: 4\nshards: 8\n`)).toEqual(['shards: must not exceed keyGroups (4)']);
    expect(problems(`${MIN}sourc: {}\n`)).toEqual(['(root): unknown option(s) "sourc"']);
  });

  it('bounds the reliability options', () => {
    const text = 'source: { stream: in, maxDeliveries: 40000, trim: { every: 0 } }\nsink: { stream: out }\n';
    expect(problems(`${text}deadLetter: { stream: dlq }\nlease: { ttl: 100ms }\n`).sort()).toEqual([
      'lease.ttl: must be at least 500 ms, got 100 ms',
      'source.maxDeliveries: Too big: expected number to be <=32000',
      'source.trim.every: must be at least 100 ms, got 0 ms',
    ]);
    const c = parseConfig(MIN, 't', { env: {} });
    expect(c.lease).toEqual({ ttl: 10_000 });
    expect(c.retry).toEqual({ attempts: 3, backoff: 50, maxBackoff: 2000 });
    expect(c.source).toMatchObject({ claimIdle: 5000, maxDeliveries: 10 });
    expect(c.source.trim).toBeUndefined();
  });

  it('reports YAML syntax errors and non-mapping files', () => {
    expect(problems('source: [\n')[0]).toMatch(/^line \d+: /);
    expect(problems('- a\n- b\n')).toEqual(['(root): expected a mapping of options']);
  });

  it('ships a JSON Schema equal to the one generated from the schema', () => {
    const shipped = JSON.parse(readFileSync(join(__dirname, '../schema/pipeline.schema.json'), 'utf8'));
    expect(shipped).toEqual(JSON.parse(JSON.stringify(jsonSchema())));
  });

  it('accepts every example pipeline in config/', () => {
    const dir = join(__dirname, '../config');
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files)
      expect(() => parseConfig(readFileSync(join(dir, f), 'utf8'), f, { env: {} })).not.toThrow();
  });
});
