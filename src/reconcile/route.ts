import type { FastifyInstance } from 'fastify';
import { stringify } from 'csv-stringify/sync';
import { z } from 'zod';
import { requireRole } from '../auth/guard.js';
import { isDatabaseUnavailable } from '../db/database.js';
import type { Engine } from '../engine.js';
import { ApiError, invalidRequest } from '../errors.js';
import { parse } from '../http/validate.js';
import { bothDates, isoTime } from '../reports/iso-time.js';
import { RunFailed } from './reconciler.js';
import { MAX_WINDOW_DAYS } from './window.js';
import { listRootCauses, ROOT_CAUSES, type RootCauseItem, type RootCauseKey } from './root-causes.js';
import { runCsv } from '../reports/run-files.js';
import { renderRunHtml } from '../reports/run-html.js';
import { listRuns, loadRun } from './runs-store.js';
import { namedRunView, runSummaryView } from './views.js';

/**
 * CONTRACT §7 over HTTP (finance; admin has every role): start a run and wait for it, read a run,
 * list runs, and a run's root causes (JSON pages, or every one as CSV for the advertiser).
 */

/** A request waits this long for a run in progress on another node before answering 409. */
export const API_LOCK_WAIT_MS = 60_000;
const ROOT_CAUSE_CSV_PAGE = 5_000;

export const runBody = z
  .object({ from: isoTime, to: isoTime })
  .strict()
  .superRefine((b, ctx) => {
    const dates = bothDates(b.from, b.to);
    if (!dates) return;
    const [from, to] = dates;
    if (from.getTime() >= to.getTime()) ctx.addIssue({ code: 'custom', path: ['to'], message: 'must be after from' });
    else if (to.getTime() - from.getTime() > MAX_WINDOW_DAYS * 86_400_000) {
      ctx.addIssue({ code: 'custom', path: ['to'], message: `the window may span at most ${MAX_WINDOW_DAYS} days` });
    }
  });

const cursorText = z.string().max(512).optional();
/** One run as JSON (CONTRACT §7), or its rows as CSV, or its page with the chart as HTML, from the stored rows. */
export const runQuery = z.object({ format: z.enum(['json', 'csv', 'html']).default('json') }).strict();
/** The report page has inline CSS and SVG and nothing else: opened straight from the API, it may run nothing. */
const REPORT_HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
export const listQuery = z.object({ limit: z.coerce.number().int().min(1).max(200).default(50), cursor: cursorText }).strict();
export const causesQuery = z
  .object({
    cause: z.enum(ROOT_CAUSES).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    cursor: cursorText,
    format: z.enum(['json', 'csv']).default('json'),
  })
  .strict();

const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
function decode<T>(text: string, valid: (v: unknown) => v is T): T {
  try {
    const value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown;
    if (valid(value)) return value;
  } catch {
    // fall through to the 400
  }
  throw invalidRequest([{ path: 'cursor', message: 'is not a cursor returned by this API' }]);
}
const strings = (n: number) => (v: unknown): v is string[] => Array.isArray(v) && v.length === n && v.every((x) => typeof x === 'string');

type IdParams = { Params: { id: string } };

