/**
 * Starts a contender as a child process — a script of bench/contenders/ or `streamshard run` with
 * bench/streamshard.yaml — so that every contender's memory and CPU are measured the same way (/proc of
 * its pid), and tells when it is ready: contender scripts print `{"event":"ready","t":…}` on stdout just
 * before their first read; streamshard logs `"msg":"ready"` (with its metrics port) on stderr once it
 * reads. A script's `{"event":"result",…}` line is kept for the caller.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs as dist/bench/lib/contender.js). */
export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

export type ContenderKind = 'raw' | 'rawWrite' | 'tutorial' | 'single' | 'streamshard';

export interface ContenderSpec {
  /** Unique label: `raw`, `tutorial`, `single`, `streamshard-2`… */
  name: string;
  kind: ContenderKind;
  /** streamshard only. */
  shards?: number;
  /** streamshard only: the pipeline file (default bench/streamshard.yaml), relative to the repository root. */
  config?: string;
  /** Node options before the script (`--cpu-prof`…; NODE_OPTIONS refuses some of them). */
  nodeArgs?: string[];
  /** More environment for the child, set last (the scale bench's PARTITIONS, CONSUMER, RESULTS_PER_EVENT…). */
  env?: Record<string, string>;
}

export interface RunOptions {
  url: string;
  stream: string;
  group: string;
  /** `drain`: read until the stream (or `limit`) is exhausted, then idle; `live`: read until SIGTERM. */
  mode: 'drain' | 'live';
  /** Entries to read in drain mode; 0 = all. */
  limit: number;
  /** Live mode: latencies of entries written in the first `warmupMs` after the first one are not counted. */
  warmupMs: number;
  windowMs: number;
  graceMs: number;
  /** Output and dead-letter streams of this run. */
  out: string;
  dlq: string;
  /** streamshard: `commit.maxDelay` in ms. */
  commitMaxDelayMs: number;
}

export interface Running {
  spec: ContenderSpec;
  child: ChildProcess;
  pid: number;
  /** Epoch ms the contender says it started reading. */
  readyAt: number;
  metricsPort: number | null;
  /** The contender script's result line, once printed. */
  result: Record<string, unknown> | null;
  /** The last error a streamshard child logged (`error` or `fatal`), for the message when it exits early. */
  lastError: string | null;
  /** SIGTERM, then SIGKILL after 30 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** The log levels a child's stderr line is shown for. */
const WARN_OR_WORSE = new Set(['warn', 'error', 'fatal']);

function childEnv(spec: ContenderSpec, o: RunOptions): NodeJS.ProcessEnv {
  return { ...baseEnv(spec, o), ...spec.env };
}

function baseEnv(spec: ContenderSpec, o: RunOptions): NodeJS.ProcessEnv {
  const common = { ...process.env, REDIS_URL: o.url };
  if (spec.kind !== 'streamshard') {
    return {
      ...common,
      STREAM: o.stream,
      GROUP: o.group,
      MODE: o.mode,
      LIMIT: String(o.limit),
      WARMUP_MS: String(o.warmupMs),
      WINDOW_MS: String(o.windowMs),
      GRACE_MS: String(o.graceMs),
      OUT_STREAM: o.out,
    };
  }
  return {
    ...common,
    SOURCE_STREAM: o.stream,
    GROUP: o.group,
    SINK_STREAM: o.out,
    DLQ_STREAM: o.dlq,
    SHARDS: String(spec.shards ?? 2),
    WINDOW_SIZE: String(o.windowMs),
    GRACE: String(o.graceMs),
    COMMIT_MAX_DELAY: String(o.commitMaxDelayMs),
    LOG_LEVEL: 'info',
  };
}

export function start(spec: ContenderSpec, o: RunOptions, log: (line: string) => void): Promise<Running> {
  const args =
    spec.kind === 'streamshard'
      ? [join(ROOT, 'dist/src/cli/main.js'), 'run', '-c', join(ROOT, spec.config ?? 'bench/streamshard.yaml')]
      : [join(ROOT, `dist/bench/contenders/${spec.kind}.js`)];
  const child = spawn(process.execPath, [...(spec.nodeArgs ?? []), ...args], {
    env: childEnv(spec, o),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // 'close', not 'exit': it comes after the child's stdout has been read to the end (its result line).
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const tail: string[] = [];
  let running: Running | null = null;

  return new Promise<Running>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${spec.name} was not ready within 60 s`));
    }, 60_000);
    const ready = (readyAt: number, metricsPort: number | null): void => {
      if (running !== null) return;
      clearTimeout(timer);
      running = {
        spec,
        child,
        pid: child.pid as number,
        readyAt,
        metricsPort,
        result: null,
        lastError: null,
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
          const code = await exited;
          clearTimeout(timer);
          return code;
        },
      };
      resolve(running);
    };
    const onLine = (line: string, fromStderr: boolean): void => {
      let msg: Record<string, unknown> | null = null;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        // not JSON: a stack trace or a warning
      }
      if (msg === null) {
        tail.push(line);
        if (tail.length > 20) tail.shift();
        log(`  [${spec.name}] ${line}`);
      } else if (msg.event === 'ready') ready(Number(msg.t), null);
      else if (msg.event === 'result') {
        if (running !== null) running.result = msg;
      } else if (msg.msg === 'ready') ready(Number(msg.time), Number(msg.metricsPort));
      else if (fromStderr && WARN_OR_WORSE.has(String(msg.level))) {
        log(`  [${spec.name}] ${line}`);
        if (msg.level !== 'warn' && running !== null) running.lastError = `${msg.msg}: ${msg.err}`;
      }
    };
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => onLine(l, false));
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (l) => onLine(l, true));
    void exited.then((code) => {
      clearTimeout(timer);
      if (running === null)
        reject(new Error(`${spec.name} exited with ${code} before ready:\n${tail.join('\n')}`));
    });
    child.once('error', reject);
  });
}

/** Waits (up to `ms`) until the script's result line has arrived, then returns it. */
export async function resultOf(r: Running, ms = 5000): Promise<Record<string, unknown> | null> {
  const until = Date.now() + ms;
  while (r.result === null && Date.now() < until && r.child.exitCode === null) {
    await new Promise((res) => setTimeout(res, 20));
  }
  return r.result;
}
