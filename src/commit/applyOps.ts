/**
 * The commit as ONE script call. A MULTI of ~600 commands cost the main thread ~600 command objects and
 * ~1,200 parsed replies per shard batch (measured: the commit was half of the main thread's time); one
 * EVALSHA carrying the same writes as a flat op list costs one command and one reply.
 *
 * ARGV := (opName argCount arg*)*. Ops run in order; an error stops the script at that op, so with XACK
 * last an entry is never acked when a write before it failed (MULTI would have run the rest).
 * Redis' Lua `unpack` takes at most ~8,000 values: callers split long ops (MAX_OP_ARGS).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export const APPLY_OPS_0 = `local i, n = 1, #ARGV
while i <= n do
  local c = tonumber(ARGV[i + 1])
  redis.call(ARGV[i], unpack(ARGV, i + 2, i + 1 + c))
  i = i + 2 + c
end
return n`;

const SHA = createHash('sha1').update(APPLY_OPS_0).digest('hex');

/** Longest argument list of one op; keeps `unpack` well inside Lua's stack limit. */
export const MAX_OP_ARGS = 6000;

export type Arg = string | number | Buffer;

/** Builds the op list of one commit. */
export class OpList {
  readonly args: Arg[] = [];

  /** Appends `name head… rest…`, splitting `rest` into chunks of `per`-sized groups when long. */
  op(name: string, head: Arg[], rest: Arg[] = [], per = 1): void {
    const room = Math.max(per, MAX_OP_ARGS - head.length - ((MAX_OP_ARGS - head.length) % per));
    if (rest.length <= room) {
      this.push(name, head, rest);
      return;
    }
    for (let i = 0; i < rest.length; i += room) this.push(name, head, rest.slice(i, i + room));
  }

  private push(name: string, head: Arg[], rest: Arg[]): void {
    const a = this.args;
    a.push(name, head.length + rest.length);
    for (const x of head) a.push(x);
    for (const x of rest) a.push(x);
  }

  get empty(): boolean {
    return this.args.length === 0;
  }
}

/** Runs the op list atomically; loads the script when the server does not know it (after a restart). */
export async function applyOps(redis: Redis, ops: OpList): Promise<void> {
  try {
    await redis.evalsha(SHA, 0, ...ops.args);
  } catch (e) {
    if (!String((e as Error).message).startsWith('NOSCRIPT')) throw e;
    await redis.eval(APPLY_OPS_0, 0, ...ops.args);
  }
}
