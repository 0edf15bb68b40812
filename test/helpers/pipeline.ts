/**
 * Runs the real CLI (`dist/src/cli/main.js run`) as a child process against the test Redis, and reads
 * streams and consumer-group state back. Every child started here is tracked so that `stopAllPipelines()`
 * (call it in afterEach) kills whatever a failed test left running.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, onTestFailed } from 'vitest';
import { connect, redisUrl, uniqueName } from './redis.js';
import type { StreamEntry } from './reference.js';

export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
export const CLI = join(ROOT, 'dist/src/cli/main.js');

export interface RunningPipeline {
  metricsPort: number;
  /** Sends the signal and resolves with the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  /** SIGKILL, resolved once the process is gone. */
  kill9(): Promise<void>;
  /** stderr lines so far. */
  logs(): string[];
  exited: Promise<number | null>;
  /** True until the process has exited. */
  running(): boolean;
  pid: number;
}

const children = new Set<ChildProcess>();
const tempDirs: string[] = [];

function trackExit(child: ChildProcess): Promise<number | null> {
  return new Promise((resolveExit) => {
    if (child.exitCode !== null || child.signalCode !== null) resolveExit(child.exitCode);
    else child.once('exit', (code) => resolveExit(code));
  });
}

/**
 * Starts `run -c <tmp file>` and resolves once it has logged "ready" (or `until`, e.g. "standby" for an
 * instance that waits for another's lease).
 */
