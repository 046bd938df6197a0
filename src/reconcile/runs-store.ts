import type { Sql } from '../db/database.js';
import type { RunWindow } from './window.js';

/** The SQL of reconciliation runs, one exported function per statement. */

export type Trigger = 'cron' | 'api' | 'cli';

export type RunRecord = {
  id: string;
  from: Date;
  to: Date;
  trigger: Trigger;
  state: 'running' | 'done' | 'failed';
  requestedBy: string | null;
  error: string | null;
  startedAt: Date;
  finishedAt: Date | null;
  totals: Record<string, number> | null;
  rootCauses: Record<string, number> | null;
  stepMs: Record<string, number> | null;
};

export type RunRow = {
  offerId: string;
  publisherId: string;
  hour: Date;
  s2s: number;
  pixel: number;
  matched: number;
  s2sOnly: number;
  pixelOnly: number;
  recovered: number;
  refired: number;
  expired: number;
};

const RUN_COLUMNS = `id, window_from, window_to, trigger, state, requested_by, error, started_at, finished_at, totals, root_causes, step_ms`;

type RunRowDb = {
  id: string;
  window_from: Date;
  window_to: Date;
  trigger: Trigger;
  state: RunRecord['state'];
  requested_by: string | null;
  error: string | null;
  started_at: Date;
  finished_at: Date | null;
  totals: Record<string, number> | null;
  root_causes: Record<string, number> | null;
  step_ms: Record<string, number> | null;
};

function toRecord(r: RunRowDb): RunRecord {
  return {
    id: r.id,
    from: r.window_from,
    to: r.window_to,
    trigger: r.trigger,
    state: r.state,
    requestedBy: r.requested_by,
    error: r.error,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    totals: r.totals,
    rootCauses: r.root_causes,
    stepMs: r.step_ms,
  };
}

export async function insertRun(db: Sql, id: string, w: RunWindow, trigger: Trigger, requestedBy: string | null): Promise<void> {
  await db`insert into reconciliation_runs (id, window_from, window_to, trigger, state, requested_by)
           values (${id}, ${w.from.toISOString()}::timestamptz, ${w.to.toISOString()}::timestamptz, ${trigger}, 'running', ${requestedBy})`;
}

/** Called under the run lock: a run still 'running' then belongs to a node that died mid-run. */
export async function failAbandonedRuns(db: Sql): Promise<number> {
  const rows = await db`update reconciliation_runs
    set state = 'failed', error = 'abandoned: the node running it stopped before it finished', finished_at = now()
    where state = 'running' returning 1`;
  return rows.length;
}

/** Sums the run's rows and root causes into the run, and marks it done. */
export async function finishRun(db: Sql, id: string, stepMs: Record<string, number>): Promise<void> {
  await db`
    update reconciliation_runs r
    set state = 'done', finished_at = now(), step_ms = ${db.json(stepMs)},
        totals = (select jsonb_build_object(
                    's2s', coalesce(sum(s2s), 0), 'pixel', coalesce(sum(pixel), 0), 'matched', coalesce(sum(matched), 0),
                    's2sOnly', coalesce(sum(s2s_only), 0), 'pixelOnly', coalesce(sum(pixel_only), 0),
                    'recovered', coalesce(sum(recovered), 0), 'refired', coalesce(sum(refired), 0), 'expired', coalesce(sum(expired), 0))
                  from reconciliation_rows where run_id = r.id),
        root_causes = (select coalesce(jsonb_object_agg(cause, n), '{}'::jsonb)
                       from (select cause, count(*) as n from reconciliation_root_causes where run_id = r.id group by cause) x)
    where id = ${id}`;
}

export async function failRun(db: Sql, id: string, error: string, stepMs: Record<string, number>): Promise<void> {
  await db`update reconciliation_runs set state = 'failed', error = ${error.slice(0, 2000)}, finished_at = now(), step_ms = ${db.json(stepMs)}
           where id = ${id} and state = 'running'`;
}

