/**
 * The seeded schedule of the `partitions` scenario: kill -9s, SIGTERM leaves and joins, keeping between
 * {@link MIN_ALIVE} and {@link MAX_ALIVE} instances alive, until `kills` kills are planned, with at least
 * `minLeaves` leaves and one join. The mix leans towards joins when few instances live and towards kills and leaves
 * when many do, so the run spends its time at 2–4 instances; about a third of the joins are followed at
 * once by a kill of the instance that just joined (a "quick" kill, during its restore or hand-over).
 */
import type { PartitionActionKind } from './partitionReport.js';
import { MAX_ALIVE, MIN_ALIVE, START_ALIVE } from './partitionConfigs.js';

export interface PlannedPartitionAction {
  kind: PartitionActionKind;
  /** Kill: of the instance that joined just before, right after its start. */
  quick: boolean;
}

/** Weights of kill / leave / join by the number of instances alive. */
function weights(alive: number): Record<PartitionActionKind, number> {
  if (alive <= MIN_ALIVE) return { kill: 0, leave: 0, join: 1 };
  if (alive >= MAX_ALIVE) return { kill: 0.7, leave: 0.3, join: 0 };
  if (alive === 2) return { kill: 0.35, leave: 0.15, join: 0.5 };
  return { kill: 0.45, leave: 0.2, join: 0.35 };
}

export function planPartitionActions(
  kills: number,
  rand: () => number,
  o: { minLeaves: number },
): PlannedPartitionAction[] {
  const plan: PlannedPartitionAction[] = [];
  let alive = START_ALIVE;
  let killed = 0;
  const push = (kind: PartitionActionKind, quick = false) => {
    plan.push({ kind, quick });
    alive += kind === 'join' ? 1 : -1;
    if (kind === 'kill') killed++;
  };
  while (killed < kills) {
    if (plan[plan.length - 1]?.kind === 'join' && alive > MIN_ALIVE && rand() < 0.35) {
      push('kill', true);
      continue;
    }
    const w = weights(alive);
    const r = rand() * (w.kill + w.leave + w.join);
    push(r < w.kill ? 'kill' : r < w.kill + w.leave ? 'leave' : 'join');
  }
  while (plan.filter((p) => p.kind === 'leave').length < o.minLeaves) {
    if (alive <= MIN_ALIVE) push('join');
    push('leave');
  }
  // a join at least (a short plan can be all kills and leaves); alive < MAX_ALIVE here without one
  if (!plan.some((p) => p.kind === 'join')) push('join');
  return plan;
}
