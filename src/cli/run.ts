/**
 * `streamshard run -c FILE`: runs a pipeline until SIGTERM/SIGINT/SIGHUP, then drains and exits 0. Exits 1
 * on an invalid config (problems listed, never a stack), on Redis still unreachable after
 * `redis.startTimeout`, on an unrecoverable failure, or when the drain did not finish within
 * `shutdown.timeout` (uncommitted entries stay pending for the next start).
 */
import { loadConfig, type PipelineConfig } from '../config/load.js';
import { Pipeline } from '../pipeline/pipeline.js';
import { maskSecrets } from '../redis/url.js';
import { createLogger } from '../util/log.js';
import { exitOnConfigError } from './validate.js';

/** The signals that stop a pipeline gracefully (SIGHUP: a closed terminal, some process managers). */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/** After a stop, how long the process may take to exit by itself before it is made to. */
const EXIT_GRACE_MS = 2000;

export async function runCommand(file: string): Promise<number> {
  let config: PipelineConfig;
  try {
    config = loadConfig(file); // also checks LOG_LEVEL, LOG_FORMAT and REDIS_URL, before anything logs
  } catch (e) {
    return exitOnConfigError(e);
  }
  const log = createLogger(config.name);
  const url = config.redis.url;
  const pipeline = Pipeline.fromConfig(config, { logger: log, configFile: file });
  const stopSignal = new Promise<string>((resolve) => {
    for (const s of STOP_SIGNALS) process.once(s, () => resolve(s));
  });
  const started = await Promise.race([
    pipeline.start().then(() => null),
    pipeline.failed,
    stopSignal.then((signal) => ({ signal })),
  ]).catch((e: unknown) => e as Error);
  if (started instanceof Error) {
    log.error({ err: maskSecrets(started.message, url) }, 'start failed');
    await stopAndExit(pipeline);
    return 1;
  }
  const outcome =
    started !== null
      ? { signal: started.signal, error: null as Error | null }
      : await Promise.race([
          stopSignal.then((signal) => ({ signal, error: null as Error | null })),
          pipeline.failed.catch((error: Error) => ({ signal: null, error })),
        ]);
  if (outcome.signal) log.info({ signal: outcome.signal }, 'stopping');
  const { clean } = await stopAndExit(pipeline);
  return outcome.error === null && clean ? 0 : 1;
}

/**
 * Stops within `shutdown.timeout` (every step of `Pipeline.stop` has a deadline). A second stop signal
 * while draining exits 1 at once (entries not committed stay pending).
 */
async function stopAndExit(pipeline: Pipeline): Promise<{ clean: boolean }> {
  for (const s of STOP_SIGNALS) process.once(s, () => process.exit(1));
  const r = await pipeline.stop();
  // Everything is closed; should a handle we do not own still hold the event loop (a socket a library
  // keeps), the process exits anyway. unref(): this timer alone never delays the exit.
  setTimeout(() => process.exit(process.exitCode ?? (r.clean ? 0 : 1)), EXIT_GRACE_MS).unref();
  return r;
}
