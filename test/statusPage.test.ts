/**
 * The status page (GET /, src/metrics/status/page.html) and its JSON (GET /api/status), on real
 * pipelines against the test Redis:
 *   - the JSON: graph from the config, counters, per-shard figures, the newest dead letters decoded;
 *   - the dead-letter cache: one read per second however many requests, and never waiting on a Redis
 *     that does not answer for more than ~500 ms;
 *   - end to end in headless Chromium (Debian `chromium`, driven by playwright-core): the page draws the
 *     graph, nonzero rates, shard rows and the recent dead letters — a key full of HTML shown as text, no
 *     script run — and saves a screenshot to .ci/out/status-page.png; a standby's page says so.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { chromium } from 'playwright-core';
import { describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { pipelineGraph } from '../src/metrics/status/graph.js';
import { DeadLetterCache, RECENT } from '../src/metrics/status/recentDeadLetters.js';
import type { StatusReport } from '../src/metrics/status/statusReport.js';
import { produce } from '../src/tools/produce/producer.js';
import {
  httpGet,
  pipelineConfig,
  redis,
  ROOT,
  startPipeline,
  type TestNames,
  testNames,
  useTestHooks,
  waitForDrain,
} from './helpers/pipeline.js';
import { redisUrl, uniqueName, waitFor } from './helpers/redis.js';

useTestHooks();

const CHROMIUM = '/usr/bin/chromium';
/** A key that would run script and add an element if the page inserted it as markup. */
const HTML_KEY = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b id="injected">k</b>';
const SHARDS = 2;

const STAGES = [
  { filter: { where: [{ field: 'amount', op: 'gte', value: 0 }] } },
  { dedup: { ttl: '10m' } },
  { window: { size: '10s', grace: '1m', aggregates: [{ fn: 'sum', field: 'amount' }] } },
];

/** Valid events, `malformedPct` % malformed ones (dead letters). */
async function input(n: TestNames, seed: number, count: number, malformedPct = 5): Promise<void> {
  await produce(redis, n.input, {
    count,
    keys: 50,
    seed,
    duplicatePct: 0,
    outOfOrderPct: 0,
    malformedPct,
    startTs: Date.now() - 30_000,
    intervalMs: 1,
    outOfOrderMaxMs: 1,
    encoding: 'msgpack',
  });
}

/** An entry without a body whose key is HTML, once everything before it is acked: the newest dead letter. */
async function addHtmlKeyed(n: TestNames): Promise<string> {
  const id = (await redis.xadd(n.input, '*', 'key', HTML_KEY, 'other', 'no body here')) as string;
  expect((await waitForDrain(redis, { stream: n.input, group: n.group, outputs: {} })).done).toBe(true);
  return id;
}

async function status(port: number): Promise<StatusReport> {
  const res = await httpGet(port, '/api/status');
  expect(res.status).toBe(200);
  return JSON.parse(res.body) as StatusReport;
}

