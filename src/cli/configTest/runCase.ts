/**
 * Runs one test case: the pipeline, as configured, on the case's input, in Redis under key names of its
 * own, until everything it will write is written — then what it wrote.
 *
 *   1. XADD the inputs to a fresh input stream; start the pipeline on it (in this process, no HTTP).
 *   2. Wait until the group has delivered and acked every input (each ack is in the commit of its effect).
 *   3. Windows: results come when windows close, which they do as stream time passes `end + grace`. A
 *      running pipeline gets there with later events or the idle close — in wall time, up to a window's
 *      size later. The runner instead adds one flush event per shard, stamped `window size + grace` past
 *      the highest stored stream time, which closes every window the inputs opened; then it waits until
 *      only the flush events' own windows are open. Flush events have keys of their own
 *      (`__streamshard_test_flush_<shard>`) and are left out of what is compared. Their time must pass
 *      `body.maxFutureSkew`: inputs should carry times well in the past (small epoch ms like 1000 read well).
 *   4. Stop the pipeline and read the output and dead-letter streams.
 *
 * The sink is always a stream here (a `stdout` sink's records are the same entries), the group starts at
 * `0`, and input trimming is off.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { loadCheckpoint } from '../../commit/restore.js';
import type { PipelineConfig } from '../../config/load.js';
import type { WindowConfig } from '../../config/schema.js';
import { windowSpan } from '../../config/stageSchema.js';
import { Pipeline } from '../../pipeline/pipeline.js';
import { CheckpointKeys } from '../../redis/checkpointKeys.js';
import { shardOfKey } from '../../routing/hash.js';
import { printable } from '../../sink/sink.js';
import { fieldOf } from '../../source/redisSource.js';
import type { Logger } from '../../util/log.js';
import { parseDeadLetter } from '../../inspect/deadLetters.js';
import { entriesFrom, fieldObject, fieldValue } from '../../inspect/streams.js';
import { inputFields, type TestCase } from './cases.js';
import type { Written, WrittenDeadLetter } from './compare.js';

export interface CaseRun {
  results: Written[];
  deadLetters: WrittenDeadLetter[];
  /** Inputs, flush events included. */
  entries: number;
}

const FLUSH_KEY = '__streamshard_test_flush_';
const POLL_MS = 25;

/** Runs `t` with `base` (the user's pipeline) on `redis` (at `url`); `timeoutMs` bounds each wait. */
export async function runCase(
  redis: Redis,
  url: string,
  base: PipelineConfig,
  t: TestCase,
  opts: { timeoutMs: number; logger?: Logger },
): Promise<CaseRun> {
  const ns = `streamshard-test:${randomBytes(6).toString('hex')}`;
  const config: PipelineConfig = {
    ...base,
    redis: { ...base.redis, url, keyPrefix: `${ns}:state` },
    source: {
      ...base.source,
      stream: `${ns}:in`,
      group: 'test',
      consumer: 'test',
      startId: '0',
      createGroup: true,
      trim: undefined,
      // A test case is one input in order: it runs as one partition (per-key results are the same).
      partitions: 1,
    },
    partition: { index: 0, from: 0, to: base.keyGroups, stream: `${ns}:in` },
    sink: { type: 'stream', stream: `${ns}:out` },
    deadLetter: { stream: `${ns}:dlq` },
  };
  let pipeline: Pipeline | null = null;
  try {
    let last = '';
    for (const [i, input] of t.input.entries()) {
      const fields = inputFields(input, config.key.field, config.body);
      try {
        last = String(await redis.xadd(config.source.stream, input.id ?? '*', ...fields));
      } catch (e) {
        throw new Error(`input[${i}] cannot be added: ${(e as Error).message}`, { cause: e });
      }
    }
    pipeline = Pipeline.fromConfig(config, {
      logger: opts.logger ?? pino({ level: 'silent' }),
      http: false,
    });
    const wait = waiter(pipeline, opts.timeoutMs);
    await started(pipeline, opts.timeoutMs);
    await wait('every input to be committed', () => committed(redis, config, last));
    let entries = t.input.length;
    const window = windowOf(config);
    if (window !== null) entries += await flush(redis, config, window, wait);
    await pipeline.stop();
    return { ...(await written(redis, config)), entries };
  } finally {
    await pipeline?.stop();
    await cleanUp(redis, ns, config);
  }
}

