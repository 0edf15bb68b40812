/**
 * `streamshard produce`: write synthetic events (see {@link generateEvents}) to a stream, for demos,
 * load tests and reproducing bugs from a seed.
 */
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { Redis } from 'ioredis';
import { DEFAULT_PARTITION_TEMPLATE } from '../partition/partitionOf.js';
import { redactUrl } from '../redis/url.js';
import type { EventKind } from '../tools/produce/generator.js';
import { type ProduceOptions, produce } from '../tools/produce/producer.js';

/** Exit code for bad command-line values (usage errors). */
const EXIT_USAGE = 2;
/** Exit code for runtime failures (Redis unreachable, write rejected). */
const EXIT_FAILURE = 1;

const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
const ENCODINGS = ['msgpack', 'json', 'flat'] as const;
const METHODS = ['script', 'pipeline'] as const;

/** Raw option values as commander hands them over: strings, or undefined when not given. */
interface RawOptions {
  redis: string;
  stream?: string;
  count: string;
  keys: string;
  rate: string;
  duplicates: string;
  outOfOrder: string;
  malformed: string;
  hostile: string;
  seed: string;
  encoding: string;
  startTs?: string;
  interval: string;
  oooMax: string;
  keyField: string;
  bodyField: string;
  maxlen?: string;
  method: string;
  partitions: string;
  keyGroups: string;
  partitionStream: string;
}

class UsageError extends Error {}

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function parseNumber(flag: string, raw: string, kind: 'int' | 'number', min: number, max?: number): number {
  const value = (kind === 'int' ? INTEGER : DECIMAL).test(raw.trim()) ? Number(raw) : Number.NaN;
  const ok = Number.isFinite(value) && value >= min && (max === undefined || value <= max);
  if (ok && (kind === 'number' || Number.isSafeInteger(value))) return value;
  const what =
    max !== undefined
      ? `a number from ${min} to ${max}`
      : kind === 'int'
        ? min === 1
          ? 'a positive integer'
          : min === 0
            ? 'a non-negative integer'
            : 'an integer'
        : min === 0
          ? 'a non-negative number'
          : `a number ≥ ${min}`;
  throw new UsageError(`${flag}: expected ${what}, got ${JSON.stringify(raw)}`);
}

function nonEmpty(flag: string, raw: string | undefined): string {
  if (raw === undefined || raw === '') throw new UsageError(`${flag}: expected a non-empty name`);
  return raw;
}

/** Turns raw strings into producer options; throws {@link UsageError} naming the flag. */
function parseOptions(raw: RawOptions): { url: string; stream: string; opts: ProduceOptions } {
  if (!/^rediss?:\/\//.test(raw.redis)) {
    throw new UsageError(`--redis: expected a URL starting with redis:// or rediss://, got "${raw.redis}"`);
  }
  if (raw.stream === undefined) throw new UsageError('--stream: required (the stream key to write to)');
  const encoding = ENCODINGS.find((e) => e === raw.encoding);
  if (!encoding) {
    throw new UsageError(`--encoding: expected one of ${ENCODINGS.join(', ')}, got "${raw.encoding}"`);
  }
  const method = METHODS.find((m) => m === raw.method);
  if (!method) throw new UsageError(`--method: expected one of ${METHODS.join(', ')}, got "${raw.method}"`);
  const opts: ProduceOptions = {
    method,
    count: parseNumber('--count', raw.count, 'int', 1),
    keys: parseNumber('--keys', raw.keys, 'int', 1),
    rate: parseNumber('--rate', raw.rate, 'number', 0),
    duplicatePct: parseNumber('--duplicates', raw.duplicates, 'number', 0, 100),
    outOfOrderPct: parseNumber('--out-of-order', raw.outOfOrder, 'number', 0, 100),
    malformedPct: parseNumber('--malformed', raw.malformed, 'number', 0, 100),
    hostilePct: parseNumber('--hostile', raw.hostile, 'number', 0, 100),
    seed: parseNumber('--seed', raw.seed, 'int', -(2 ** 31)),
    encoding,
    startTs: raw.startTs === undefined ? Date.now() : parseNumber('--start-ts', raw.startTs, 'int', 0),
    intervalMs: parseNumber('--interval', raw.interval, 'number', 0),
    outOfOrderMaxMs: parseNumber('--ooo-max', raw.oooMax, 'int', 1),
    keyField: nonEmpty('--key-field', raw.keyField),
    bodyField: nonEmpty('--body-field', raw.bodyField),
  };
  if (raw.maxlen !== undefined) opts.maxLen = parseNumber('--maxlen', raw.maxlen, 'int', 1);
  const keyGroups = parseNumber('--key-groups', raw.keyGroups, 'int', 1, 65_536);
  const partitions = parseNumber('--partitions', raw.partitions, 'int', 1, Math.min(1024, keyGroups));
  if (!raw.partitionStream.includes('{p}'))
    throw new UsageError(`--partition-stream: must contain {p}, got "${raw.partitionStream}"`);
  if (partitions > 1) opts.partitions = { count: partitions, keyGroups, template: raw.partitionStream };
  const pct = opts.duplicatePct + opts.outOfOrderPct + opts.malformedPct + (opts.hostilePct ?? 0);
  if (pct > 100) {
    throw new UsageError(
      `--duplicates + --out-of-order + --malformed + --hostile: expected at most 100 in total, got ${pct}`,
    );
  }
  return { url: raw.redis, stream: nonEmpty('--stream', raw.stream), opts };
}

