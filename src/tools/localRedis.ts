/**
 * A private, throw-away `redis-server` for the demo, the tests and the benchmarks: a free loopback port,
 * its own temporary directory, no RDB snapshots, and a child process that dies with its parent.
 *
 * Production never uses this; it connects to the Redis named by the pipeline file.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { constants as fsConstants, rmSync } from 'node:fs';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { sleep } from '../util/backoff.js';

const execFileAsync = promisify(execFile);

/** A running private Redis. */
export interface LocalRedis {
  /** `redis://127.0.0.1:<port>`. */
  url: string;
  port: number;
  /** The TLS port, when started with {@link LocalRedisOptions.tls}. */
  tlsPort?: number;
  /** Its working directory (AOF files, `redis.log`); removed by {@link LocalRedis.stop}. */
  dir: string;
  /** SIGTERM, wait for exit (SIGKILL after 5 s), remove {@link LocalRedis.dir}. Safe to call twice. */
  stop(): Promise<void>;
  /**
   * Stops the server (SIGTERM: it writes its AOF), waits `downMs` (default 0), and starts it again on the
   * same port and directory.
   */
  restart(downMs?: number): Promise<void>;
}

export interface LocalRedisOptions {
  /**
   * Turn on the append-only file with `appendfsync always`, for tests that restart Redis and expect
   * nothing acknowledged to be lost. @defaultValue false
   */
  appendOnly?: boolean;
  /** Where progress messages go (the install, the chosen port). @defaultValue silent */
  log?: (msg: string) => void;
  /**
   * Also listen for TLS on a second free port ({@link LocalRedis.tlsPort}) with this PEM certificate and
   * key; clients are not asked for certificates. The plain port stays open for set-up and polling.
   */
  tls?: { certFile: string; keyFile: string };
}

/** What to tell a user who has no Redis. */
const INSTALL_HINT =
  'install Redis ≥ 6.2: `sudo apt-get install redis-server`, or set REDIS_URL to an existing server';

/** Oldest server the engine supports (XAUTOCLAIM, XADD … LIMIT). */
const MIN_VERSION: readonly [number, number] = [6, 2];

const START_TIMEOUT_MS = 10_000;
const POLL_MS = 25;
const STOP_GRACE_MS = 5_000;
const PORT_ATTEMPTS = 5;

