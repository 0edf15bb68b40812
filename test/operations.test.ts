/**
 * Operating the pipeline (issue 10 items 6, 8 and the logging of 9): config mistakes are reported by
 * `validate` and `run` alike without a stack or a password; start-up waits for Redis and names the real
 * cause of each failure; metrics and health answer during an outage; every stop honours its deadline;
 * SIGHUP drains; Redis refusing writes (out of memory) is logged with backoff.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis as Client } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redactUrl } from '../src/redis/url.js';
import { startLocalRedis } from '../src/tools/localRedis.js';
import {
  CLI,
  httpGet,
  type LogRecord,
  pipelineConfig,
  redis,
  spawnPipeline,
  startPipeline,
  testNames,
  useTestHooks,
} from './helpers/pipeline.js';
import { tcpProxy } from './helpers/proxy.js';
import { redisUrl, waitFor } from './helpers/redis.js';

useTestHooks();

const dir = mkdtempSync(join(tmpdir(), 'streamshard-ops-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to its end with `env` over the test's environment. */
function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, LOG_LEVEL: undefined, ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const sharedPort = (): number => Number(new URL(redisUrl()).port);

const minimal = 'source: { stream: in }\nsink: { stream: out }\ndeadLetter: { stream: dlq }\n';

describe('settings', () => {
  it('masks the password in every form of URL', () => {
    expect(
      [
        'redis://u:p@ss@host:6379/2',
        'redis://:pw@h',
        'redis://user@h',
        'rediss://u:s3cret@h:1?password=other&db=2',
        'redis://h:1',
        'not a url u:secret@x',
      ].map(redactUrl),
    ).toEqual([
      'redis://u:***@host:6379/2',
      'redis://:***@h',
      'redis://***@h',
      'rediss://u:***@h:1?password=***&db=2',
      'redis://h:1',
      'not a url u:secret@x',
    ]);
  });

  it('rejects a malformed Redis URL in validate and in run, naming the path, never the password', async () => {
    const bad = 'redis://user:hunter2@ho st:6379'; // a space in the host
    const f = file('bad-url.yaml', `redis: { url: "${bad}" }\n${minimal}`);
    const envBad = file('env-url.yaml', minimal);
    const runs = [
      await cli(['validate', '-c', f]),
      await cli(['run', '-c', f]),
      await cli(['validate', '-c', envBad], { REDIS_URL: 'redis://:hunter2@/0' }),
      await cli(['run', '-c', envBad], { REDIS_URL: 'redis://:hunter2@/0' }),
    ];
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/redis\.url.*(not a valid URL|names no host)/);
      expect(r.stderr).not.toContain('hunter2');
      expect(r.stderr).not.toMatch(/TypeError|\n\s+at /); // no stack
    }
    expect(runs[2]?.stderr).toContain('REDIS_URL');
  });

  it('rejects an unknown LOG_LEVEL in validate and in run, listing the levels', async () => {
    const f = file('ok.yaml', minimal);
    for (const cmd of ['validate', 'run']) {
      const r = await cli([cmd, '-c', f], { LOG_LEVEL: 'verbose', REDIS_URL: redisUrl() });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain('LOG_LEVEL "verbose" is not a log level');
      expect(r.stderr).toContain('fatal, error, warn, info, debug, trace, silent');
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

/** A config whose start-up gives up soon. */
function startupConfig(prefix: string, redisExtra: Record<string, unknown>): string {
  const n = testNames(prefix);
  const c = JSON.parse(pipelineConfig(n, { shards: 1 })) as { redis: Record<string, unknown> };
  c.redis = { ...c.redis, ...redisExtra };
  return JSON.stringify(c);
}

const msgs = (logs: string[]): LogRecord[] =>
  logs.flatMap((l) => {
    try {
      return [JSON.parse(l) as LogRecord];
    } catch {
      return [];
    }
  });

describe('start-up', () => {
  it('waits for a Redis that comes up after the pipeline, logging why it cannot connect', async () => {
    const proxy = await tcpProxy(sharedPort(), { startDown: true });
    const p = spawnPipeline(startupConfig('late', {}), { env: { REDIS_URL: proxy.url } });
    const retry = await p.waitForMsg(['cannot connect to Redis; retrying'], 15_000);
    expect(String(retry.err)).toContain('ECONNREFUSED');
    await proxy.up();
    await p.waitForMsg(['ready'], 30_000);
    expect(await p.stop()).toBe(0);
    await proxy.down();
  });

  it('stops at once on SIGTERM while waiting for Redis', async () => {
    const proxy = await tcpProxy(sharedPort(), { startDown: true });
    const p = spawnPipeline(startupConfig('wait-stop', {}), { env: { REDIS_URL: proxy.url } });
    await p.waitForMsg(['cannot connect to Redis; retrying'], 15_000);
    expect(await p.stop('SIGTERM', 15_000)).toBe(0); // nothing was read: a clean stop
    expect(p.logs().some((l) => l.includes('"signal":"SIGTERM"'))).toBe(true);
  });

  it('names WRONGPASS and NOAUTH, never the password, and exits 1 after redis.startTimeout', async () => {
    const server = await startLocalRedis();
    try {
      const admin = new Client(server.url, { protocol: 2 });
      await admin.config('SET', 'requirepass', 'right-one');
      admin.disconnect();
      const secret = 'wr@ng:S3cret';
      const base = `127.0.0.1:${server.port}`;
      const cases = [
        { url: `redis://:${secret}@${base}`, cause: 'WRONGPASS' },
        { url: `redis://default:${secret}@${base}`, cause: 'WRONGPASS' },
        { url: `redis://${base}`, cause: 'NOAUTH' },
      ];
      for (const { url, cause } of cases) {
        const p = spawnPipeline(startupConfig('auth', { startTimeout: '1s' }), { env: { REDIS_URL: url } });
        const { code } = await p.exited;
        expect(code).toBe(1);
        const logs = p.logs();
        expect(logs.join('\n')).not.toContain('S3cret');
        expect(logs.join('\n')).not.toContain('wr@ng');
        const retries = msgs(logs).filter((r) => r.msg === 'cannot connect to Redis; retrying');
        expect(retries.length).toBeGreaterThan(0);
        for (const r of retries) expect(String(r.err)).toContain(cause);
        const failed = msgs(logs).find((r) => r.msg === 'start failed');
        expect(String(failed?.err)).toMatch(new RegExp(`startTimeout.*${cause}`));
      }
    } finally {
      await server.stop();
    }
  });

  it('says at once that a rediss:// URL points at a plain server', async () => {
    const t0 = Date.now();
    const p = spawnPipeline(startupConfig('tls', { connectTimeout: '30s' }), {
      env: { REDIS_URL: `rediss://127.0.0.1:${sharedPort()}` },
    });
    const { code } = await p.exited;
    expect(code).toBe(1);
    // a bound well below connectTimeout (30 s), not a speed assertion
    expect(Date.now() - t0).toBeLessThan(15_000);
    const failed = msgs(p.logs()).find((r) => r.msg === 'start failed');
    expect(String(failed?.err)).toContain('does not speak TLS; use redis://'.split(';')[0] as string);
    expect(String(failed?.err)).toContain('use redis://');
  });
});

describe('outage', () => {
  it('serves /metrics at once with redis_connected 0 and /readyz 503, and SIGTERM exits within its deadline', async () => {
    const proxy = await tcpProxy(sharedPort());
    const n = testNames('outage');
    await redis.xadd(n.input, '*', 'key', 'a', 'data', '{"ts":1700000000000}');
    const config = pipelineConfig(n, { shards: 1, extra: { shutdown: { timeout: '2s' } } });
    const p = await startPipeline(config, { REDIS_URL: proxy.url });
    await waitFor('the group info is known', async () =>
      /consumer_group_pending 0\b/.test((await httpGet(p.metricsPort, '/metrics')).body),
    );
    await proxy.down();
    const downAt = Date.now();
    await waitFor('not ready', async () => (await httpGet(p.metricsPort, '/readyz')).status === 503);
    // /metrics must not wait for Redis: each scrape within a bound far below any reconnect (not a speed
    // assertion), for longer than the 1 s the group info is cached
    for (let scrapes = 0; scrapes < 3 || Date.now() - downAt < 2500; scrapes++) {
      const res = await fetch(`http://127.0.0.1:${p.metricsPort}/metrics`, {
        signal: AbortSignal.timeout(3000),
      });
      const body = await res.text();
      expect(res.status).toBe(200);
      expect(body).toMatch(/^streamshard_redis_connected 0$/m);
      expect(body).toMatch(/^streamshard_consumer_group_pending 0$/m); // the last known value
    }
    const t0 = Date.now();
    const code = await p.stop('SIGTERM', 20_000); // throws if still running after 20 s
    expect([0, 1]).toContain(code);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(p.logs().some((l) => l.includes('"msg":"stopped'))).toBe(true);
  });

  it('drains and hands the lease over on SIGHUP', async () => {
    const n = testNames('sighup');
    for (let i = 0; i < 100; i++) await redis.xadd(n.input, '*', 'key', `k${i % 7}`, 'data', '{"v":1}');
    const p = await startPipeline(pipelineConfig(n, { shards: 2 }));
    // (not msgpack bodies: every entry is dead-lettered, which is output all the same)
    await waitFor('all handled', async () => (await redis.xlen(n.sink)) + (await redis.xlen(n.dlq)) === 100);
    expect(await p.stop('SIGHUP')).toBe(0);
    expect(p.logs().some((l) => l.includes('"signal":"SIGHUP"'))).toBe(true);
    expect(await redis.get(`${n.keyPrefix}:${n.input}:${n.group}:lease`)).toBeNull();
  });
});

describe('Redis refusing', () => {
  it('logs failed reads with backoff while Redis is out of memory, and failed lease renewals', async () => {
    const server = await startLocalRedis();
    const admin = new Client(server.url, { protocol: 2 });
    try {
      const n = testNames('oom');
      // ttl 9 s: renewals every 3 s, and reads stay within the lease for the window counted below
      const config = pipelineConfig(n, { shards: 1, extra: { lease: { ttl: '9s' } } });
      const p = await startPipeline(config, { REDIS_URL: server.url });
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      const since = p.logs().length;
      await admin.config('SET', 'maxmemory', '1'); // every write, and any MULTI, is refused (OOM)
      const failedReads = () => msgs(p.logs().slice(since)).filter((r) => r.msg === 'read failed; retrying');
      const first = await waitFor('a failed read', async () => failedReads()[0], 10_000);
      expect(String(first.err)).toContain('OOM');
      // Count over 3 s after the first failure: with backoff (100 ms doubling) ~6, without ~30.
      const t0 = Number(first.time);
      await waitFor('3 s of failures', async () => Date.now() > t0 + 3000, 10_000);
      const within = failedReads().filter((r) => Number(r.time) < t0 + 3000);
      expect(within.length).toBeLessThanOrEqual(8);
      await admin.config('SET', 'maxmemory', '0');

      // The lease script only extends its key (PEXPIRE is allowed when out of memory): refuse EVAL instead.
      const mark = p.logs().length;
      const renewalLogs = () =>
        msgs(p.logs().slice(mark)).filter((r) => r.msg === 'lease renewal failed; retrying');
      await admin.call('ACL', 'SETUSER', 'default', '-eval');
      const renewal = await waitFor('a failed lease renewal is logged', async () => renewalLogs()[0], 10_000);
      expect(String(renewal.err)).toContain('NOPERM');
      // renewals run every 3 s; the next failures within 10 s are not logged again
      const r0 = Number(renewal.time);
      await waitFor('two more renewals', async () => Date.now() > r0 + 7000, 15_000);
      expect(renewalLogs().length).toBe(1);
      await admin.call('ACL', 'SETUSER', 'default', '+eval');
      await waitFor('renewed again', async () =>
        p
          .logs()
          .slice(mark)
          .some((l) => l.includes('lease renewed again')),
      );
      await p.kill9();
    } finally {
      admin.disconnect();
      await server.stop();
    }
  });
});
