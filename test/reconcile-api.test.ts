import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RECONCILE_LOCK_KEY } from '../src/reconcile/lock.js';
import { REPORTS_DIR } from '../src/reconcile/reconciler.js';
import { countRows, createToken, expectApiError } from './helpers/admin.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { mintClick, uniqueTx } from './helpers/postback.js';
import { runReconcileCli } from './helpers/process.js';
import { firePixel, reconcile, removeRunFiles, sleep, startRun, windowNow, type RunBody } from './helpers/reconcile.js';

/** The reconciliation API's edges (roles, validation, listing, root-cause export), its CSV and HTML downloads, the lock and the CLI. */

let t: TestEngine;
let seeded: Awaited<ReturnType<typeof seedCatalog>>;

beforeAll(async () => {
  t = await startTestEngine({ pixelGraceS: 0 });
  seeded = await seedCatalog(t.app);
});
afterAll(async () => {
  if (t) await removeRunFiles(t.sql, t.engine.reconciler.reportsDir);
  await t?.close();
});

describe('roles and validation', () => {
  it('needs a finance (or admin) token', async () => {
    const analyst = await createToken(t.app, 'analyst');
    const finance = await createToken(t.app, 'finance');
    expectApiError(await t.app.inject({ method: 'POST', url: '/v1/reconciliations', payload: windowNow() }), 401, 'unauthorized');
    expectApiError(await startRun(t.app, windowNow(), analyst.token), 403, 'forbidden');
    expectApiError(await t.app.inject({ url: '/v1/reconciliations', headers: auth(analyst.token) }), 403, 'forbidden');
    const res = await startRun(t.app, windowNow(), finance.token);
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().requestedBy).toContain(finance.id);
  });

  it('refuses a bad window with every bad field named, and records no run', async () => {
    const runs = await countRows(t.sql, 'reconciliation_runs');
    const cases: [unknown, string[]][] = [
      [{}, ['from', 'to']],
      [{ from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' }, ['to']],
      [{ from: '2026-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z' }, ['to']],
      [{ from: '2026-01-01T00:00:00Z', to: '2026-02-02T00:00:01Z' }, ['to']],
      [{ from: '2026-01-01T10:00:00', to: '2026-01-02T00:00:00Z' }, ['from']],
      [{ from: '2026-13-01T00:00:00Z', to: 'tomorrow' }, ['from', 'to']],
      [{ from: 1767225600, to: '2026-01-02T00:00:00Z' }, ['from']],
      [{ ...windowNow(), dryRun: true }, ['dryRun']],
    ];
    for (const [payload, paths] of cases) {
      const res = await t.app.inject({ method: 'POST', url: '/v1/reconciliations', headers: auth(), payload: payload as object });
      expectApiError(res, 400, 'invalid_request', paths);
    }
    expectApiError(
      await t.app.inject({ method: 'POST', url: '/v1/reconciliations', headers: { ...auth(), 'content-type': 'application/json' }, payload: '{"from":' }),
      400,
      'invalid_request',
    );
    expect(await countRows(t.sql, 'reconciliation_runs')).toBe(runs);
  });

  it('404s an unknown run and lists runs newest first, page by page', async () => {
    expectApiError(await t.app.inject({ url: '/v1/reconciliations/rec_nope', headers: auth() }), 404, 'not_found');
    expectApiError(await t.app.inject({ url: '/v1/reconciliations/rec_nope/root-causes', headers: auth() }), 404, 'not_found');
    const made: string[] = [];
    for (let i = 0; i < 3; i++) made.push((await reconcile(t.app, windowNow())).id);
    const first = await t.app.inject({ url: '/v1/reconciliations?limit=2', headers: auth() });
    expect(first.statusCode).toBe(200);
    expect(first.json().items.map((r: { id: string }) => r.id)).toEqual([made[2], made[1]]);
    expect(first.json().items[0]).toMatchObject({ state: 'done', trigger: 'api', totals: { s2s: 0 } });
    const second = await t.app.inject({ url: `/v1/reconciliations?limit=2&cursor=${first.json().nextCursor}`, headers: auth() });
    expect(second.json().items[0].id).toBe(made[0]);
    expectApiError(await t.app.inject({ url: '/v1/reconciliations?cursor=garbage', headers: auth() }), 400, 'invalid_request', ['cursor']);
    expectApiError(await t.app.inject({ url: '/v1/reconciliations?limit=0', headers: auth() }), 400, 'invalid_request', ['limit']);
  });
});

describe('what a run leaves behind', () => {
  let run: RunBody;
  let txid: string;
  let clickId: string;

  beforeAll(async () => {
    clickId = await mintClick(t.app, seeded.offer.id, seeded.publisher.id);
    txid = uniqueTx();
    await firePixel(t.app, clickId, txid);
    await t.engine.pixelWriter.flush();
    run = await reconcile(t.app, windowNow());
  });

  it('GET returns the run as POST did, with rows, totals and root causes', async () => {
    const res = await t.app.inject({ url: `/v1/reconciliations/${run.id}`, headers: auth() });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(run);
    expect(Object.keys(run.rows[0] ?? {}).sort()).toEqual(
      ['expired', 'hour', 'matched', 'offerId', 'offerName', 'pixel', 'pixelOnly', 'publisherId', 'publisherName', 'recovered', 'refired', 's2s', 's2sOnly'].sort(),
    );
    // Named from the catalog: finance may not list offers or publishers.
    expect(run.rows[0]).toMatchObject({ offerId: seeded.offer.id, offerName: seeded.offer.name, publisherId: seeded.publisher.id, publisherName: seeded.publisher.name });
    expect(run.totals).toEqual({ s2s: 0, pixel: 1, matched: 0, s2sOnly: 0, pixelOnly: 1, recovered: 1, refired: 0, expired: 0 });
    expect(run.rootCauses).toEqual({ never_attempted: 1 });
  });

  it('exports the root causes as CSV for the advertiser', async () => {
    const res = await t.app.inject({ url: `/v1/reconciliations/${run.id}/root-causes?format=csv`, headers: auth() });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    expect(res.body).toContain('\r\n');
    const records = parse(res.body, { columns: true }) as Record<string, string>[];
    expect(records).toEqual([
      expect.objectContaining({ clickid: clickId, txid, cause: 'never_attempted', recovered: 'true', offerId: seeded.offer.id, errorCode: '' }),
    ]);
  });

  it('serves the run as CSV (the rows) and as a self-contained HTML page with the chart, from the database', async () => {
    const csvRes = await t.app.inject({ url: `/v1/reconciliations/${run.id}?format=csv`, headers: auth() });
    expect(csvRes.statusCode, csvRes.body).toBe(200);
    expect(csvRes.headers['content-type']).toBe('text/csv; charset=utf-8; header=present');
    expect(csvRes.headers['content-disposition']).toBe(`attachment; filename="reconciliation-${run.id}.csv"`);
    const csv = csvRes.body;
    const records = parse(csv, { columns: true, cast: (v, ctx) => (ctx.header || !/^\d+$/.test(v) ? v : Number(v)) }) as Record<string, unknown>[];
    expect(records).toEqual(run.rows.map(({ offerName: _offer, publisherName: _publisher, ...r }) => r));
    const stored = await t.sql`select count(*)::int as n from reconciliation_rows where run_id = ${run.id}`;
    expect(records.length).toBe(stored[0]?.n);
    expect(csv.split('\r\n')[0]).toBe('hour,offerId,publisherId,s2s,pixel,matched,s2sOnly,pixelOnly,recovered,refired,expired');
    const htmlRes = await t.app.inject({ url: `/v1/reconciliations/${run.id}?format=html`, headers: auth() });
    expect(htmlRes.statusCode).toBe(200);
    expect(htmlRes.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(htmlRes.headers['content-disposition']).toBe(`attachment; filename="reconciliation-${run.id}.html"`);
    expect(htmlRes.headers['content-security-policy']).toMatch(/^default-src 'none'/);
    const html = htmlRes.body;
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<svg');
    expect(html).toContain(run.id);
    expect(html).toContain('never_attempted');
    // Self-contained: nothing fetched from anywhere.
    expect(html).not.toMatch(/\s(src|href)=|@import|url\((?!#)|<script/i);
    expect(html.length).toBeGreaterThan(1000);
    // An engine node leaves no file on its own disk: every node serves the same from PostgreSQL.
    expect(t.engine.reconciler.reportsDir).toBeNull();
    for (const ext of ['csv', 'html']) await expect(stat(join(REPORTS_DIR, `reconciliation-${run.id}.${ext}`))).rejects.toThrow(/ENOENT/);
  });

  it('refuses another format with the contract 400, and an unknown run with 404, in any format', async () => {
    expectApiError(await t.app.inject({ url: `/v1/reconciliations/${run.id}?format=pdf`, headers: auth() }), 400, 'invalid_request', ['format']);
    expectApiError(await t.app.inject({ url: `/v1/reconciliations/${run.id}?format=csv&x=1`, headers: auth() }), 400, 'invalid_request', ['x']);
    for (const format of ['json', 'csv', 'html']) expectApiError(await t.app.inject({ url: `/v1/reconciliations/rec_nope?format=${format}`, headers: auth() }), 404, 'not_found');
    const analyst = await createToken(t.app, 'analyst');
    expectApiError(await t.app.inject({ url: `/v1/reconciliations/${run.id}?format=csv`, headers: auth(analyst.token) }), 403, 'forbidden');
  });
});

describe('one run at a time', () => {
  it('a run waits for the lock another node holds, and gives up after its wait', async () => {
    const holder = await t.sql.reserve();
    try {
      await holder`select pg_advisory_lock(${RECONCILE_LOCK_KEY})`;
      const tried = await t.engine.reconciler.run({ ...windowDates(), trigger: 'cron', waitMs: 0 });
      expect(tried.kind).toBe('busy');
      const started = Date.now();
      const waited = await t.engine.reconciler.run({ ...windowDates(), trigger: 'api', waitMs: 300 });
      expect(waited.kind).toBe('busy');
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      const pending = t.engine.reconciler.run({ ...windowDates(), trigger: 'api', waitMs: 10_000 });
      await sleep(200);
      await holder`select pg_advisory_unlock(${RECONCILE_LOCK_KEY})`;
      expect((await pending).kind).toBe('done');
    } finally {
      holder.release();
    }
  });

  it('marks a run left "running" by a node that died as failed', async () => {
    await t.sql`insert into reconciliation_runs (id, window_from, window_to, trigger, state) values ('rec_dead', now() - interval '1 hour', now(), 'cron', 'running')`;
    await reconcile(t.app, windowNow());
    const [dead] = await t.sql`select state, error, finished_at from reconciliation_runs where id = 'rec_dead'`;
    expect(dead).toMatchObject({ state: 'failed' });
    expect(dead?.error).toMatch(/abandoned/);
    expect(dead?.finished_at).not.toBeNull();
  });
});

describe('npm run reconcile', () => {
  const cli = (args: string[]) => runReconcileCli({ DATABASE_URL: t.url }, args);

  it('runs the same reconciliation from the command line', async () => {
    const w = windowNow();
    const out = await cli(['--from', w.from, '--to', w.to, '--json']);
    expect(out.code, out.stderr).toBe(0);
    const body = JSON.parse(out.stdout) as RunBody;
    expect(body).toMatchObject({ from: w.from, to: w.to, trigger: 'cli', state: 'done' });
    // Progress: one line per slice and step without a terminal, ending with the report files.
    expect(out.stderr).toMatch(/\[(\d+)\/\1\] report files/);
    expect(out.stderr).toMatch(/\[1\/\d+\] root causes/);
    const [row] = await t.sql`select trigger, state from reconciliation_runs where id = ${body.id}`;
    expect(row).toEqual({ trigger: 'cli', state: 'done' });
  }, 60_000);

  it('refuses bad arguments with exit code 2 and the usage', async () => {
    for (const args of [['--from', 'yesterday'], ['--from', '2026-01-02T00:00:00Z', '--to', '2026-01-01T00:00:00Z'], ['--bogus']]) {
      const out = await cli(args);
      expect(out.code, out.stderr).toBe(2);
      expect(out.stderr).toContain('usage: npm run reconcile');
    }
  }, 60_000);
});

function windowDates() {
  const w = windowNow();
  return { from: new Date(w.from), to: new Date(w.to) };
}

describe('a node that stops', () => {
  it('stops a run in progress after its current statement: 503, the run failed, the lock free', async () => {
    // A month, so the run has many slices to work through when the node starts to stop.
    const to = new Date();
    const from = new Date(to.getTime() - 30 * 86_400_000);
    const pending = startRun(t.app, { from: from.toISOString(), to: to.toISOString() });
    for (let i = 0; i < 100; i++) {
      const [running] = await t.sql`select id from reconciliation_runs where state = 'running'`;
      if (running) break;
      await sleep(10);
    }
    t.engine.reconciler.interrupt();
    const res = await pending;
    expectApiError(res, 503, 'unavailable');
    const [last] = await t.sql`select state, error from reconciliation_runs order by started_at desc limit 1`;
    expect(last).toMatchObject({ state: 'failed' });
    expect(last?.error).toMatch(/shutting down/);
    const holder = await t.sql.reserve();
    try {
      const [lock] = await holder`select pg_try_advisory_lock(${RECONCILE_LOCK_KEY}) as ok`;
      expect(lock?.ok).toBe(true);
      await holder`select pg_advisory_unlock(${RECONCILE_LOCK_KEY})`;
    } finally {
      holder.release();
    }
    expectApiError(await startRun(t.app, windowNow()), 503, 'unavailable');
  });
});