/** A progress bar on a TTY; otherwise a log line every 10 %. */
function progressReporter(total: number): { update(done: number): void; stop(): void } {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: 'produce [{bar}] {percentage}% | {value}/{total} | {eta_formatted} left', hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    return { update: (done) => bar.update(done), stop: () => bar.stop() };
  }
  let nextPct = 10;
  return {
    update: (done) => {
      const pct = Math.floor((done / total) * 100);
      if (pct < nextPct) return;
      process.stderr.write(`produce: ${done}/${total} (${pct}%)\n`);
      nextPct = Math.floor(pct / 10) * 10 + 10;
    },
    stop: () => {},
  };
}

function summary(
  /** `"orders"`, or `8 partitions of "orders"`. */
  target: string,
  produced: number,
  seconds: number,
  byKind: Record<EventKind, number>,
): string {
  const rate = seconds > 0 ? Math.round(produced / seconds) : produced;
  const kinds = (Object.keys(byKind) as EventKind[]).map((k) => `${k} ${byKind[k]}`).join(', ');
  return `produced ${produced} events to ${target} in ${seconds.toFixed(2)} s = ${rate} events/s (${kinds})`;
}

async function connect(url: string): Promise<Redis> {
  let lastError: Error | undefined;
  const redis = new Redis(url, {
    protocol: 2,
    enableAutoPipelining: false,
    lazyConnect: true,
    retryStrategy: () => null, // a one-shot tool: fail fast, say why
    maxRetriesPerRequest: 0,
  });
  redis.on('error', (err: Error) => {
    lastError = err;
  });
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new Error(
      `cannot connect to Redis at ${redactUrl(url)}: ${(lastError ?? (err as Error)).message}`,
      {
        cause: err,
      },
    );
  }
  return redis;
}

async function run(raw: RawOptions, cmd: Command): Promise<void> {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(raw);
  } catch (err) {
    if (err instanceof UsageError)
      cmd.error(err.message, { exitCode: EXIT_USAGE, code: 'streamshard.usage' });
    throw err;
  }
  const { url, stream, opts } = parsed;
  let redis: Redis | undefined;
  const progress = progressReporter(opts.count);
  try {
    redis = await connect(url);
    const res = await produce(redis, stream, opts, (done) => progress.update(done));
    progress.stop();
    const to =
      opts.partitions === undefined ? `"${stream}"` : `${opts.partitions.count} partitions of "${stream}"`;
    process.stdout.write(`${summary(to, res.produced, res.seconds, res.byKind)}\n`);
  } catch (err) {
    progress.stop();
    cmd.error(`produce: ${(err as Error).message}`, { exitCode: EXIT_FAILURE, code: 'streamshard.produce' });
  } finally {
    await redis?.quit().catch(() => redis?.disconnect());
  }
}

/** Adds the `produce` command to `program`. */
export function registerProduce(program: Command): void {
  program
    .command('produce')
    .description('Write deterministic synthetic events to a stream (demo, load test, bug reproduction).')
    .option('--redis <url>', 'Redis URL', process.env.REDIS_URL ?? DEFAULT_REDIS_URL)
    .option('--stream <name>', 'stream key to write to (required)')
    .option('--count <n>', 'entries to write, duplicates and malformed ones included', '100000')
    .option('--keys <n>', 'distinct keys k0…k<n-1>', '1000')
    .option('--rate <n>', 'events per second, 0 = as fast as possible', '0')
    .option('--duplicates <pct>', 'percent of entries that re-send an earlier event', '0')
    .option('--out-of-order <pct>', 'percent of events with a timestamp moved into the past', '0')
    .option('--malformed <pct>', 'percent of entries that are malformed (cycling through 6 kinds)', '0')
    .option(
      '--hostile <pct>',
      'percent of hostile entries: future-stamped, hex amount, 3,500 extra field pairs, non-UTF-8 key (in turn)',
      '0',
    )
    .option('--seed <n>', 'PRNG seed; the same seed gives the same events', '1')
    .option('--encoding <kind>', `body encoding: ${ENCODINGS.join(' | ')}`, 'msgpack')
    .option('--start-ts <ms>', 'event time of the first event, epoch ms (default: now)')
    .option('--interval <ms>', 'event time step per entry, may be fractional', '1')
    .option('--ooo-max <ms>', 'an out-of-order event is 1..this ms early', '5000')
    .option('--key-field <name>', 'stream field holding the key', 'key')
    .option('--body-field <name>', 'stream field holding the body (msgpack, json)', 'data')
    .option('--maxlen <n>', 'cap the stream at about n entries (XADD MAXLEN ~ n)')
    .option('--method <how>', `how chunks are written: ${METHODS.join(' | ')} (pipelined XADD)`, 'script')
    .option('--partitions <n>', "write each event to its key's partition stream (source.partitions)", '1')
    .option('--key-groups <n>', "the pipeline's keyGroups (the partition function uses it)", '256')
    .option(
      '--partition-stream <template>',
      "partition p's stream key: {stream} and {p} replaced (source.partitionStream)",
      DEFAULT_PARTITION_TEMPLATE,
    )
    .action((raw: RawOptions, cmd: Command) => run(raw, cmd));
}
