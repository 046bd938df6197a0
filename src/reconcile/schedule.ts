import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from '../logger.js';
import { RunFailed, type Reconciler } from './reconciler.js';

/**
 * The scheduled reconciler: every node schedules RECONCILE_CRON, and on each tick tries the run lock
 * without waiting, so exactly one node runs it. The window ends at the tick's scheduled time (whole
 * seconds) and reaches REFIRE_WINDOW_S back: every conversion whose outbound postback may still be
 * delivered. Ticks are identical on every node, so a node that takes the lock just after another
 * finished the same tick finds that run and skips instead of running it twice.
 */

export type ReconcileSchedule = { stop(): Promise<void> };

export function cronWindow(at: Date, refireWindowS: number): { from: Date; to: Date } {
  const to = new Date(Math.floor(at.getTime() / 1000) * 1000);
  return { from: new Date(to.getTime() - refireWindowS * 1000), to };
}

/** Throws a readable error for an expression node-cron cannot run, so start-up fails fast. */
export function validateCron(expression: string): void {
  if (cron.validate(expression)) return;
  const detail = cron.validateDetailed(expression).errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  throw new Error(`RECONCILE_CRON "${expression}" is not a valid cron expression (${detail || 'unparseable'}); use "off" to disable it`);
}

export function scheduleReconciler(expression: string, reconciler: Reconciler, refireWindowS: number, log: Logger): ReconcileSchedule {
  validateCron(expression);
  const task: ScheduledTask = cron.schedule(
    expression,
    async (ctx) => {
      const window = cronWindow(ctx.date, refireWindowS);
      try {
        const outcome = await reconciler.run({ ...window, trigger: 'cron', waitMs: 0, skipIfDone: true });
        if (outcome.kind === 'done') log.info({ runId: outcome.id, ...window }, 'scheduled reconciliation finished');
        else log.debug({ outcome }, 'scheduled reconciliation left to another node');
      } catch (err) {
        log.error({ err, runId: err instanceof RunFailed ? err.runId : undefined }, 'scheduled reconciliation failed');
      }
    },
    {
      name: 'reconcile',
      noOverlap: true,
      // node-cron's own notices (a missed or overlapping tick) go to the engine's log, not the console.
      logger: {
        info: (message) => log.debug({ source: 'node-cron' }, message),
        warn: (message) => log.warn({ source: 'node-cron' }, message),
        error: (message, err) => log.error({ source: 'node-cron', err }, String(message)),
        debug: (message) => log.debug({ source: 'node-cron' }, String(message)),
      },
    },
  );
  return {
    async stop() {
      await task.destroy();
    },
  };
}
