/** What a result file records about where it was measured: the machine and the code's version. */
import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import type { Redis } from 'ioredis';
import { ROOT } from './contender.js';

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' }).trim();
  } catch {
    return null;
  }
}

const loadAtStart = loadavg().map((x) => Number(x.toFixed(2)));

/** Warns on stderr when the machine is already busy: other processes' CPU shows up in every figure. */
export function warnIfBusy(log: (line: string) => void): void {
  const cores = availableParallelism();
  if ((loadAtStart[0] as number) > cores / 2) {
    log(`⚠ load average ${loadAtStart[0]} on ${cores} cores before the bench started: figures will be noisy`);
  }
}

export async function machineInfo(redis: Redis): Promise<Record<string, unknown>> {
  return {
    cpus: availableParallelism(),
    model: cpus()[0]?.model,
    memGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    redis: /redis_version:(\S+)/.exec(await redis.info('server'))?.[1],
    loadAverageAtStart: loadAtStart,
    loadAverageAtEnd: loadavg().map((x) => Number(x.toFixed(2))),
    // Outside a git checkout (a copy of the tree), BENCH_COMMIT names the commit measured.
    commit: git(['rev-parse', 'HEAD']) ?? process.env.BENCH_COMMIT ?? null,
    srcChanged: git(['status', '--porcelain', 'src']) ?? null,
  };
}
