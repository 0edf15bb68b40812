/**
 * The config commands as child processes: `test` runs the shipped tests of every example config
 * (config/tests/<name>.yaml) on a private redis-server and passes, fails a wrong expectation with a
 * readable diff and rejects a broken tests file; `print-config` prints the config resolved (and valid
 * again); `validate` reports several files.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCli, tempFiles } from './helpers/cli.js';
import { ROOT } from './helpers/pipeline.js';

const files = tempFiles('config-cmds');
afterAll(files.remove);

const examples = readdirSync(join(ROOT, 'config'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();

describe('test', () => {
  it('every example config ships tests', () => {
    expect(examples.length).toBeGreaterThanOrEqual(3);
    for (const f of examples) expect(existsSync(join(ROOT, 'config/tests', f)), f).toBe(true);
  });

  it.each(examples)('config/%s passes its tests (config/tests/) on a private redis-server', async (f) => {
    const run = await runCli(['test', '-c', join(ROOT, 'config', f), join(ROOT, 'config/tests', f)], {
      REDIS_URL: undefined, // a private server, as users run it
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const cases = (parse(readFileSync(join(ROOT, 'config/tests', f), 'utf8')) as { tests: unknown[] }).tests
      .length;
    expect(run.stdout.match(/^✔ /gm)).toHaveLength(cases);
    expect(run.stdout).toContain(`${cases} passed, 0 failed`);
  });

  it('fails a wrong expectation with what differs (exit 1), and passes the right one', async () => {
    const tests = files.write(
      'wrong.yaml',
      [
        'tests:',
        '  - name: wrong count',
        '    input:',
        '      - { key: c1, body: { id: a, ts: 1000, amount: 10 } }',
        '      - { key: c1, body: { id: b, ts: 2000, amount: 5 } }',
        '      - { key: c2, body: { id: c, ts: 2000 } }',
        '    results:',
        '      - { key: c1, window_start: 0, count: 3, sum_amount: 15 }',
        '    deadLetters:',
        '      - { code: E_LATE, key: c2 }',
        '  - name: right',
        '    input:',
        '      - { key: c1, body: { id: a, ts: 1000, amount: 10 } }',
        '    results:',
        '      - { key: c1, window_start: 0, window_end: 5000, count: 1, sum_amount: 10.0, avg_amount: 10 }',
        '',
      ].join('\n'),
    );
    const run = await runCli(['test', '-c', join(ROOT, 'config/orders-tumbling.yaml'), tests], {
      REDIS_URL: undefined,
    });
    expect(run.code, run.stderr).toBe(1);
    const out = run.stdout;
    expect(out).toMatch(/^✘ wrong count \(3 input\(s\) → 1 result\(s\), 1 dead letter\(s\)\)/m);
    expect(out).toContain('results: expected 1, got 1 (1 expected not found, 1 not expected)');
    expect(out).toContain('- expected  {"key":"c1","window_start":0,"count":3,"sum_amount":15}');
    expect(out).toMatch(
      /closest +\{"key":"c1","window_start":"0","window_end":"5000","count":"2","sum_amount":"15"/,
    );
    expect(out).toContain('differs in count');
    expect(out).toContain('dead letters: expected 1, got 1');
    expect(out).toMatch(/closest +\{"code":"E_BAD_FIELD","key":"c2"/);
    expect(out).toMatch(/^✔ right /m);
    expect(out).toContain('1 passed, 1 failed');
  });

  it('says when the windows cannot be closed: event times too close to now for the window size', async () => {
    const config = files.write(
      'hour.yaml',
      'source: { stream: in }\nsink: { stream: out }\ndeadLetter: { stream: dlq }\n' +
        'stages: [{ window: { size: 1h, aggregates: [{ fn: sum, field: amount }] } }]\n',
    );
    const tests = files.write(
      'recent.yaml',
      `tests:\n  - name: recent\n    input: [{ key: c1, body: { ts: ${Date.now() - 1000}, amount: 1 } }]\n`,
    );
    const run = await runCli(['test', '-c', config, tests], { REDIS_URL: undefined });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(
      /^✘ recent \S+ s\n {4}error: cannot close the last windows: .*body\.maxFutureSkew/m,
    );
  });

  it('rejects a broken tests file, naming each problem by path', async () => {
    const tests = files.write(
      'broken.yaml',
      'tests:\n  - name: x\n    input: []\n    result: []\n  - name: x\n    input: [{ id: abc }]\n    deadLetters: [{ code: E_NOPE }]\n',
    );
    const run = await runCli(['test', '-c', join(ROOT, 'config/orders-tumbling.yaml'), tests]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`invalid tests file ${tests}`);
    expect(run.stderr).toMatch(/^ {2}tests\[0\]\.input: needs at least one input$/m);
    expect(run.stderr).toMatch(/^ {2}tests\[0\]: unknown option\(s\) "result"$/m);
    expect(run.stderr).toMatch(/^ {2}tests\[1\]\.input\[0\]\.id: expected a stream ID like 1000-0$/m);
    expect(run.stderr).toMatch(/^ {2}tests\[1\]\.deadLetters\[0\]\.code: /m);
  });
});

describe('print-config', () => {
  it('prints the config with defaults and ${VAR}s resolved, the password masked; the output validates', async () => {
    const env = { SHARDS: '3', SINK_STREAM: 'out:x', REDIS_URL: 'redis://u:hunter2@127.0.0.1:6399/2' };
    const yaml = await runCli(['print-config', '-c', join(ROOT, 'config/orders-tumbling.yaml')], env);
    expect(yaml.code, yaml.stderr).toBe(0);
    expect(yaml.stdout).not.toContain('hunter2');
    const c = parse(yaml.stdout) as Record<string, Record<string, unknown>>;
    expect(c).toMatchObject({
      name: 'orders-tumbling',
      shards: 3,
      redis: { url: 'redis://u:***@127.0.0.1:6399/2', connectTimeout: 10_000, keyPrefix: 'streamshard' },
      source: { stream: 'orders', batchSize: 1000, block: 1000, claimIdle: 5000, maxDeliveries: 10 },
      sink: { stream: 'out:x', maxLen: 1_000_000 },
      lease: { ttl: 10_000 },
      retry: { attempts: 3, backoff: 50, maxBackoff: 2000 },
    });
    const json = await runCli(
      ['print-config', '-c', join(ROOT, 'config/orders-tumbling.yaml'), '--json'],
      env,
    );
    expect(JSON.parse(json.stdout)).toEqual(c);
    const again = await runCli(['validate', files.write('resolved.yaml', yaml.stdout)], {
      REDIS_URL: undefined,
    });
    expect(again.code, again.stderr).toBe(0);
  });
});

describe('validate', () => {
  it('reports each of several files (-c repeated and positional); exit 1 if any is invalid', async () => {
    const bad = files.write('bad.yaml', 'source: { stream: in }\nsink: { stream: out }\n');
    const good = examples.map((f) => join(ROOT, 'config', f));
    const run = await runCli(['validate', '-c', good[0] as string, '-c', bad, ...good.slice(1)]);
    expect(run.code).toBe(1);
    for (const f of good) expect(run.stdout).toContain(`ok: ${f}: `);
    expect(run.stderr).toContain(`invalid pipeline config ${bad}: 1 problem(s)`);
    expect(run.stderr).toMatch(/^ {2}deadLetter: /m);
    expect(run.stdout).toContain(`${good.length} of ${good.length + 1} files valid`);
    const ok = await runCli(['validate', ...good]);
    expect(ok.code).toBe(0);
    const none = await runCli(['validate']);
    expect(none.code).toBe(2);
  });
});
