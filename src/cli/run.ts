/**
 * `streamshard run -c FILE`: runs a pipeline until SIGTERM/SIGINT, then drains and exits 0. Exits 1 on an
 * invalid config or an unrecoverable failure (uncommitted entries stay pending for the next start).
 */
import { Pipeline } from '../pipeline/pipeline.js';
import { createLogger } from '../util/log.js';
import { exitOnConfigError } from './validate.js';

export async function runCommand(file: string): Promise<number> {
  const log = createLogger('streamshard');
  let pipeline: Pipeline;
  try {
    pipeline = Pipeline.fromFile(file, { logger: log });
  } catch (e) {
    return exitOnConfigError(e);
  }
  const stopSignal = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  try {
    await Promise.race([pipeline.start(), pipeline.failed]);
  } catch (e) {
    log.error({ err: (e as Error).message }, 'start failed');
    await pipeline.stop().catch(() => {});
    return 1;
  }
  const outcome = await Promise.race([
    stopSignal.then((signal) => ({ signal, error: null as Error | null })),
    pipeline.failed.catch((error: Error) => ({ signal: null, error })),
  ]);
  if (outcome.signal) log.info({ signal: outcome.signal }, 'stopping');
  // A second signal while draining exits at once (entries not committed stay pending).
  process.once('SIGTERM', () => process.exit(1));
  process.once('SIGINT', () => process.exit(1));
  const { clean } = await pipeline.stop();
  return outcome.error === null && clean ? 0 : 1;
}
