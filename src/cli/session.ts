/**
 * What every command that looks at a pipeline in Redis does first: load its file (problems listed, exit
 * 1), connect to its Redis with a client named `streamshard:<name>:<role>` (visible in CLIENT LIST), run,
 * and close the connection whatever happened.
 */
import type { Redis } from 'ioredis';
import { loadConfig, type PipelineConfig } from '../config/load.js';
import { CheckpointKeys } from '../redis/checkpointKeys.js';
import { closeRedis, connectRedis, openRedis, redactUrl } from '../redis/connect.js';
import { maskSecrets } from '../redis/url.js';
import { UsageError } from './format.js';
import { exitOnConfigError } from './validate.js';

export interface Session {
  config: PipelineConfig;
  redis: Redis;
  keys: CheckpointKeys;
}

/**
 * Runs `fn` with the pipeline's config and a connected client; resolves with its exit code, or 1 when the
 * file is invalid, Redis cannot be reached or `fn` throws (the reason on stderr, the password masked).
 *
 * A command that gets no reply within `redis.connectTimeout` fails instead of waiting forever (the
 * client otherwise queues commands while it reconnects).
 */
export async function withSession(
  file: string,
  role: string,
  fn: (s: Session) => Promise<number>,
): Promise<number> {
  let config: PipelineConfig;
  try {
    config = loadConfig(file);
  } catch (e) {
    return exitOnConfigError(e);
  }
  const url = config.redis.url;
  const redis = connectRedis({
    url,
    name: `streamshard:${config.name}:${role}`,
    connectTimeoutMs: config.redis.connectTimeout,
    commandTimeoutMs: config.redis.connectTimeout,
  });
  redis.on('error', () => {}); // reported by the command that fails
  try {
    await openRedis(redis);
  } catch (e) {
    redis.disconnect();
    process.stderr.write(
      `cannot connect to Redis at ${redactUrl(url)}: ${maskSecrets((e as Error).message, url)}\n`,
    );
    return 1;
  }
  try {
    const keys = CheckpointKeys.of(config);
    return await fn({ config, redis, keys });
  } catch (e) {
    if (e instanceof UsageError) throw e;
    process.stderr.write(`${role} failed: ${maskSecrets((e as Error).message, url)}\n`);
    return 1;
  } finally {
    await closeRedis(redis, 1000);
  }
}
