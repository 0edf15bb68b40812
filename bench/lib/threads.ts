/**
 * CPU of a process split into its main thread and the rest, from /proc/<pid>/task/<tid>/stat (utime +
 * stime of each thread). Node 20 names every thread `node`, so only the main thread (tid = pid) can be told
 * apart reliably; the rest is the worker threads (shards) plus V8's helper threads (concurrent GC,
 * compilation) and libuv's pool. A thread that exited between two samples takes its CPU with it from the
 * per-thread sum, not from the process total: `rest` is therefore total − main, both read from the
 * process. Linux only.
 */
import { readFileSync } from 'node:fs';
import { readProc, ticksPerSecond } from './proc.js';

export interface ThreadCpu {
  /** User + system CPU seconds of the whole process (all threads, also exited ones). */
  totalSec: number;
  /** The main thread's. */
  mainSec: number;
}

/** utime + stime of /proc/<pid>/task/<pid>/stat, in clock ticks; null when gone. */
function mainTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]);
  } catch {
    return null;
  }
}

/** One reading of a process's CPU, or null when the process is gone. */
export function readThreadCpu(pid: number): ThreadCpu | null {
  const whole = readProc(pid);
  const main = mainTicks(pid);
  if (whole === null || main === null) return null;
  return { totalSec: whole.cpuSec, mainSec: main / ticksPerSecond() };
}

/** Sum of several processes' readings (the instances of one contender); null if any is gone. */
export function sumThreadCpu(pids: number[]): ThreadCpu | null {
  let totalSec = 0;
  let mainSec = 0;
  for (const pid of pids) {
    const r = readThreadCpu(pid);
    if (r === null) return null;
    totalSec += r.totalSec;
    mainSec += r.mainSec;
  }
  return { totalSec, mainSec };
}
