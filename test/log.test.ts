/**
 * Logs: level names, the pipeline's name on every line, the pretty format and how it is chosen — the
 * formatter as a function, and the real CLI on a pipe, on a terminal (a pty from `script`), and with a
 * bad LOG_FORMAT. The CLI runs are start-ups that give up on a closed port: they log a warning per
 * attempt, an error and a last info line, and exit 1 by themselves.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseLogFormat } from '../src/util/log.js';
import { formatRecord } from '../src/util/prettyLog.js';
import { CLI } from './helpers/pipeline.js';

describe('pretty format', () => {
  const t = new Date(2026, 0, 2, 3, 4, 5, 67).getTime();

  it('writes time, level, name, message and the other fields as key=value', () => {
    const json = JSON.stringify({
      level: 'info',
      time: t,
      pid: 1,
      hostname: 'h',
      name: 'orders',
      shards: 2,
      consumer: 'c-1',
      note: 'two words',
      quoted: 'a"b',
      empty: '',
      nested: { a: [1, 2] },
      none: null,
      msg: 'ready',
    });
    expect(formatRecord(`${json}\n`)).toBe(
      '03:04:05.067 INFO  orders: ready shards=2 consumer=c-1 note="two words" quoted="a\\"b" empty="" ' +
        'nested={"a":[1,2]} none=null\n',
    );
  });

  it('shows an error by its message, with the stack from level error up', () => {
    const err = {
      type: 'Error',
      message: 'boom',
      stack: 'Error: boom\n    at f (x.js:1:1)\n    at g (y.js:2:2)',
    };
    const warn = formatRecord(JSON.stringify({ level: 'warn', time: t, name: 'p', err, msg: 'retrying' }));
    expect(warn).toBe('03:04:05.067 WARN  p: retrying err=boom\n');
    const error = formatRecord(JSON.stringify({ level: 'error', time: t, name: 'p', err, msg: 'failed' }));
    expect(error).toBe('03:04:05.067 ERROR p: failed err=boom\n    at f (x.js:1:1)\n    at g (y.js:2:2)\n');
  });

  it('colours the level and dims time and keys only when asked', () => {
    const rec = JSON.stringify({ level: 'error', time: t, name: 'p', n: 1, msg: 'm' });
    expect(formatRecord(rec, false)).not.toContain('\x1b[');
    expect(formatRecord(rec, true)).toBe(
      '\x1b[2m03:04:05.067\x1b[0m \x1b[31mERROR\x1b[0m p: m \x1b[2mn=\x1b[0m1\n',
    );
  });

  it('passes a line that is not JSON through', () => {
    expect(formatRecord('not json')).toBe('not json\n');
  });

  it('is chosen by LOG_FORMAT, else by whether stderr is a terminal', () => {
    expect(chooseLogFormat(undefined, true)).toBe('pretty');
    expect(chooseLogFormat('', false)).toBe('json');
    expect(chooseLogFormat('json', true)).toBe('json');
    expect(chooseLogFormat('pretty', false)).toBe('pretty');
  });
});

describe('the CLI', () => {
  let dir: string;
  let config: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'streamshard-log-'));
    config = join(dir, 'pipeline.yaml');
    writeFileSync(
      config,
      [
        'name: log-check',
        `redis: { url: "redis://127.0.0.1:${await closedPort()}", startTimeout: 300ms }`,
        'source: { stream: in }',
        'sink: { stream: out }',
        'deadLetter: { stream: dlq }',
        'metrics: { port: 0, host: 127.0.0.1 }',
      ].join('\n'),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes JSON with level names and the pipeline name on every line when stderr is a pipe', async () => {
    const r = await run(process.execPath, [CLI, 'run', '-c', config], { LOG_FORMAT: undefined });
    expect(r.code).toBe(1);
    const records = lines(r.stderr).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.map((x) => x.level)).toEqual([...records.slice(0, -2).map(() => 'warn'), 'error', 'info']);
    expect(records.length).toBeGreaterThan(2);
    for (const x of records) expect(x.name).toBe('log-check');
    expect(records.at(-2)?.msg).toBe('start failed');
  });

  it('writes pretty lines, without colours, with LOG_FORMAT=pretty on a pipe', async () => {
    const r = await run(process.execPath, [CLI, 'run', '-c', config], { LOG_FORMAT: 'pretty' });
    expect(r.code).toBe(1);
    const out = lines(r.stderr);
    expect(out.at(0)).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}log-check: cannot connect to Redis; retrying /);
    expect(out.at(-2)).toMatch(/^\d\d:\d\d:\d\d\.\d{3} ERROR log-check: start failed err="cannot connect/);
    expect(out.at(-1)).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}log-check: stopped clean=true uptimeSeconds=\d+ eventsRead=0 /,
    );
    expect(r.stderr).not.toContain('\x1b[');
  });

  it('is pretty and coloured on a terminal, and JSON there with LOG_FORMAT=json', async () => {
    const command = `${process.execPath} ${CLI} run -c ${config}`;
    // script(1) gives the child a pty for stdin, stdout and stderr and copies what it writes to stdout
    const tty = await run('script', ['-qefc', command, '/dev/null'], { LOG_FORMAT: undefined });
    expect(tty.code, tty.stderr).toBe(1);
    const plain = lines(tty.stdout.replaceAll(ESC, '').replace(/\[\d+m/g, ''));
    expect(plain.at(-2)).toMatch(/^\d\d:\d\d:\d\d\.\d{3} ERROR log-check: start failed /);
    expect(tty.stdout).toContain('\x1b[31mERROR\x1b[0m');

    const json = await run('script', ['-qefc', command, '/dev/null'], { LOG_FORMAT: 'json' });
    expect(json.code, json.stderr).toBe(1);
    expect(JSON.parse(lines(json.stdout).at(-2) ?? '')).toMatchObject({
      level: 'error',
      name: 'log-check',
      msg: 'start failed',
    });
  });

  it('rejects an unknown LOG_FORMAT in validate and in run', async () => {
    for (const cmd of ['validate', 'run']) {
      const r = await run(process.execPath, [CLI, cmd, '-c', config], { LOG_FORMAT: 'colour' });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain('LOG_FORMAT "colour" is not a log format: use json or pretty');
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

const ESC = String.fromCharCode(27);

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trimEnd())
    .filter((l) => l !== '');
}

function run(
  cmd: string,
  args: string[],
  env: Record<string, string | undefined>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env: { ...process.env, LOG_LEVEL: undefined, NO_COLOR: undefined, ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