/** Starts the pipeline; fails when it fails or is not reading after `timeoutMs`. */
async function started(pipeline: Pipeline, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the pipeline did not start within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    await Promise.race([pipeline.start(), pipeline.failed, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

type Wait = (what: string, done: () => Promise<boolean>) => Promise<void>;

/** Polls `done` until true; fails when the pipeline fails or after `timeoutMs`. */
function waiter(pipeline: Pipeline, timeoutMs: number): Wait {
  const failure: { error: Error | null } = { error: null };
  pipeline.failed.catch((e: Error) => {
    failure.error = e;
  });
  return async (what, done) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (failure.error !== null) throw new Error(`the pipeline failed: ${failure.error.message}`);
      if (await done()) return;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  };
}

/** The group has delivered every entry up to `lastId` and has none pending: all are committed. */
async function committed(redis: Redis, c: PipelineConfig, lastId: string): Promise<boolean> {
  const groups = (await redis.xinfo('GROUPS', c.source.stream)) as unknown[];
  const g = groups.find((x) => String(fieldOf(x, 'name')) === c.source.group);
  return (
    g !== undefined &&
    Number(fieldOf(g, 'pending')) === 0 &&
    String(fieldOf(g, 'last-delivered-id')) === lastId
  );
}

function windowOf(c: PipelineConfig): WindowConfig | null {
  for (const s of c.stages) if ('window' in s) return s.window;
  return null;
}

/**
 * Step 3 of the module comment: one flush event per shard past every window the inputs opened, then
 * waits until they are committed and only their own windows are open. Returns the events added.
 */
async function flush(redis: Redis, c: PipelineConfig, w: WindowConfig, wait: Wait): Promise<number> {
  const keys = CheckpointKeys.of(c);
  const all = Array.from({ length: c.keyGroups }, (_, g) => g);
  const { streamTime } = await loadCheckpoint(redis, keys, all);
  if (streamTime === null) return 0; // no event was decoded: no window was opened
  // a sliding window's end is inclusive and its last one ends 1 ms + size after the last event: +2 passes it
  const at = streamTime + windowSpan(w) + w.grace + (w.type === 'sliding' ? 2 : 0);
  const skew = c.body.maxFutureSkew;
  if (skew > 0 && at > Date.now() + skew - 1000) {
    throw new Error(
      `cannot close the last windows: the inputs reach event time ${streamTime} (${new Date(streamTime).toISOString()}); ` +
        `closing every window needs an event at ${at}, more than body.maxFutureSkew (${skew} ms) ahead of now. ` +
        'Give the inputs times in the past (small epoch ms such as 1000 read well).',
    );
  }
  let last = '';
  for (let s = 0; s < c.shards; s++) {
    const body = flushBody(c, w, at, s);
    last = String(
      await redis.xadd(
        c.source.stream,
        '*',
        ...inputFields({ key: flushKey(c, s), body }, c.key.field, c.body),
      ),
    );
  }
  await wait('the flush events to be committed', () => committed(redis, c, last));
  await wait('every window to close', async () => {
    const { windows } = await loadCheckpoint(redis, keys, all);
    return windows.every((b) => b.fields.every((f, i) => i % 2 === 1 || isFlushKey(f)));
  });
  return c.shards;
}

/** A key routed to `shard`. */
function flushKey(c: PipelineConfig, shard: number): string {
  for (let i = 0; ; i++) {
    const key = `${FLUSH_KEY}${shard}_${i}`;
    if (shardOfKey(key, c.keyGroups, c.shards) === shard) return key;
  }
}

const isFlushKey = (k: string | Uint8Array): boolean =>
  (typeof k === 'string' ? k : Buffer.from(k).toString()).startsWith(FLUSH_KEY);

/** A body that decodes: the time at `at`, an ID, 0 for every aggregated field. */
function flushBody(c: PipelineConfig, w: WindowConfig, at: number, shard: number): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const set = (path: string, v: unknown) => {
    if (c.body.encoding === 'flat') {
      body[path] = v; // flat fields have no nesting
      return;
    }
    const parts = path.split('.');
    let o = body;
    for (const p of parts.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
    o[parts[parts.length - 1] as string] = v;
  };
  for (const a of w.aggregates) if (a.field !== undefined) set(a.field, 0);
  set(c.body.idPath, `${FLUSH_KEY}${shard}`);
  set(c.body.timePath, at);
  return body;
}

/** The output and dead-letter streams, without the flush events. */
async function written(redis: Redis, c: PipelineConfig): Promise<Omit<CaseRun, 'entries'>> {
  const results: Written[] = [];
  if (c.sink.type === 'stream') {
    for await (const e of entriesFrom(redis, c.sink.stream, '-')) {
      const key = fieldValue(e.fields, c.key.field);
      if (key !== undefined && isFlushKey(key)) continue;
      results.push(fieldObject(e.fields));
    }
  }
  const deadLetters: WrittenDeadLetter[] = [];
  for await (const e of entriesFrom(redis, c.deadLetter.stream, '-')) {
    const dl = parseDeadLetter(e, c.key.field);
    if (dl.key !== null && isFlushKey(dl.key)) continue;
    deadLetters.push({
      code: dl.code,
      key: dl.key === null ? null : printable(dl.key),
      message: dl.message,
      fields: fieldObject(dl.original ?? []),
    });
  }
  return { results, deadLetters };
}

/** Deletes every key the case made. */
async function cleanUp(redis: Redis, ns: string, c: PipelineConfig): Promise<void> {
  const keys = [c.source.stream, c.deadLetter.stream, ...(c.sink.type === 'stream' ? [c.sink.stream] : [])];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${ns}:state:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  if (keys.length > 0) await redis.unlink(...keys);
}
