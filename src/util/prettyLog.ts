/**
 * The `pretty` log format: pino's JSON records turned into one line each for people at a terminal.
 *
 *   14:03:22.123 INFO  orders-tumbling: ready metricsPort=9464 shards=2
 *   14:03:25.870 WARN  orders-tumbling: cannot connect to Redis; retrying attempt=2 err="connect ECONNREFUSED"
 *
 * Time of day (local), level, the pipeline's name, the message, then the other fields as `key=value`
 * (strings quoted only when they hold spaces, quotes or `=`; objects as JSON; keys dimmed on a terminal).
 * An error (`err`) shows its message; at `error` and `fatal` its stack follows on indented lines. pid and
 * hostname are left out.
 *
 * Written by hand instead of depending on pino-pretty (13 direct dependencies for a format only people
 * read): a pino destination gets each record as a JSON line, re-reads it and writes the line
 * synchronously.
 */
import { writeSync } from 'node:fs';

type LogRecord = Record<string, unknown>;

/** Fields shown in the line's head, or not at all. */
const HEAD = new Set(['level', 'time', 'name', 'msg', 'pid', 'hostname']);

const COLORS: Record<string, string> = {
  trace: '\x1b[90m',
  debug: '\x1b[36m',
  info: '\x1b[32m',
  warn: '\x1b[33m',
  error: '\x1b[31m',
  fatal: '\x1b[35m',
};
const DIM = '\x1b[2m';
const RESET = '\x1b[0m';

/** A pino destination writing the pretty form of each record to `fd`, synchronously. */
export function prettyDestination(fd: number, color: boolean): { write(line: string): void } {
  return {
    write(line: string) {
      writeSync(fd, formatRecord(line, color));
    },
  };
}

/** One pino JSON line in the pretty form, ending in a newline. A line that is not JSON is passed on. */
export function formatRecord(jsonLine: string, color = false): string {
  let rec: LogRecord;
  try {
    rec = JSON.parse(jsonLine) as LogRecord;
  } catch {
    return jsonLine.endsWith('\n') ? jsonLine : `${jsonLine}\n`;
  }
  const level = String(rec.level ?? '');
  const paint = (code: string | undefined, s: string) => (color && code ? `${code}${s}${RESET}` : s);
  const head = [
    paint(DIM, timeOfDay(rec.time)),
    paint(COLORS[level], level.toUpperCase().padEnd(5)),
    rec.name === undefined ? '' : `${String(rec.name)}:`,
    String(rec.msg ?? ''),
  ].filter((s) => s !== '');
  const fields: string[] = [];
  let stack: string | undefined;
  for (const [key, value] of Object.entries(rec)) {
    if (HEAD.has(key)) continue;
    if (key === 'err' && isErrorRecord(value)) {
      fields.push(`${paint(DIM, 'err=')}${quote(value.message)}`);
      if (level === 'error' || level === 'fatal') stack = value.stack;
      continue;
    }
    fields.push(`${paint(DIM, `${key}=`)}${show(value)}`);
  }
  const line = [...head, ...fields].join(' ');
  const tail = stack === undefined ? '' : `\n${indentStack(stack)}`;
  return `${line}${tail}\n`;
}

function timeOfDay(time: unknown): string {
  if (typeof time !== 'number') return '--:--:--.---';
  const d = new Date(time);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** pino's error serializer writes `{ type, message, stack, … }`. */
function isErrorRecord(v: unknown): v is { message: string; stack?: string } {
  return typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string';
}

function show(value: unknown): string {
  if (typeof value === 'string') return quote(value);
  if (value === null || typeof value !== 'object') return String(value);
  return JSON.stringify(value);
}

/** The string as is when it reads unambiguously in `key=value`, else as a JSON string. */
function quote(s: string): string {
  return /^[^\s"=\\]+$/.test(s) && !hasControlChars(s) ? s : JSON.stringify(s);
}

function hasControlChars(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** The stack's frames (the first line repeats the message), indented. */
function indentStack(stack: string): string {
  const lines = stack.split('\n');
  const frames = lines[0]?.trimStart().startsWith('at ') ? lines : lines.slice(1);
  return frames.map((l) => `    ${l.trim()}`).join('\n');
}
