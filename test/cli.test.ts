/**
 * `streamshard validate`: the shipped examples in config/ are valid; a broken file exits non-zero and
 * names every problem by its path.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, ROOT } from './helpers/pipeline.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, REDIS_URL: 'redis://127.0.0.1:6379' }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const dir = mkdtempSync(join(tmpdir(), 'streamshard-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const examples = readdirSync(join(ROOT, 'config'))
  .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
  .sort();

describe('validate', () => {
  it('ships at least 3 example configs', () => {
    expect(examples.length).toBeGreaterThanOrEqual(3);
  });

  it.each(examples)('config/%s is valid', async (file) => {
    const run = await cli(['validate', '-c', join(ROOT, 'config', file)]);
    expect(run, run.stdout + run.stderr).toMatchObject({ code: 0 });
    expect(run.stdout).toMatch(/\bok\b/);
  });

  it('lists every problem of a broken file by path and exits non-zero', async () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(
      file,
      [
        'source:',
        '  stream: in',
        '  batchSize: 0',
        'shards: 0',
        'sink: { stream: out }',
        'deadLetter: { stream: dlq }',
        'stages:',
        '  - filter: { where: [{ field: type, op: eq, value: order }] }',
        '  - window: { size: ten }',
        '',
      ].join('\n'),
    );
    const run = await cli(['validate', '-c', file]);
    const out = run.stdout + run.stderr;
    expect(run.code, out).not.toBe(0);
    expect(run.code, out).not.toBeNull();
    expect(out).toContain('  stages[1].window.size: expected a duration like "10s", got "ten"');
    expect(out).toMatch(/^ {2}source\.batchSize: /m);
    expect(out).toMatch(/^ {2}shards: /m);
  });

  it('reports a missing file and YAML syntax errors', async () => {
    const missing = await cli(['validate', '-c', join(dir, 'nope.yaml')]);
    expect(missing.code).not.toBe(0);
    const file = join(dir, 'syntax.yaml');
    writeFileSync(file, 'source: { stream: in\n');
    const syntax = await cli(['validate', '-c', file]);
    expect(syntax.code).not.toBe(0);
    expect(syntax.stdout + syntax.stderr).toMatch(/line \d+/);
  });
});
