/**
 * Starts one private redis-server for the whole test run, unless `REDIS_URL` names an existing one, and
 * hands its URL to the tests (`inject('redisUrl')`, or `redisUrl()` from `helpers/redis.ts`).
 */
import type { TestProject } from 'vitest/node';
import { type LocalRedis, startLocalRedis } from '../src/tools/localRedis.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let local: LocalRedis | undefined;

export async function setup(project: TestProject): Promise<void> {
  const external = process.env.REDIS_URL;
  if (external) {
    project.provide('redisUrl', external);
    return;
  }
  local = await startLocalRedis({ log: (msg) => console.log(`[globalSetup] ${msg}`) });
  project.provide('redisUrl', local.url);
}

export async function teardown(): Promise<void> {
  await local?.stop();
  local = undefined;
}
