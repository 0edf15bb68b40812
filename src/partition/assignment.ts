/**
 * Which instance should own which partition: a pure function of the live members and the current
 * owners, so that every instance computes the same answer from the same inputs (read from Redis) and the
 * leases arbitrate any moment when they read different ones.
 *
 *   quota     each member owns ⌊P/N⌋ or ⌈P/N⌉ partitions; the P mod N larger quotas go to the members
 *             that own the most now (then by ID), so that few partitions move
 *   sticky    a partition stays with its live owner while the owner is within its quota
 *   fill      every other partition goes, in partition order, to the member with the fewest so far
 *             (ties by ID)
 *
 * Moves when N changes: a join takes ⌊P/(N+1)⌋ or so from the others and moves nothing else; a leave
 * moves only the leaver's partitions.
 */
export function assign(
  partitions: number,
  members: readonly string[],
  owners: readonly (string | null)[],
): Array<string | null> {
  const live = [...new Set(members)].sort();
  const out: Array<string | null> = new Array<string | null>(partitions).fill(null);
  if (live.length === 0) return out;
  const owned = new Map<string, number>(live.map((m) => [m, 0]));
  for (const o of owners) if (o !== null && owned.has(o)) owned.set(o, (owned.get(o) as number) + 1);
  const base = Math.floor(partitions / live.length);
  const extra = partitions % live.length;
  const byHolding = [...live].sort(
    (a, b) => (owned.get(b) as number) - (owned.get(a) as number) || (a < b ? -1 : 1),
  );
  const quota = new Map<string, number>(byHolding.map((m, i) => [m, base + (i < extra ? 1 : 0)]));
  const count = new Map<string, number>(live.map((m) => [m, 0]));
  for (let p = 0; p < partitions; p++) {
    const o = owners[p] ?? null;
    if (o !== null && quota.has(o) && (count.get(o) as number) < (quota.get(o) as number)) {
      out[p] = o;
      count.set(o, (count.get(o) as number) + 1);
    }
  }
  for (let p = 0; p < partitions; p++) {
    if (out[p] !== null) continue;
    let best: string | null = null;
    for (const m of live) {
      const c = count.get(m) as number;
      if (c >= (quota.get(m) as number)) continue;
      if (best === null || c < (count.get(best) as number)) best = m;
    }
    out[p] = best;
    if (best !== null) count.set(best, (count.get(best) as number) + 1);
  }
  return out;
}
