/**
 * Where a thread's time goes, by step of the data path, from a V8 CPU profile (`node --cpu-prof`; the main
 * thread's file is the one whose name has thread id 0: `CPU.<date>.<pid>.0.<n>.cpuprofile`). Used for the
 * reads-in-workers decision (docs/architecture.md): how much of the main thread reads, parses and routes,
 * and how much commits.
 *
 * Each sample is charged to the first frame, from the leaf up, that belongs to our code (dist/src/…) or to
 * a package (node_modules/<pkg>/…): Node's own frames (socket writes, Buffer copies, postMessage) count for
 * the code that called them. Samples with no such frame are V8's: `(garbage collector)`, `(program)`,
 * `(idle)`, or Node internals run from the event loop (timers, socket reads before they reach a parser).
 *
 * Only the drain counts: the longest run of consecutive 250 ms slices that each have samples in the
 * router (entries flow through it on every read while there is input; at start-up only its module
 * loads), so start-up (module loading, config) and the idle time around the drain are left out.
 *
 *   node dist/bench/profileSplit.js <file.cpuprofile> [--json]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const ROUTE = 'route: hash, pack per shard';

/** Steps of the main thread's data path, by source file under dist/src/ (first match wins). */
const STEPS: Array<[string, RegExp]> = [
  ['read: XREADGROUP, RESP parse', /\/src\/(source\/|redis\/resp|redis\/replyAssembler|pipeline\/reader)/],
  [ROUTE, /\/src\/routing\//],
  ['dispatch: lanes, flush policy', /\/src\/pipeline\/(lane|flushPolicy)/],
  ['commit: build, send, replies', /\/src\/(pipeline\/committer|commit\/|sink\/|store\/)/],
  ['engine, guards, term', /\/src\/pipeline\//],
  ['metrics, status, stats', /\/src\/(metrics|inspect)\//],
  ['lease, partitions', /\/src\/(lease|partition)\//],
  ['other streamshard code', /\/src\//],
];

function stepOf(url: string, functionName: string): string | null {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return pkg[1] === 'ioredis' ? 'commit: ioredis (main connection)' : `package ${pkg[1]}`;
  if (url.includes('/dist/src/')) {
    for (const [name, re] of STEPS) if (re.test(url)) return name;
  }
  if (functionName === '(garbage collector)') return 'GC (on this thread)';
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(program)') return 'V8/native (program)';
  return null;
}

const SLICE_US = 250_000;

/** The sample indexes [first, last] of the longest run of slices that all have routing samples. */
function drainOf(steps: string[], deltas: number[]): [number, number] {
  const slices: Array<{ from: number; to: number; routed: boolean }> = [];
  let t = 0;
  for (let i = 0; i < steps.length; i++) {
    t += deltas[i] ?? 0;
    const k = Math.floor(t / SLICE_US);
    while (slices.length <= k) slices.push({ from: i, to: i, routed: false });
    const slice = slices[k] as { from: number; to: number; routed: boolean };
    slice.to = i;
    if (steps[i] === ROUTE) slice.routed = true;
  }
  let best: [number, number] = [0, -1];
  let bestLen = 0;
  for (let a = 0; a < slices.length;) {
    let b = a;
    while (b < slices.length && (slices[b] as { routed: boolean }).routed) b++;
    if (b - a > bestLen) {
      bestLen = b - a;
      best = [(slices[a] as { from: number }).from, (slices[b - 1] as { to: number }).to];
    }
    a = b + 1;
  }
  return best;
}

export function splitProfile(p: Profile): Map<string, number> {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const memo = new Map<number, string>();
  const chargeOf = (id: number): string => {
    const known = memo.get(id);
    if (known !== undefined) return known;
    let at: number | undefined = id;
    let step: string | null = null;
    while (at !== undefined && step === null) {
      const n = byId.get(at) as ProfileNode;
      step = stepOf(n.callFrame.url, n.callFrame.functionName);
      at = parent.get(at);
    }
    const out = step ?? 'Node internals (event loop, timers)';
    memo.set(id, out);
    return out;
  };
  const steps = p.samples.map((id) => chargeOf(id));
  const [first, last] = drainOf(steps, p.timeDeltas);
  const us = new Map<string, number>();
  for (let i = first; i <= last; i++) {
    const step = steps[i] as string;
    us.set(step, (us.get(step) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  return us;
}

if (process.argv[1]?.endsWith('profileSplit.js')) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: node dist/bench/profileSplit.js <file.cpuprofile> [--json]\n');
    process.exit(2);
  }
  const us = splitProfile(JSON.parse(readFileSync(file, 'utf8')) as Profile);
  const busy = [...us].filter(([k]) => k !== 'idle').reduce((a, [, v]) => a + v, 0);
  const rows = [...us].sort((a, b) => b[1] - a[1]);
  if (process.argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify(Object.fromEntries(rows), null, 2)}\n`);
  } else {
    process.stdout.write(`| step | ms | % of busy |\n| --- | ---: | ---: |\n`);
    for (const [k, v] of rows) {
      const pct = k === 'idle' ? '–' : ((v / busy) * 100).toFixed(1);
      process.stdout.write(`| ${k} | ${(v / 1000).toFixed(0)} | ${pct} |\n`);
    }
    process.stdout.write(`| busy (all but idle) | ${(busy / 1000).toFixed(0)} | 100 |\n`);
  }
}
