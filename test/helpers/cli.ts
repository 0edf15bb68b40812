/**
 * Runs a CLI command (`dist/src/cli/main.js`) as a child process: to its end ({@link runCli}), or in the
 * background with its output collected ({@link spawnCli}, for `tap` and `status --watch`). Background
 * children are killed by `stopCliChildren()` (call it in afterEach).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './pipeline.js';
import { redisUrl } from './redis.js';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The test environment: REDIS_URL is the test Redis, LOG_LEVEL unset; `env` on top. */
function childEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  return { ...process.env, REDIS_URL: redisUrl(), LOG_LEVEL: undefined, ...env };
}

export function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  timeoutMs = 60_000,
): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: childEnv(env), timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export interface CliChild {
  /** stdout lines so far (complete lines only). */
  lines(): string[];
  stderr(): string;
  /** Resolves with the first `n` stdout lines once they are there; rejects when the child exits first. */
  waitForLines(n: number, timeoutMs?: number): Promise<string[]>;
  /** Resolves once stderr contains `text`. */
  waitForStderr(text: string, timeoutMs?: number): Promise<void>;
  signal(sig: NodeJS.Signals): void;
  exited: Promise<number | null>;
}

const children = new Set<ChildProcess>();

export function spawnCli(args: string[], env: Record<string, string | undefined> = {}): CliChild {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code))).finally(
    () => children.delete(child),
  );
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stdout?.on('data', (c: string) => {
    out += c;
    for (const l of listeners) l();
  });
  child.stderr?.on('data', (c: string) => {
    err += c;
    for (const l of listeners) l();
  });
  const lines = () => out.split('\n').slice(0, -1);
  const until = (what: string, ok: () => boolean, timeoutMs: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (!ok()) return;
        done();
        resolve();
      };
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${what} after ${timeoutMs} ms; stdout:\n${out}\nstderr:\n${err}`));
      }, timeoutMs);
      listeners.add(check);
      void exited.then((code) => {
        if (!listeners.has(check)) return;
        done();
        if (ok()) resolve();
        else reject(new Error(`exited (code ${code}) before ${what}; stdout:\n${out}\nstderr:\n${err}`));
      });
      check();
    });
  return {
    lines,
    stderr: () => err,
    async waitForLines(n, timeoutMs = 30_000) {
      await until(`${n} stdout lines`, () => lines().length >= n, timeoutMs);
      return lines().slice(0, n);
    },
    waitForStderr: (text, timeoutMs = 30_000) =>
      until(`"${text}" on stderr`, () => err.includes(text), timeoutMs),
    signal: (sig) => child.kill(sig),
    exited,
  };
}

/** Kills every background CLI child still running. */
export async function stopCliChildren(): Promise<void> {
  await Promise.all(
    [...children].map(
      (c) =>
        new Promise<void>((r) => {
          if (c.exitCode !== null || c.signalCode !== null) return r();
          c.once('exit', () => r());
          c.kill('SIGKILL');
        }),
    ),
  );
}

/** A temporary directory for pipeline and tests files, removed by the returned function. */
export function tempFiles(prefix: string): { write(name: string, text: string): string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `streamshard-${prefix}-`));
  return {
    write(name, text) {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
