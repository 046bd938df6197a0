import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config.js';
import type { Sql } from '../db/database.js';
import { newId } from '../ids.js';
import type { Logger } from '../logger.js';
import { removeRunReports, writeRunReports } from '../reports/run-files.js';
import { acquireRunLock } from './lock.js';
import { failAbandonedRuns, failRun, findDoneRun, finishRun, insertRun, loadRun, pruneRuns, runningRunId, type Trigger } from './runs-store.js';
import { rest, sliceWindow, STEPS } from './steps.js';
import type { RunWindow } from './window.js';

/**
 * A reconciliation run, start to finish: take the cluster-wide lock, record the run, work through
 * its window slice by slice (steps.ts), sum the totals, release the lock and, for the command line,
 * write the report files (the API renders the same CSV and HTML from the stored rows, on any node). Each step is its own short statement rather than one long transaction: a
 * recovered conversion's row lock would otherwise hold a late S2S postback for that txid waiting
 * until the whole run committed. Every step is idempotent, so a run cut short by a crash is simply
 * completed by the next one.
 */

/** Where `npm run reconcile` leaves its report files; engine nodes write none. */
export const REPORTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../reports');

/** Runs older than this are deleted with their rows, root causes and report files. */
export const RUN_RETENTION_DAYS = 30;

export type Progress = { step: number; steps: number; label: string };

export type RunRequest = RunWindow & {
  trigger: Trigger;
  requestedBy?: string | null;
  /** How long to wait for a run in progress on another node; 0 = give up at once. */
  waitMs: number;
  /** Skip when a finished run of this trigger covers exactly this window (a cron tick another node served). */
  skipIfDone?: boolean;
  onProgress?: (p: Progress) => void;
};

export type RunOutcome =
  | { kind: 'done'; id: string; files: string[] }
  | { kind: 'busy'; runningId: string | undefined }
  | { kind: 'skipped'; id: string };

export class RunFailed extends Error {
  constructor(readonly runId: string, cause: unknown) {
    super(`reconciliation run ${runId} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'RunFailed';
  }
}

export type ReconcilerDeps = {
  sql: Sql;
  config: Pick<Config, 'pixelGraceS' | 'refireWindowS'>;
  log: Logger;
  /** Write each finished run's CSV and HTML here; without it, no files. */
  reportsDir?: string;
};

export class Reconciler {
  readonly reportsDir: string | null;
  private closing = false;
  private readonly active = new Set<Promise<unknown>>();

  constructor(private readonly deps: ReconcilerDeps) {
    this.reportsDir = deps.reportsDir ?? null;
  }

  run(req: RunRequest): Promise<RunOutcome> {
    if (this.closing) return Promise.reject(new Error('the reconciler is shutting down'));
    const work = this.execute(req);
    this.active.add(work);
    const done = () => this.active.delete(work);
    work.then(done, done);
    return work;
  }

  get stopping(): boolean {
    return this.closing;
  }

  /** No new runs; a run in progress stops after its current statement and is marked failed. */
  interrupt(): void {
    this.closing = true;
  }

  async close(): Promise<void> {
    this.interrupt();
    await Promise.allSettled([...this.active]);
  }

  private async execute(req: RunRequest): Promise<RunOutcome> {
    const { sql, config, log } = this.deps;
    const session = await acquireRunLock(sql, req.waitMs);
    if (!session) return { kind: 'busy', runningId: await runningRunId(sql) };
    const { db } = session;
    const id = newId('rec');
    let started = false;
    const stepMs: Record<string, number> = {};
    try {
      if (req.skipIfDone) {
        const done = await findDoneRun(db, req, req.trigger);
        if (done) return { kind: 'skipped', id: done };
      }
      const abandoned = await failAbandonedRuns(db);
      if (abandoned > 0) log.warn({ abandoned }, 'reconciliation runs abandoned by a stopped node marked failed');
      const pruned = await pruneRuns(db, RUN_RETENTION_DAYS);
      if (this.reportsDir) await removeRunReports(this.reportsDir, pruned).catch((err) => log.warn({ err }, 'old reconciliation reports not removed'));
      await insertRun(db, id, req, req.trigger, req.requestedBy ?? null);
      started = true;
      const window: RunWindow = { from: req.from, to: req.to };
      const slices = sliceWindow(window);
      const steps = slices.length * STEPS.length + 2;
      const ctx = { db, runId: id, window, config };
      for (const step of STEPS) stepMs[step.name] = 0;
      for (const [s, slice] of slices.entries()) {
        for (const [i, step] of STEPS.entries()) {
          if (this.closing) throw new Error('interrupted: the engine is shutting down');
          req.onProgress?.({ step: s * STEPS.length + i + 1, steps, label: `${step.label}, ${slice.from.toISOString().slice(0, 13)}h` });
          const t0 = performance.now();
          await step.run(ctx, slice);
          const ms = performance.now() - t0;
          stepMs[step.name] = (stepMs[step.name] ?? 0) + Math.round(ms);
          await rest(ms);
        }
      }
      req.onProgress?.({ step: steps - 1, steps, label: 'totals' });
      await finishRun(db, id, stepMs);
      req.onProgress?.({ step: steps, steps, label: this.reportsDir ? 'report files' : 'done' });
    } catch (err) {
      if (!started) throw err;
      await failRun(sql, id, err instanceof Error ? err.message : String(err), stepMs).catch(() => undefined);
      throw new RunFailed(id, err);
    } finally {
      await session.release().catch((err) => log.error({ err }, 'releasing the reconciliation lock failed'));
    }
    const files = await this.writeReports(id);
    return { kind: 'done', id, files };
  }

  private async writeReports(id: string): Promise<string[]> {
    const dir = this.reportsDir;
    if (!dir) return [];
    try {
      const loaded = await loadRun(this.deps.sql, id);
      return loaded ? await writeRunReports(dir, loaded.run, loaded.rows) : [];
    } catch (err) {
      // The run itself is committed; the files are a convenience copy of what the API serves.
      this.deps.log.error({ err, runId: id }, 'reconciliation report files could not be written');
      return [];
    }
  }
}