it('answers /api/status from the running pipeline: graph, counters, shards, recent dead letters decoded', async () => {
  const n = testNames('status-api');
  await input(n, 1, 2000);
  const p = await startPipeline(pipelineConfig(n, { shards: SHARDS, stages: STAGES }));
  expect((await waitForDrain(redis, { stream: n.input, group: n.group, outputs: {} })).done).toBe(true);
  const htmlId = await addHtmlKeyed(n);
  const dlqLength = await redis.xlen(n.dlq);
  expect(dlqLength).toBeGreaterThan(1);

  const s = await waitFor('the status to show every entry acked and the sample', async () => {
    const r = await status(p.metricsPort);
    return (
      r.counters.acked === 2001 &&
      r.deadLetters.entries[0]?.sourceId === htmlId &&
      r.sample !== null &&
      r.sample.lengths.deadLetter === dlqLength &&
      r
    );
  });
  expect(s.role).toBe('leader');
  expect(s.leaseEpoch).toBeGreaterThan(0);
  expect(s.graph).toEqual({
    source: { stream: n.input, group: n.group, consumer: n.consumer, keyField: 'key', encoding: 'msgpack' },
    shards: SHARDS,
    stages: [
      { kind: 'filter', where: ['amount gte 0'] },
      { kind: 'dedup', ttlMs: 600_000, maxEntries: 100_000, by: 'id' },
      {
        kind: 'window',
        type: 'tumbling',
        sizeMs: 10_000,
        advanceMs: 10_000,
        gapMs: null,
        graceMs: 60_000,
        idleCloseMs: 5000,
        aggregates: ['count', 'sum(amount)'],
      },
    ],
    sink: { type: 'stream', stream: n.sink },
    deadLetter: { stream: n.dlq },
  });
  expect(s.counters.read).toBe(2001);
  expect(s.counters.deadLettered).toBe(dlqLength);
  expect(Object.values(s.counters.deadLetteredByCode).reduce((a, b) => a + b, 0)).toBe(dlqLength);
  expect(s.counters.deadLetteredByCode.E_BAD_BODY).toBeGreaterThanOrEqual(1);
  expect(s.shards.map((x) => x.shard)).toEqual([0, 1]);
  for (const x of s.shards) {
    expect(x.inFlight).toBe(0);
    expect(x.streamTime).not.toBeNull();
    expect(x.busyMs).toBeGreaterThan(0);
  }
  expect(s.shards.reduce((a, x) => a + (x.openWindows ?? 0), 0)).toBeGreaterThan(0);
  expect(s.shards.reduce((a, x) => a + (x.dedupIds ?? 0), 0)).toBeGreaterThan(0);

  // The newest dead letters, newest first, as parseDeadLetter reads them from the stream.
  const newest = (await redis.xrevrange(n.dlq, '+', '-', 'COUNT', RECENT)).map(([id]) => id);
  expect(s.deadLetters.error).toBeNull();
  expect(s.deadLetters.entries.map((e) => e.id)).toEqual(newest);
  const html = s.deadLetters.entries.find((e) => e.sourceId === htmlId);
  expect(html).toMatchObject({ code: 'E_BAD_BODY', key: HTML_KEY, sourceId: htmlId });
});

it('draws hopping windows, exists conditions and a stdout sink in the graph', () => {
  const c = parseConfig(
    JSON.stringify({
      source: { stream: 'in', group: 'g' },
      shards: 3,
      stages: [
        {
          filter: {
            where: [
              { field: 'user', op: 'exists' },
              { field: 'type', op: 'in', value: ['a', 'b'] },
            ],
          },
        },
        { window: { type: 'hopping', size: '1m', advance: '10s', aggregates: [{ fn: 'avg', field: 'x' }] } },
      ],
      sink: { type: 'stdout' },
      deadLetter: { stream: 'dlq' },
    }),
    'test',
    { env: { REDIS_URL: 'redis://127.0.0.1:1' } },
  );
  expect(pipelineGraph(c)).toEqual({
    source: { stream: 'in', group: 'g', consumer: c.source.consumer, keyField: 'key', encoding: 'msgpack' },
    shards: 3,
    stages: [
      { kind: 'filter', where: ['user exists', 'type in ["a","b"]'] },
      {
        kind: 'window',
        type: 'hopping',
        sizeMs: 60_000,
        advanceMs: 10_000,
        gapMs: null,
        graceMs: 0,
        idleCloseMs: 5000,
        aggregates: ['count', 'avg(x)'],
      },
    ],
    sink: { type: 'stdout', stream: null },
    deadLetter: { stream: 'dlq' },
  });
});

it('draws session and sliding windows with their gap and size', () => {
  const windowOf = (window: Record<string, unknown>) =>
    pipelineGraph(
      parseConfig(
        JSON.stringify({
          source: { stream: 'in', group: 'g' },
          stages: [{ window }],
          sink: { stream: 'out' },
          deadLetter: { stream: 'dlq' },
        }),
        'test',
        { env: { REDIS_URL: 'redis://127.0.0.1:1' } },
      ),
    ).stages[0];
  expect(windowOf({ type: 'session', gap: '30m' })).toMatchObject({
    type: 'session',
    sizeMs: null,
    advanceMs: null,
    gapMs: 1_800_000,
  });
  expect(windowOf({ type: 'sliding', size: '5s' })).toMatchObject({
    type: 'sliding',
    sizeMs: 5000,
    advanceMs: null,
    gapMs: null,
  });
});

