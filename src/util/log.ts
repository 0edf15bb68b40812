/**
 * Structured JSON logs (pino) on stderr, so that stdout stays free for results (`sink: stdout`) and
 * command output. Level from `LOG_LEVEL` (default `info`).
 */
import { pino } from 'pino';

export type Logger = pino.Logger;

export function createLogger(name: string): Logger {
  return pino({ name, level: process.env.LOG_LEVEL ?? 'info' }, pino.destination({ fd: 2, sync: true }));
}
