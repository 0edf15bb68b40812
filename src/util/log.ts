/**
 * Logs (pino) on stderr, so that stdout stays free for results (`sink: stdout`) and command output.
 *
 * - Level from `LOG_LEVEL` (default `info`), written by name: `"level":"warn"`, not `40`.
 * - `name` on every line is the pipeline's name (`name` in the file, default the group).
 * - `LOG_FORMAT`: `json` (one JSON object per line, for log collectors) or `pretty` (one readable line
 *   per record, for people); unset, `pretty` when stderr is a terminal and `json` otherwise.
 *
 * Both formats write synchronously: a line logged just before a crash or an exit is not lost.
 */
import { pino } from 'pino';
import { ConfigError } from '../errors.js';
import { prettyDestination } from './prettyLog.js';

export type Logger = pino.Logger;

/** The levels `LOG_LEVEL` may name (pino's). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The values `LOG_FORMAT` may take. */
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Why `level` (the value of `LOG_LEVEL`) is not usable, or null. Unset or empty means `info`. */
export function logLevelProblem(level: string | undefined): string | null {
  if (level === undefined || level === '' || (LOG_LEVELS as readonly string[]).includes(level)) return null;
  return `LOG_LEVEL "${level}" is not a log level: use one of ${LOG_LEVELS.join(', ')}`;
}

/** Why `format` (the value of `LOG_FORMAT`) is not usable, or null. Unset or empty means automatic. */
export function logFormatProblem(format: string | undefined): string | null {
  if (format === undefined || format === '' || (LOG_FORMATS as readonly string[]).includes(format))
    return null;
  return `LOG_FORMAT "${format}" is not a log format: use ${LOG_FORMATS.join(' or ')} (unset: pretty on a terminal, else json)`;
}

/** The format `LOG_FORMAT` asks for; unset or empty: `pretty` on a terminal, `json` otherwise. */
export function chooseLogFormat(format: string | undefined, isTTY: boolean): LogFormat {
  if (format === 'json' || format === 'pretty') return format;
  return isTTY ? 'pretty' : 'json';
}

/**
 * A logger for the pipeline called `name`, on stderr, configured from `LOG_LEVEL` and `LOG_FORMAT`.
 *
 * @throws ConfigError when either variable names no level or format
 */
export function createLogger(name: string, env: NodeJS.ProcessEnv = process.env): Logger {
  const level = env.LOG_LEVEL || 'info';
  const problems = [
    { path: 'LOG_LEVEL', message: logLevelProblem(level) },
    { path: 'LOG_FORMAT', message: logFormatProblem(env.LOG_FORMAT) },
  ].flatMap((p) => (p.message === null ? [] : [{ path: p.path, message: p.message }]));
  if (problems.length > 0) throw new ConfigError('(environment)', problems);
  const options: pino.LoggerOptions = {
    name,
    level,
    formatters: { level: (label) => ({ level: label }) },
  };
  const format = chooseLogFormat(env.LOG_FORMAT, process.stderr.isTTY === true);
  if (format === 'pretty') {
    return pino(options, prettyDestination(2, process.stderr.isTTY === true && !env.NO_COLOR));
  }
  return pino(options, pino.destination({ fd: 2, sync: true }));
}