it('draws the order, rate-limit and content-dedup stages with their settings', () => {
  const stages = pipelineGraph(
    parseConfig(
      JSON.stringify({
        source: { stream: 'in', group: 'g' },
        stages: [
          { order: { versionPath: 'v', maxBuffered: 50, timeout: '10s', onGap: 'skip' } },
          { rateLimit: { per: 'shard', rate: '100/s', burst: 20, onExcess: 'deadLetter' } },
          { dedup: { by: 'content', ttl: '1m' } },
        ],
        sink: { stream: 'out' },
        deadLetter: { stream: 'dlq' },
      }),
      'test',
      { env: { REDIS_URL: 'redis://127.0.0.1:1' } },
    ),
  ).stages;
  expect(stages).toEqual([
    { kind: 'order', versionPath: 'v', maxBuffered: 50, timeoutMs: 10_000, onGap: 'skip' },
    { kind: 'rateLimit', per: 'shard', rate: '100/s', burst: 20, onExcess: 'deadLetter' },
    { kind: 'dedup', ttlMs: 60_000, maxEntries: expect.any(Number), by: 'content' },
  ]);
});

it('reads the dead-letter stream at most once a second, and waits at most ~500 ms on a Redis that does not answer', async () => {
  const stream = uniqueName('status-dlq');
  await redis.xadd(stream, '*', 'key', 'k1', 'error', 'E_BAD_BODY: no body', 'source_id', '1-1');
  let now = 1_000_000;
  const client = new Redis(redisUrl(), { lazyConnect: true });
  await client.connect();
  try {
    const reads = vi.spyOn(client, 'xrevrangeBuffer');
    const cache = new DeadLetterCache(client, stream, 'key', () => now);
    const answers = await Promise.all(Array.from({ length: 50 }, () => cache.get()));
    expect(reads).toHaveBeenCalledTimes(1);
    for (const a of answers)
      expect(a.entries.map((e) => [e.code, e.key, e.message])).toEqual([['E_BAD_BODY', 'k1', 'no body']]);

    await redis.xadd(stream, '*', 'key', 'k2', 'error', 'E_BAD_TIME: late', 'source_id', '1-2');
    now += 999;
    expect((await cache.get()).entries).toHaveLength(1); // within the second: the cached value
    expect(reads).toHaveBeenCalledTimes(1);
    now += 1;
    expect((await cache.get()).entries.map((e) => e.key)).toEqual(['k2', 'k1']);
    expect(reads).toHaveBeenCalledTimes(2);

    // The connection is busy with a blocking read for 20 s: the next read queues behind it, and get()
    // answers with the last value long before the blocking read ends.
    let blockingDone = false;
    const blocking = client
      .xread('BLOCK', 20_000, 'STREAMS', uniqueName('status-never'), '$')
      .catch(() => null)
      .finally(() => {
        blockingDone = true;
      });
    now += 1000;
    const late = await cache.get();
    expect(blockingDone).toBe(false);
    expect(reads).toHaveBeenCalledTimes(3);
    expect(late.entries.map((e) => e.key)).toEqual(['k2', 'k1']);
    client.disconnect();
    await blocking;
  } finally {
    client.disconnect();
  }
});

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(
    `statusPage.test.ts: skipping the browser tests: ${CHROMIUM} is absent (apt-get install chromium)`,
  );
}

