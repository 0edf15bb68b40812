/**
 * What a child process costs, read from /proc the same way for every contender: resident memory (VmRSS of
 * /proc/<pid>/status, the whole process — worker threads share it) and CPU time (utime + stime of
 * /proc/<pid>/stat, summed over all its threads). Linux only.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface ProcSample {
  /** Date.now() when read. */
  t: number;
  rssMb: number;
  /** User + system CPU seconds since the process started. */
  cpuSec: number;
}

let clockTicks = 0;
export function ticksPerSecond(): number {
  if (clockTicks === 0) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** One sample, or null when the process is gone. */
export function readProc(pid: number): ProcSample | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    // Fields after the command name (which may contain spaces) start at field 3; utime and stime are 14, 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    return { t: Date.now(), rssMb: rss ? Number(rss[1]) / 1024 : 0, cpuSec: ticks / ticksPerSecond() };
  } catch {
    return null;
  }
}

/** Samples a process every `everyMs` until stopped. */
export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly pid: number,
    private readonly everyMs = 250,
  ) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    return this;
  }

  /** Takes one sample now (also called by the timer); returns it. */
  sample(): ProcSample | null {
    const s = readProc(this.pid);
    if (s !== null) this.samples.push(s);
    return s;
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  get lastRssMb(): number {
    return this.samples.at(-1)?.rssMb ?? 0;
  }

  peakRssMb(from = 0, to = Number.POSITIVE_INFINITY): number {
    let peak = 0;
    for (const s of this.samples) if (s.t >= from && s.t <= to && s.rssMb > peak) peak = s.rssMb;
    return peak;
  }

  /** Peak RSS in each of `parts` equal slices of [from, to] (by time). */
  peakRssBySlice(from: number, to: number, parts: number): number[] {
    const out = new Array<number>(parts).fill(0);
    const span = Math.max(1, to - from);
    for (const s of this.samples) {
      if (s.t < from || s.t > to) continue;
      const k = Math.min(parts - 1, Math.floor(((s.t - from) / span) * parts));
      if (s.rssMb > (out[k] as number)) out[k] = s.rssMb;
    }
    return out;
  }
}