export function registerReconcileRoutes(app: FastifyInstance, engine: Engine): void {
  const finance = requireRole(engine.tokens, 'finance');
  // A stopping node must not keep its HTTP drain waiting for a long run: the run stops after its
  // current statement (each is idempotent) and the next run, on any node, does the rest.
  app.addHook('preClose', async () => engine.reconciler.interrupt());

  app.post('/v1/reconciliations', { onRequest: finance }, async (request, reply) => {
    const body = parse(runBody, request.body);
    let outcome;
    try {
      outcome = await engine.reconciler.run({
        from: body.from,
        to: body.to,
        trigger: 'api',
        requestedBy: request.principal ? `${request.principal.name} (${request.principal.tokenId})` : null,
        waitMs: API_LOCK_WAIT_MS,
      });
    } catch (err) {
      if (engine.reconciler.stopping) throw new ApiError('unavailable', 'This node is shutting down; run the reconciliation again (on any node).');
      if (!(err instanceof RunFailed)) throw err;
      if (isDatabaseUnavailable(err.cause)) throw new ApiError('unavailable', 'PostgreSQL became unreachable during the run; run it again.');
      request.log.error({ err }, 'reconciliation run failed');
      throw new ApiError('internal_error', `Reconciliation run ${err.runId} failed; GET /v1/reconciliations/${err.runId} shows how far it got.`, {
        extra: { runId: err.runId },
      });
    }
    if (outcome.kind !== 'done') {
      const running = outcome.kind === 'busy' ? outcome.runningId : undefined;
      throw new ApiError('conflict', `Another reconciliation run${running ? ` (${running})` : ''} is still in progress; retry when it has finished.`, {
        extra: running ? { runningRunId: running } : {},
      });
    }
    const loaded = await loadRun(engine.sql, outcome.id);
    if (!loaded) throw new ApiError('internal_error');
    return reply.code(201).send(namedRunView(loaded.run, loaded.rows, engine.catalog));
  });

  app.get('/v1/reconciliations', { onRequest: finance }, async (request) => {
    const q = parse(listQuery, request.query);
    const after = q.cursor ? decode(q.cursor, strings(2)) : undefined;
    const runs = await listRuns(engine.sql, q.limit + 1, after ? { at: after[0] as string, id: after[1] as string } : undefined);
    const page = runs.slice(0, q.limit);
    const last = page[page.length - 1];
    return { items: page.map(runSummaryView), nextCursor: runs.length > q.limit && last ? encode([last.cursorAt, last.id]) : null };
  });

  app.get<IdParams>('/v1/reconciliations/:id', { onRequest: finance }, async (request, reply) => {
    const { format } = parse(runQuery, request.query);
    const loaded = await loadRun(engine.sql, request.params.id);
    if (!loaded) throw new ApiError('not_found', 'No such reconciliation run.');
    const file = `reconciliation-${loaded.run.id}`;
    if (format === 'csv') {
      return reply
        .header('content-type', 'text/csv; charset=utf-8; header=present')
        .header('content-disposition', `attachment; filename="${file}.csv"`)
        .send(runCsv(loaded.rows));
    }
    if (format === 'html') {
      return reply
        .header('content-type', 'text/html; charset=utf-8')
        .header('content-disposition', `attachment; filename="${file}.html"`)
        .header('content-security-policy', REPORT_HTML_CSP)
        .send(renderRunHtml(loaded.run, loaded.rows));
    }
    return namedRunView(loaded.run, loaded.rows, engine.catalog);
  });

  app.get<IdParams>('/v1/reconciliations/:id/root-causes', { onRequest: finance }, async (request, reply) => {
    const q = parse(causesQuery, request.query);
    const loaded = await engine.sql`select 1 from reconciliation_runs where id = ${request.params.id}`;
    if (loaded.length === 0) throw new ApiError('not_found', 'No such reconciliation run.');
    if (q.format === 'csv') {
      const all: RootCauseItem[] = [];
      let after: RootCauseKey | undefined;
      for (;;) {
        const page = await listRootCauses(engine.sql, request.params.id, { cause: q.cause, limit: ROOT_CAUSE_CSV_PAGE, after });
        all.push(...page.items);
        if (page.items.length < ROOT_CAUSE_CSV_PAGE) break;
        after = page.last;
      }
      const csv = stringify(all, {
        header: true,
        columns: ROOT_CAUSE_COLUMNS,
        record_delimiter: 'windows',
        escape_formulas: true,
        cast: { boolean: (v) => (v ? 'true' : 'false') },
      });
      return reply
        .header('content-type', 'text/csv; charset=utf-8; header=present')
        .header('content-disposition', `attachment; filename="root-causes-${request.params.id}.csv"`)
        .send(csv);
    }
    const after = q.cursor ? (decode(q.cursor, strings(3)) as RootCauseKey) : undefined;
    const page = await listRootCauses(engine.sql, request.params.id, { cause: q.cause, limit: q.limit + 1, after });
    const items = page.items.slice(0, q.limit);
    const last = items[items.length - 1];
    return {
      items,
      nextCursor: page.items.length > q.limit && last ? encode([last.advertiserId, last.txid, last.clickid]) : null,
    };
  });
}

const ROOT_CAUSE_COLUMNS = [
  'advertiserId', 'offerId', 'publisherId', 'clickid', 'txid', 'event', 'pixelAt', 'cause', 'errorCode', 'reason',
  'refusedAttempts', 'lastAttemptAt', 'rateLimited', 'conversionId', 'recovered',
];
