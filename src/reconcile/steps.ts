import type { Config } from '../config.js';
import { onCitus } from '../db/citus.js';
import type { Sql } from '../db/database.js';
import {
  compareWindowSharded,
  expireDeliveriesShardedRun,
  recordRootCausesSharded,
  recoverPixelOnlySharded,
  refireDeliveriesShardedRun,
} from './citus-steps.js';
import { recoverPixelOnly } from './recovery.js';
import { expireDeliveries, refireDeliveries } from './refire.js';
import { recordRootCauses } from './root-causes.js';
import { compareWindow, type RunWindow } from './window.js';

/**
 * A run's work, and its pace. The window is cut into slices at UTC multiples of SLICE_HOURS, and
 * each slice goes through every step in order (root causes before the recovery that quotes them).
 * Every step counts units by their first sighting, so slices add up to exactly the whole window.
 *
 * Why slices and rests: a run shares PostgreSQL's cores with the postback intake. A slice keeps each
 * statement short (row locks, sorts in memory, a shutdown waits for one slice at most), and after
 * each statement the run rests for REST_RATIO times as long as it worked, so on average it takes at
 * most 1 / (1 + REST_RATIO) of one core: a third, measured to leave the intake ≥ 0.8× its idle
 * throughput on two cores (reports/bench/results/reconcile.md). A run takes three times its working
 * time; postbacks keep their throughput, and the scheduled run has 15 minutes anyway.
 */

export const SLICE_HOURS = 6;
export const REST_RATIO = 2;

export type StepName = 'rootCauses' | 'recovery' | 'refire' | 'expiry' | 'comparison';

export type StepContext = { db: Sql; runId: string; window: RunWindow; config: Pick<Config, 'pixelGraceS'> };

/** Each step's statements on one PostgreSQL, or on Citus (citus-steps.ts: the same work, one shard at a time). */
export const STEPS: { name: StepName; label: string; run: (ctx: StepContext, slice: RunWindow) => Promise<number> }[] = [
  {
    name: 'rootCauses',
    label: 'root causes',
    run: (c, slice) => (onCitus() ? recordRootCausesSharded : recordRootCauses)(c.db, c.runId, slice, c.config.pixelGraceS),
  },
  { name: 'recovery', label: 'recovery', run: (c, slice) => (onCitus() ? recoverPixelOnlySharded : recoverPixelOnly)(c.db, c.runId, slice, c.config.pixelGraceS) },
  { name: 'refire', label: 're-fire', run: (c, slice) => (onCitus() ? refireDeliveriesShardedRun : refireDeliveries)(c.db, c.runId, slice, c.window) },
  { name: 'expiry', label: 'expiry', run: (c, slice) => (onCitus() ? expireDeliveriesShardedRun : expireDeliveries)(c.db, c.runId, slice) },
  { name: 'comparison', label: 'comparison', run: (c, slice) => (onCitus() ? compareWindowSharded : compareWindow)(c.db, c.runId, slice) },
];

export function sliceWindow(w: RunWindow, hours = SLICE_HOURS): RunWindow[] {
  const size = hours * 3_600_000;
  const slices: RunWindow[] = [];
  let from = w.from.getTime();
  while (from < w.to.getTime()) {
    const to = Math.min((Math.floor(from / size) + 1) * size, w.to.getTime());
    slices.push({ from: new Date(from), to: new Date(to) });
    from = to;
  }
  return slices;
}

export function rest(workedMs: number, ratio = REST_RATIO): Promise<void> {
  const ms = Math.round(workedMs * ratio);
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}