export async function startPipeline(
  configYaml: string,
  env: Record<string, string> = {},
  readyTimeoutMs = 30_000,
  until: 'ready' | 'standby' = 'ready',
): Promise<RunningPipeline> {
  const dir = mkdtempSync(join(tmpdir(), 'streamshard-test-'));
  tempDirs.push(dir);
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(file, configYaml);
  const child = spawn(process.execPath, [CLI, 'run', '-c', file], {
    env: { ...process.env, REDIS_URL: redisUrl(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const exited = trackExit(child).finally(() => children.delete(child));
  const lines: string[] = [];
  let partial = '';
  let onLine: ((line: string) => void) | undefined;
  child.stdout?.resume(); // results of a stdout sink are not read here; keep the pipe flowing
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      onLine?.(line);
    }
  });

  try {
    // a failing test shows what the pipeline said
    onTestFailed(() => {
      console.error(
        `--- pipeline pid ${child.pid}, last 40 stderr lines ---\n${lines.slice(-40).join('\n')}`,
      );
    });
  } catch {
    // not inside a test (e.g. beforeAll): nothing to hook into
  }

  const metricsPort = await new Promise<number>((resolveReady, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pipeline not ready after ${readyTimeoutMs} ms; stderr:\n${lines.join('\n')}`));
    }, readyTimeoutMs);
    const check = (line: string) => {
      const port = readyPort(line, until);
      if (port !== undefined) {
        clearTimeout(timer);
        resolveReady(port);
      }
    };
    onLine = check;
    for (const l of lines) check(l);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(
        new Error(`pipeline exited (code ${code}) before ready; stderr:\n${lines.join('\n')}${partial}`),
      );
    });
  });
  onLine = undefined;

  return {
    metricsPort,
    pid: child.pid as number,
    exited,
    logs: () => [...lines],
    running: () => child.exitCode === null && child.signalCode === null,
    stop: (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000) =>
      signalAndWait(child, exited, signal, timeoutMs),
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Sends `signal` and resolves with `exited`'s value; SIGKILL and an error when it takes over `timeoutMs`. */
async function signalAndWait<T>(
  child: ChildProcess,
  exited: Promise<T>,
  signal: NodeJS.Signals,
  timeoutMs: number,
): Promise<T> {
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => {
    timer = setTimeout(() => r('timeout'), timeoutMs);
  });
  const result = await Promise.race([exited, timeout]);
  clearTimeout(timer);
  if (result === 'timeout') {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`pipeline did not exit within ${timeoutMs} ms after ${signal}`);
  }
  return result;
}

function readyPort(line: string, msg: string): number | undefined {
  if (!line.includes(`"${msg}"`)) return undefined;
  try {
    const rec = JSON.parse(line) as { msg?: unknown; metricsPort?: unknown };
    return rec.msg === msg && typeof rec.metricsPort === 'number' ? rec.metricsPort : undefined;
  } catch {
    return undefined;
  }
}

/** Kills every pipeline still running and removes the temp config files. Call in afterEach. */
export async function stopAllPipelines(): Promise<void> {
  const running = [...children];
  await Promise.all(
    running.map(
      (c) =>
        new Promise<void>((r) => {
          if (c.exitCode !== null || c.signalCode !== null) return r();
          c.once('exit', () => r());
          c.kill('SIGKILL');
        }),
    ),
  );
  children.clear();
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Random names for one test: input stream, group, consumer, sink and dead-letter streams. */
export function testNames(prefix: string) {
  const base = uniqueName(prefix);
  return {
    input: `${base}:in`,
    group: `${base}:group`,
    consumer: `${base}:consumer`,
    sink: `${base}:out`,
    dlq: `${base}:dlq`,
    keyPrefix: `${base}:state`,
  };
}

/** The whole stream, read with XRANGE in chunks, fields as Buffers. */
export async function readStream(redis: Redis, key: string, chunk = 10_000): Promise<StreamEntry[]> {
  const out: StreamEntry[] = [];
  let start = '-';
  for (;;) {
    const rows = await redis.xrangeBuffer(key, start, '+', 'COUNT', chunk);
    for (const [id, fields] of rows) out.push({ id: id.toString(), fields });
    if (rows.length < chunk) return out;
    start = `(${(rows[rows.length - 1] as [Buffer, Buffer[]])[0].toString()}`;
  }
}

export interface GroupState {
  exists: boolean;
  pending: number;
  /** null when Redis cannot tell (then `caughtUp` compares IDs instead). */
  lag: number | null;
  entriesRead: number | null;
  /** Every entry of the stream has been delivered to the group. */
  caughtUp: boolean;
}

/** XINFO GROUPS for one group. */
export async function groupState(redis: Redis, stream: string, group: string): Promise<GroupState> {
  const none: GroupState = { exists: false, pending: 0, lag: null, entriesRead: null, caughtUp: false };
  let groups: unknown[];
  try {
    groups = (await redis.xinfo('GROUPS', stream)) as unknown[];
  } catch {
    return none; // no such stream
  }
  for (const g of groups) {
    const flat = g as unknown[];
    const rec: Record<string, unknown> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) rec[String(flat[i])] = flat[i + 1];
    if (rec.name !== group) continue;
    const info = (await redis.xinfo('STREAM', stream)) as unknown[];
    let lastGenerated = '';
    for (let i = 0; i + 1 < info.length; i += 2) {
      if (info[i] === 'last-generated-id') lastGenerated = String(info[i + 1]);
    }
    const lag = rec.lag === null || rec.lag === undefined ? null : Number(rec.lag);
    return {
      exists: true,
      pending: Number(rec.pending),
      lag,
      entriesRead: rec['entries-read'] === null ? null : Number(rec['entries-read']),
      caughtUp: lag === 0 || (lag === null && rec['last-delivered-id'] === lastGenerated),
    };
  }
  return none;
}

export interface DrainState {
  done: boolean;
  group: GroupState;
  lengths: Record<string, number>;
}

/**
 * Polls until the group has delivered and acked everything (pending 0, lag 0) and every output stream has
 * at least the given number of entries. Does not throw on timeout: returns the last state with
 * `done: false`, so that the test can go on to compare the whole output and show what is missing.
 */
export async function waitForDrain(
  redis: Redis,
  opts: { stream: string; group: string; outputs: Record<string, number>; timeoutMs?: number },
): Promise<DrainState> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    const group = await groupState(redis, opts.stream, opts.group);
    const lengths: Record<string, number> = {};
    for (const key of Object.keys(opts.outputs)) lengths[key] = await redis.xlen(key);
    const done =
      group.exists &&
      group.pending === 0 &&
      group.caughtUp &&
      Object.entries(opts.outputs).every(([k, n]) => (lengths[k] ?? 0) >= n);
    if (done || Date.now() > deadline) return { done, group, lengths };
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** GET on the pipeline's HTTP port: status and body. */
export async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

export type TestNames = ReturnType<typeof testNames>;

export interface ConfigOptions {
  shards?: number;
  stages?: unknown[];
  batchSize?: number;
  /** Merged over the generated config (top level). */
  extra?: Record<string, unknown>;
}

/** A pipeline config (JSON, which is YAML) for the test's streams; metrics on a free loopback port. */
export function pipelineConfig(n: TestNames, opts: ConfigOptions = {}): string {
  return JSON.stringify(
    {
      redis: { keyPrefix: n.keyPrefix },
      source: {
        stream: n.input,
        group: n.group,
        consumer: n.consumer,
        startId: '0',
        batchSize: opts.batchSize ?? 1000,
        block: '200ms',
      },
      shards: opts.shards ?? 2,
      stages: opts.stages ?? [],
      sink: { stream: n.sink },
      deadLetter: { stream: n.dlq },
      metrics: { port: 0, host: '127.0.0.1' },
      // A restarted instance waits for its killed predecessor's lease to lapse: keep that short here.
      lease: { ttl: '2s' },
      ...opts.extra,
    },
    null,
    2,
  );
}

/** The test file's client on the shared test Redis, set by `useTestHooks()` (an ES live binding). */
export let redis: Redis;

/**
 * The hooks every integration test file needs: one client for its tests (`redis`), and no pipeline
 * process left running after a test, whatever happened in it.
 */
export function useTestHooks(): void {
  beforeAll(async () => {
    redis = await connect();
  });
  afterEach(stopAllPipelines);
  afterAll(async () => {
    await redis.quit();
  });
}

/** A JSON log line of a pipeline, parsed. */
export type LogRecord = Record<string, unknown>;

/**
 * A `run` child started without waiting for anything: it may be the leader or a standby, it may be
 * killed and replaced. Unlike {@link startPipeline} it never assumes the process becomes ready.
 */
export interface PipelineProcess {
  pid: number;
  /** Resolves when the process has exited: its exit code, or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running(): boolean;
  /** The last `keepLines` stderr lines. */
  logs(): string[];
  /** The last JSON log record whose msg is one of `msgs`, or undefined. */
  lastOf(msgs: readonly string[]): LogRecord | undefined;
  /** How many log records with a msg were seen so far: pass it to {@link waitForMsg} as `since`. */
  mark(): number;
  /** The HTTP port from the first log line that names one (`metricsPort`), if any yet. */
  metricsPort(): number | undefined;
  /**
   * Resolves with the first log record (the `since`-th or later, whether logged before or after the call)
   * whose msg is one of `msgs`. Rejects when the process exits first or after `timeoutMs`.
   */
  waitForMsg(msgs: readonly string[], timeoutMs: number, since?: number): Promise<LogRecord>;
  /** SIGKILL, resolved once the process is gone. */
  kill9(): Promise<void>;
  /** Sends `signal`, waits up to `timeoutMs` (then SIGKILL); resolves with the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

/**
 * Starts `run -c <tmp file>` with `env` (REDIS_URL defaults to the test Redis) and returns at once.
 * The child is tracked like {@link startPipeline}'s, so `stopAllPipelines()` kills it. Every stderr line
 * is also appended to `logFile` when given.
 */
export function spawnPipeline(
  configYaml: string,
  opts: { env?: Record<string, string>; logFile?: string; keepLines?: number } = {},
): PipelineProcess {
  const dir = mkdtempSync(join(tmpdir(), 'streamshard-test-'));
  tempDirs.push(dir);
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(file, configYaml);
  const child = spawn(process.execPath, [CLI, 'run', '-c', file], {
    env: { ...process.env, REDIS_URL: opts.env?.REDIS_URL ?? redisUrl(), ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolveExit({ code: child.exitCode, signal: child.signalCode });
    } else child.once('exit', (code, signal) => resolveExit({ code, signal }));
  }).finally(() => children.delete(child));
  const keep = opts.keepLines ?? 400;
  const lines: string[] = [];
  /** Parsed log records that carry a msg (bounded; a pipeline logs a few lines per state change). */
  const seen: Array<{ n: number; rec: LogRecord }> = [];
  let count = 0;
  const log = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : null;
  void exited.then(() => log?.end());
  const listeners = new Set<(rec: LogRecord) => void>();
  let port: number | undefined;
  let partial = '';
  child.stdout?.resume();
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    log?.write(chunk);
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      if (lines.length > keep) lines.shift();
      let rec: LogRecord;
      try {
        rec = JSON.parse(line) as LogRecord;
      } catch {
        continue;
      }
      if (typeof rec !== 'object' || rec === null) continue;
      if (port === undefined && typeof rec.metricsPort === 'number') port = rec.metricsPort;
      if (typeof rec.msg !== 'string') continue;
      seen.push({ n: count++, rec });
      if (seen.length > 10_000) seen.shift();
      for (const l of listeners) l(rec);
    }
  });
  const isMsg = (rec: LogRecord, msgs: readonly string[]) =>
    typeof rec.msg === 'string' && msgs.includes(rec.msg);
  return {
    pid: child.pid as number,
    exited,
    running: () => child.exitCode === null && child.signalCode === null,
    logs: () => [...lines, ...(partial ? [partial] : [])],
    lastOf: (msgs) => seen.findLast((s) => isMsg(s.rec, msgs))?.rec,
    mark: () => count,
    metricsPort: () => port,
    waitForMsg(msgs, timeoutMs, since = 0) {
      const already = seen.find((s) => s.n >= since && isMsg(s.rec, msgs));
      if (already) return Promise.resolve(already.rec);
      return new Promise<LogRecord>((resolveMsg, reject) => {
        const done = () => {
          clearTimeout(timer);
          listeners.delete(onRec);
        };
        const onRec = (rec: LogRecord) => {
          if (!isMsg(rec, msgs)) return;
          done();
          resolveMsg(rec);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no log line with msg ${msgs.join('|')} after ${timeoutMs} ms`));
        }, timeoutMs);
        listeners.add(onRec);
        void exited.then(({ code, signal }) => {
          if (!listeners.has(onRec)) return;
          done();
          reject(new Error(`exited (${signal ?? `code ${code}`}) before logging ${msgs.join('|')}`));
        });
      });
    },
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000) {
      return (await signalAndWait(child, exited, signal, timeoutMs)).code;
    },
  };
}
