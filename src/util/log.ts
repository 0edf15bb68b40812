/**
 * Structured JSON logs (pino) on stderr, so that stdout stays free for results (`sink: stdout`) and
 * command output. Level from `LOG_LEVEL` (default `info`).
 */
import { pino } from 'pino';
import { ConfigError } from '../errors.js';

export type Logger = pino.Logger;

/** The levels `LOG_LEVEL` may name (pino's). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Why `level` (the value of `LOG_LEVEL`) is not usable, or null. Unset or empty means `info`. */
export function logLevelProblem(level: string | undefined): string | null {
  if (level === undefined || level === '' || (LOG_LEVELS as readonly string[]).includes(level)) return null;
  return `LOG_LEVEL "${level}" is not a log level: use one of ${LOG_LEVELS.join(', ')}`;
}

/** @throws ConfigError when `LOG_LEVEL` names no level (see {@link logLevelProblem}) */
export function createLogger(name: string): Logger {
  const level = process.env.LOG_LEVEL || 'info';
  const problem = logLevelProblem(level);
  if (problem !== null) throw new ConfigError('(environment)', [{ path: 'LOG_LEVEL', message: problem }]);
  return pino({ name, level }, pino.destination({ fd: 2, sync: true }));
}
