/**
 * The README's first command runs `streamshard demo`. Here it runs against the test Redis (REDIS_URL set,
 * so no private server) with a small input, and must finish on its own with the results printed.
 */
import { spawn } from 'node:child_process';
import { expect, it } from 'vitest';
import { CLI } from './helpers/pipeline.js';
import { redisUrl } from './helpers/redis.js';

it('produces, processes, prints the window results and the metrics URL, and exits 0', async () => {
  const child = spawn(process.execPath, [CLI, 'demo', '--events', '3000', '--keys', '50'], {
    env: { ...process.env, REDIS_URL: redisUrl() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  expect(out).toContain('processed 3000 entries');
  expect(out).toMatch(/metrics at http:\/\/127\.0\.0\.1:\d+\/metrics/);
  expect(out).toMatch(/window results: [1-9]\d* entries/);
  expect(out).toMatch(/dead letters: +[1-9]\d* entries/);
  expect(code).toBe(0);
}, 120_000);
