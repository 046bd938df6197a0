import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { reconcile, windowNow } from './helpers/reconcile.js';

let t: TestEngine;
beforeAll(async () => {
  t = await startTestEngine();
});
afterAll(async () => {
  await t?.close();
});

/** `name{labels} value` lines of a Prometheus text exposition for one metric name. */
function samples(text: string, name: string): Array<{ labels: string; value: number }> {
  const pattern = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, 'gm');
  return [...text.matchAll(pattern)].map((m) => ({ labels: m[1] ?? '', value: Number(m[2]) }));
}

describe('operations endpoints', () => {
  it('/healthz answers 200 without a token', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('/readyz is ready on a migrated database, and 503 in the contract shape while a migration is missing', async () => {
    const ready = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready' });

    const [last] = await t.sql<{ id: number; name: string }[]>`select id, name from schema_migrations order by id desc limit 1`;
    if (!last) throw new Error('template database has no migrations');
    await t.sql`delete from schema_migrations where id = ${last.id}`;
    try {
      const notReady = await t.app.inject({ method: 'GET', url: '/readyz' });
      expect(notReady.statusCode).toBe(503);
      expect(notReady.json()).toEqual({ error: { code: 'unavailable', message: expect.any(String), requestId: notReady.headers['x-request-id'] } });
    } finally {
      await t.sql`insert into schema_migrations (id, name) values (${last.id}, ${last.name})`;
    }
    expect((await t.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });

  it('/readyz is 503 when the database is unreachable, while /healthz still says the process is up', async () => {
    const lonely = await startTestEngine();
    try {
      await lonely.sql.end({ timeout: 1 });
      const res = await lonely.app.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json().error.code).toBe('unavailable');
      expect((await lonely.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await lonely.close();
    }
  });

  it('/metrics is Prometheus text with request counts, click batch sizes and pool connections', async () => {
    const { offer, publisher } = await seedCatalog(t.app);
    for (let i = 0; i < 3; i++) {
      const res = await t.app.inject({ method: 'GET', url: `/c/${offer.id}?pub=${publisher.id}` });
      expect(res.statusCode).toBe(302);
    }
    await t.engine.clickWriter.flush();
    await t.app.inject({ method: 'GET', url: '/healthz' });

    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.body;
    for (const name of ['postback_engine_http_requests_total', 'postback_engine_db_batch_rows', 'postback_engine_db_pool_connections']) {
      expect(text).toMatch(new RegExp(`^# TYPE ${name} (counter|gauge|histogram)$`, 'm'));
    }

    const healthz = samples(text, 'postback_engine_http_requests_total').find((s) => /route="\/healthz"/.test(s.labels) && /status="200"/.test(s.labels));
    expect(healthz?.value).toBeGreaterThanOrEqual(1);
    const redirects = samples(text, 'postback_engine_http_requests_total').find((s) => /route="\/c\/:offerId"/.test(s.labels) && /status="302"/.test(s.labels));
    expect(redirects?.value).toBe(3);

    const batchedRows = samples(text, 'postback_engine_db_batch_rows_sum').find((s) => s.labels === '{writer="clicks"}');
    expect(batchedRows?.value).toBe(3);
    expect(samples(text, 'postback_engine_db_batch_rows_count').find((s) => s.labels === '{writer="clicks"}')?.value).toBeGreaterThanOrEqual(1);

    const connections = samples(text, 'postback_engine_db_pool_connections');
    expect(connections.length).toBeGreaterThan(0);
    for (const c of connections) {
      expect(c.labels).toMatch(/^\{state="[a-z ()_]+"\}$/);
      expect(Number.isInteger(c.value) && c.value >= 0).toBe(true);
    }
  });

  it('the reconcile gauge starts at the engine start, moves to the last successful run, and ignores failed runs', async () => {
    const startedAt = Date.parse('2001-02-03T04:05:06Z') / 1000;
    const lonely = await startTestEngine({}, { now: () => new Date(startedAt * 1000) });
    try {
      const gauge = async () => samples((await lonely.app.inject({ method: 'GET', url: '/metrics' })).body, 'postback_engine_reconcile_last_success_timestamp_seconds')[0]?.value;
      expect(await gauge()).toBe(startedAt);

      const run = await reconcile(lonely.app, windowNow());
      expect(run.state).toBe('done');
      const [row] = await lonely.sql<{ at: number }[]>`select extract(epoch from finished_at)::float8 as at from reconciliation_runs where id = ${run.id}`;
      expect(row?.at).toBeGreaterThan(startedAt);
      expect(await gauge()).toBe(row?.at);

      // A newer run that failed says nothing about success; a newer one that succeeded moves the gauge.
      await lonely.sql`insert into reconciliation_runs (id, window_from, window_to, trigger, state, started_at, finished_at, error)
        values ('run_failed_later', now() - interval '1 hour', now(), 'api', 'failed', now() + interval '1 hour', now() + interval '1 hour', 'boom')`;
      expect(await gauge()).toBe(row?.at);
      await lonely.sql`insert into reconciliation_runs (id, window_from, window_to, trigger, state, started_at, finished_at)
        values ('run_done_later', now() - interval '1 hour', now(), 'api', 'done', now() + interval '2 hours', 'epoch'::timestamptz + interval '2000000000 seconds')`;
      expect(await gauge()).toBe(2_000_000_000);
    } finally {
      await lonely.close();
    }
  });
});