/** A finished run over exactly this window: a cron tick that another node already served. */
export async function findDoneRun(db: Sql, w: RunWindow, trigger: Trigger): Promise<string | undefined> {
  const [row] = await db<{ id: string }[]>`select id from reconciliation_runs
    where window_from = ${w.from.toISOString()}::timestamptz and window_to = ${w.to.toISOString()}::timestamptz
      and trigger = ${trigger} and state = 'done' limit 1`;
  return row?.id;
}

/**
 * Unix seconds the newest successful run finished, for the "reconciler not run" alert. Walks the
 * started_at index from the newest run and stops at the first done one, so a scrape reads a few rows.
 */
export async function lastSuccessfulRunAt(db: Sql): Promise<number | undefined> {
  const [row] = await db<{ at: number }[]>`select extract(epoch from finished_at)::float8 as at from reconciliation_runs
    where state = 'done' order by started_at desc, id desc limit 1`;
  return row?.at;
}

export async function runningRunId(db: Sql): Promise<string | undefined> {
  const [row] = await db<{ id: string }[]>`select id from reconciliation_runs where state = 'running' order by started_at desc limit 1`;
  return row?.id;
}

/** Deletes runs started before the cutoff with their rows and root causes; returns their IDs. */
export async function pruneRuns(db: Sql, retentionDays: number): Promise<string[]> {
  const rows = await db<{ id: string }[]>`
    with old as (
      select id from reconciliation_runs where started_at < now() - ${retentionDays}::int * interval '1 day' and state <> 'running'
    ), causes as (
      delete from reconciliation_root_causes where run_id in (select id from old)
    ), rows as (
      delete from reconciliation_rows where run_id in (select id from old)
    )
    select id from old`;
  if (rows.length === 0) return [];
  // Runs last: their children are gone once the statement above committed.
  await db`delete from reconciliation_runs where id = any(${rows.map((r) => r.id)}::text[])`;
  return rows.map((r) => r.id);
}

export async function loadRun(db: Sql, id: string): Promise<{ run: RunRecord; rows: RunRow[] } | undefined> {
  const [run] = await db<RunRowDb[]>`select ${db.unsafe(RUN_COLUMNS)} from reconciliation_runs where id = ${id}`;
  if (!run) return undefined;
  const rows = await db<{ offer_id: string; publisher_id: string; hour: Date; s2s: number; pixel: number; matched: number;
    s2s_only: number; pixel_only: number; recovered: number; refired: number; expired: number }[]>`
    select offer_id, publisher_id, hour, s2s, pixel, matched, s2s_only, pixel_only, recovered, refired, expired
    from reconciliation_rows where run_id = ${id} order by hour, offer_id, publisher_id`;
  return {
    run: toRecord(run),
    rows: rows.map((r) => ({
      offerId: r.offer_id,
      publisherId: r.publisher_id,
      hour: r.hour,
      s2s: r.s2s,
      pixel: r.pixel,
      matched: r.matched,
      s2sOnly: r.s2s_only,
      pixelOnly: r.pixel_only,
      recovered: r.recovered,
      refired: r.refired,
      expired: r.expired,
    })),
  };
}

/** Newest first, keyset-paged on (started_at, id). */
export async function listRuns(db: Sql, limit: number, after?: { at: string; id: string }): Promise<(RunRecord & { cursorAt: string })[]> {
  const rows = await db<(RunRowDb & { cursor_at: string })[]>`
    select ${db.unsafe(RUN_COLUMNS)}, to_char(started_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as cursor_at
    from reconciliation_runs
    ${after ? db`where (started_at, id) < (${after.at}::timestamptz, ${after.id})` : db``}
    order by started_at desc, id desc
    limit ${limit}`;
  return rows.map((r) => ({ ...toRecord(r), cursorAt: r.cursor_at }));
}