const noop = (): void => {};

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function findOnPath(name: string): Promise<string | undefined> {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '');
  for (const dir of [...dirs, '/usr/bin', '/usr/sbin', '/usr/local/bin']) {
    const candidate = join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Runs a command with inherited stderr; rejects with its exit code. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? code})`)),
    );
  });
}

async function installWithApt(log: (msg: string) => void): Promise<void> {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  log('redis-server not found; installing it with apt-get (apt-get update && apt-get install redis-server)');
  await run('apt-get', ['update', '-qq'], env);
  await run('apt-get', ['install', '-y', '-qq', 'redis-server'], env);
  log('redis-server installed');
}

async function checkVersion(bin: string): Promise<void> {
  const { stdout } = await execFileAsync(bin, ['--version']);
  const m = /v=(\d+)\.(\d+)/.exec(stdout);
  if (!m) return; // unknown format: let the server speak for itself
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major < MIN_VERSION[0] || (major === MIN_VERSION[0] && minor < MIN_VERSION[1])) {
    throw new Error(`${bin} is version ${major}.${minor}, too old; ${INSTALL_HINT}`);
  }
}

/**
 * Finds `redis-server` on PATH (or in /usr/bin, /usr/sbin, /usr/local/bin). If it is missing and we run
 * as root on Debian/Ubuntu (apt-get exists), installs the `redis-server` package non-interactively,
 * logging what it does; otherwise throws an Error that says what to install.
 *
 * @returns the absolute path of the binary
 * @throws Error when no usable (≥ 6.2) redis-server is available
 */
export async function ensureRedisServer(log: (msg: string) => void = noop): Promise<string> {
  let bin = await findOnPath('redis-server');
  if (!bin) {
    const isRoot = process.getuid?.() === 0;
    const apt = await findOnPath('apt-get');
    if (!isRoot || !apt) throw new Error(`redis-server not found; ${INSTALL_HINT}`);
    try {
      await installWithApt(log);
    } catch (err) {
      throw new Error(`installing redis-server failed (${(err as Error).message}); ${INSTALL_HINT}`, {
        cause: err,
      });
    }
    bin = await findOnPath('redis-server');
    if (!bin) throw new Error(`redis-server still not found after apt-get install; ${INSTALL_HINT}`);
  }
  await checkVersion(bin);
  return bin;
}

/** A port the kernel just handed out on 127.0.0.1; free unless someone races us (then we retry). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not read the chosen port'))));
    });
  });
}

/** One raw `PING`: resolves true on `+PONG`, false on any error. No client library needed. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

async function tail(file: string, lines = 15): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Resolves when the child exits (immediately if it already has). */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

type Attempt = { ok: true; child: ChildProcess } | { ok: false; portInUse: boolean; reason: string };

interface StartSpec {
  bin: string;
  port: number;
  dir: string;
  appendOnly: boolean;
  tls?: { port: number; certFile: string; keyFile: string };
}

function tlsArgs(tls: StartSpec['tls']): string[] {
  if (!tls) return [];
  return [
    '--tls-port',
    String(tls.port),
    '--tls-cert-file',
    tls.certFile,
    '--tls-key-file',
    tls.keyFile,
    '--tls-ca-cert-file',
    tls.certFile,
    '--tls-auth-clients',
    'no',
  ];
}

async function tryStart(spec: StartSpec): Promise<Attempt> {
  const { bin, port, dir, appendOnly } = spec;
  const logFile = join(dir, 'redis.log');
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    appendOnly ? 'yes' : 'no',
    ...(appendOnly ? ['--appendfsync', 'always'] : []),
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--protected-mode',
    'no',
    '--logfile',
    logFile,
    ...tlsArgs(spec.tls),
  ];
  const child = spawn(bin, args, { stdio: 'ignore' });
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (spawnError) return { ok: false, portInUse: false, reason: spawnError.message };
    if (child.exitCode !== null || child.signalCode !== null) {
      const log = await tail(logFile);
      return { ok: false, portInUse: /address already in use/i.test(log), reason: log };
    }
    if (await ping(port)) return { ok: true, child };
    await sleep(POLL_MS);
  }
  child.kill('SIGKILL');
  await exited(child);
  return {
    ok: false,
    portInUse: false,
    reason: `no PONG within ${START_TIMEOUT_MS} ms\n${await tail(logFile)}`,
  };
}

/**
 * Starts a private redis-server on a free 127.0.0.1 port in a fresh temporary directory and waits until
 * it answers PING. The child is killed (and its directory removed) when this process exits, even if
 * {@link LocalRedis.stop} is never called, and it does not keep the event loop alive on its own.
 * A parent killed by a signal it does not handle emits no 'exit' event; a terminal's Ctrl-C still
 * reaches the server, which shares the parent's process group.
 *
 * @throws Error when redis-server is missing (see {@link ensureRedisServer}) or does not come up in 10 s
 */
export async function startLocalRedis(opts: LocalRedisOptions = {}): Promise<LocalRedis> {
  const log = opts.log ?? noop;
  const bin = await ensureRedisServer(log);
  const dir = await mkdtemp(join(tmpdir(), 'streamshard-redis-'));
  let lastReason = '';
  for (let attempt = 1; attempt <= PORT_ATTEMPTS; attempt++) {
    const port = await freePort();
    const tls = opts.tls && { port: await freePort(), ...opts.tls };
    const spec: StartSpec = { bin, port, dir, appendOnly: opts.appendOnly ?? false, tls };
    const res = await tryStart(spec);
    if (res.ok) {
      const tlsNote = tls ? `, TLS on ${tls.port}` : '';
      log(`redis-server listening on 127.0.0.1:${port}${tlsNote} (dir ${dir})`);
      return running(res.child, spec);
    }
    lastReason = res.reason;
    if (!res.portInUse) break;
    log(`a port was taken before redis-server bound it; retrying`);
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`redis-server did not start:\n${lastReason}`);
}

function running(first: ChildProcess, spec: StartSpec): LocalRedis {
  const { port, dir } = spec;
  let child = first;
  // 'exit' handlers must be synchronous: SIGKILL and a best-effort rmSync are all we can still do there.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // the server may still be closing its files; a leftover temp dir is harmless
    }
  };
  process.once('exit', killOnExit);
  child.unref();
  const terminate = async (): Promise<void> => {
    const done = exited(child);
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await done;
    clearTimeout(timer);
  };
  let stopping: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    await terminate();
    process.removeListener('exit', killOnExit);
    await rm(dir, { recursive: true, force: true });
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    tlsPort: spec.tls?.port,
    dir,
    stop: () => {
      stopping ??= stop();
      return stopping;
    },
    restart: async (downMs = 0) => {
      await terminate();
      if (downMs > 0) await sleep(downMs);
      const res = await tryStart(spec);
      if (!res.ok) throw new Error(`redis-server did not restart on port ${port}:\n${res.reason}`);
      child = res.child;
      child.unref();
    },
  };
}
