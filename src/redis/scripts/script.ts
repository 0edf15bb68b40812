/**
 * The loader for every Lua script of streamshard. Each script lives in a module of this folder named with
 * its key count, as bullmq names its `commands/*.lua` (`applyOps-2.ts`: two KEYS); the exported constant
 * keeps the script's historical name (`APPLY_OPS_3`), which the docs and the changelog use.
 *
 * A call is one `EVALSHA`. A `NOSCRIPT` reply (the server restarted, failed over or ran `SCRIPT FLUSH`)
 * means nothing ran: the call is sent once more as `EVAL`, which also puts the script back in the cache.
 * A script declared with `send: 'eval'` goes as `EVAL` every time instead — the lease and trim scripts,
 * small and called every few seconds at most, have always been sent so (ACL rules and tests that refuse
 * `EVAL` rely on it). Errors come back classified (redis/errors.ts): `FENCED` as FencedError, …
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RedisReplyError } from '../../errors.js';
import { classifyRedisError } from '../errors.js';

export type ScriptArg = string | Buffer | number;

export interface ScriptOptions {
  /**
   * `evalsha`: EVALSHA, and EVAL once on NOSCRIPT (for calls on the data path: the source is not sent
   * each time). `eval`: the source with every call. @defaultValue `evalsha`
   */
  send?: 'evalsha' | 'eval';
}

export class Script {
  /** SHA1 of the source: what EVALSHA names. */
  readonly sha: string;

  constructor(
    /** The script's name, for messages and docs (`APPLY_OPS_3`). */
    readonly name: string,
    /** The Lua source, sent as it is. */
    readonly source: string,
    /** How many of a call's arguments are KEYS. */
    readonly numberOfKeys: number,
    private readonly options: ScriptOptions = {},
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /**
   * Runs the script: EVALSHA, and EVAL once on NOSCRIPT (or EVAL only, see {@link ScriptOptions.send}).
   *
   * @param keys exactly {@link numberOfKeys} keys
   * @throws a classified error (redis/errors.ts) for an error reply; connection errors as they are
   */
  async run(redis: Redis, keys: readonly ScriptArg[], args: readonly ScriptArg[]): Promise<unknown> {
    if (keys.length !== this.numberOfKeys) {
      throw new RangeError(`${this.name} takes ${this.numberOfKeys} keys, got ${keys.length}`);
    }
    if (this.options.send !== 'eval') {
      try {
        return await redis.evalsha(this.sha, this.numberOfKeys, ...keys, ...args);
      } catch (e) {
        const err = classifyRedisError(e);
        if (!(err instanceof RedisReplyError && err.reply === 'NOSCRIPT')) throw err;
      }
    }
    try {
      return await redis.eval(this.source, this.numberOfKeys, ...keys, ...args);
    } catch (e) {
      throw classifyRedisError(e);
    }
  }

  /** Puts the script in the server's cache (`SCRIPT LOAD`), so that the next EVALSHA finds it. */
  async load(redis: Redis): Promise<void> {
    try {
      await redis.script('LOAD', this.source);
    } catch (e) {
      throw classifyRedisError(e);
    }
  }
}