describe.skipIf(!haveChromium)(`in headless Chromium (${CHROMIUM}; skipped when absent)`, () => {
  async function browser() {
    const profile = mkdtempSync(join(tmpdir(), 'streamshard-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 1000 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    return {
      context,
      close: async () => {
        await context.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  }

  it('shows the graph, live rates, shards and recent dead letters (HTML in a key as text); saves a screenshot', async () => {
    const n = testNames('status-page');
    await input(n, 2, 2000);
    const p = await startPipeline(pipelineConfig(n, { shards: SHARDS, stages: STAGES }));
    expect((await waitForDrain(redis, { stream: n.input, group: n.group, outputs: {} })).done).toBe(true);
    const htmlId = await addHtmlKeyed(n);
    const b = await browser();
    // Events keep coming while the page polls, so that two successive answers differ (rates > 0).
    let producing = true;
    const producer = (async () => {
      for (let seed = 100; producing; seed++) {
        await input(n, seed, 200, 0); // valid only: the HTML-keyed dead letter stays among the newest
        await new Promise((r) => setTimeout(r, 50)); // pacing the load on a shared machine, not a wait
      }
    })();
    try {
      const page = b.context.pages()[0] ?? (await b.context.newPage());
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      const res = await page.goto(`http://127.0.0.1:${p.metricsPort}/`);
      expect(res?.status()).toBe(200);
      expect(res?.headers()['content-security-policy']).toContain("default-src 'none'");

      const text = (sel: string) => page.locator(sel).first().textContent();
      await waitFor('the graph', async () => (await page.locator('#graph .node').count()) === 6);
      const kinds = await page.locator('#graph .node .kind').allTextContents();
      expect(kinds).toEqual(['source', 'shards', 'filter', 'dedup', 'window', 'sink']);
      expect(await text('#graph')).toContain(n.input);
      expect(await text('#graph')).toContain(n.sink);
      expect(await text('#graph-dlq')).toContain(n.dlq);
      expect(await text('#role')).toBe('leader');

      const positive = (s: string | null) =>
        s !== null && /^[\d,.]+$/.test(s) && Number(s.replace(/,/g, '')) > 0;
      await waitFor(
        'nonzero read and acked rates',
        async () => positive(await text('#rate-read .value')) && positive(await text('#rate-acked .value')),
      );
      await waitFor(
        'the lag from the background sample',
        async () => (await text('#lag-seconds .value')) !== '—',
      );
      await waitFor('utilisation and stream time for every shard', async () => {
        const rows = await page.locator('#shards tbody tr').allInnerTexts();
        return rows.length === SHARDS && rows.every((r) => /\d+ %/.test(r) && /\d{4}-\d\d-\d\dT/.test(r));
      });
      await waitFor(
        'dead letters by code',
        async () => (await page.locator('#codes tbody td.code').count()) > 0,
      );

      // The HTML key is in the recent dead letters as text, and nothing of it became markup or ran.
      await waitFor('the recent dead letters with the HTML key', async () => {
        const keys = await page.locator('#dead-letters tbody .dl-key').allTextContents();
        return keys.length > 0 && keys.includes(HTML_KEY);
      });
      const row = page.locator(`#dead-letters tbody tr:has(td:text-is("${htmlId}"))`);
      expect(await row.locator('.code').textContent()).toBe('E_BAD_BODY');
      expect(await page.locator('#injected').count()).toBe(0);
      expect(await page.locator('#dead-letters img, #dead-letters script, #dead-letters b').count()).toBe(0);
      expect(await page.evaluate(() => (globalThis as { __xss?: number }).__xss)).toBeUndefined();
      expect(errors).toEqual([]);

      producing = false;
      await producer;
      mkdirSync(join(ROOT, '.ci/out'), { recursive: true });
      await page.screenshot({ path: join(ROOT, '.ci/out/status-page.png'), fullPage: true });
      expect(existsSync(join(ROOT, '.ci/out/status-page.png'))).toBe(true);
    } finally {
      producing = false;
      await producer;
      await b.close();
    }
  });

  it("says so on a standby's page", async () => {
    const n = testNames('status-standby');
    await input(n, 3, 200);
    const config = pipelineConfig(n, { shards: 1, stages: STAGES });
    await startPipeline(config);
    const standby = await startPipeline(config, {}, 30_000, 'standby');
    const b = await browser();
    try {
      const page = b.context.pages()[0] ?? (await b.context.newPage());
      await page.goto(`http://127.0.0.1:${standby.metricsPort}/`);
      await waitFor('the standby notice', async () =>
        ((await page.locator('#notice').textContent()) ?? '').includes('on standby'),
      );
      expect(await page.locator('#role').textContent()).toBe('standby');
      expect(await page.locator('#graph .node').count()).toBe(6);
      expect(['—', '0']).toContain(await page.locator('#rate-read .value').textContent()); // a standby reads nothing
    } finally {
      await b.close();
    }
  });
});
