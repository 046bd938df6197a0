import { request } from 'node:http';
import { availableParallelism } from 'node:os';
import { Counter, Gauge, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { freePort } from '../src/net/free-port.js';
import { mergeWorkerMetrics } from '../src/ops/cluster-metrics.js';
import { freshDatabase } from './helpers/db.js';
import { ADMIN, TEST_TRAFFIC_FRAUD } from './helpers/engine.js';
import { runCommand, spawnEngine, type EngineProcess } from './helpers/process.js';
import { signedGetUrl, uniqueTx } from './helpers/postback.js';
import { testRedis } from './helpers/redis.js';

/**
 * WORKERS=2: one box, a cluster primary and two engine workers sharing PORT, PostgreSQL and Redis.
 * Every request goes over a connection of its own, so the cluster's round-robin spreads them over
 * both workers; the access log's `pid` says which one answered.
 */

const redis = testRedis();
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

type Answer = { status: number; body: string; location: string | undefined };

/** One request on a fresh TCP connection (no keep-alive), so the cluster may hand it to any worker. */
function once(url: string, opts: { method?: string; body?: object } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = opts.body ? JSON.stringify(opts.body) : undefined;
    const req = request(
      url,
      {
        method: opts.method ?? 'GET',
        agent: false,
        headers: {
          connection: 'close',
          authorization: `Bearer ${ADMIN}`,
          'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, location: res.headers.location }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function created(url: string, body: object): Promise<Record<string, any>> {
  const res = await once(url, { method: 'POST', body });
  expect(res.status, res.body).toBe(201);
  return JSON.parse(res.body);
}

/** Each access-log line's answering process, keyed by the request's route. */
function pidsByRoute(output: string): Map<string, Set<number>> {
  const byRoute = new Map<string, Set<number>>();
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { pid?: number; route?: string; status?: number };
    if (entry.route === undefined || entry.pid === undefined) continue;
    if (!byRoute.has(entry.route)) byRoute.set(entry.route, new Set());
    byRoute.get(entry.route)?.add(entry.pid);
  }
  return byRoute;
}

async function waitFor(what: string, proc: EngineProcess, test: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('WORKERS configuration', () => {
  it('is 1 unset, a count, or one per core with auto; anything else is refused naming the variable', () => {
    const withRedis = { REDIS_URL: 'redis://127.0.0.1:6379' };
    expect(loadConfig({}).workers).toBe(1);
    expect(loadConfig({ ...withRedis, WORKERS: '3' }).workers).toBe(3);
    expect(loadConfig({ ...withRedis, WORKERS: 'auto' }).workers).toBe(availableParallelism());
    for (const bad of ['0', '-1', '1.5', 'two']) {
      expect(() => loadConfig({ ...withRedis, WORKERS: bad }), bad).toThrow(/WORKERS must be a whole number ≥ 1 or "auto"/);
    }
  });

  it('refuses more than one process without REDIS_URL: in-process counters hold for one node only', async () => {
    expect(() => loadConfig({ WORKERS: '2' })).toThrow(ConfigError);
    expect(() => loadConfig({ WORKERS: '2' })).toThrow(/WORKERS=2 needs REDIS_URL/);
    expect(loadConfig({ WORKERS: '1' }).workers).toBe(1);
    // The process stops before it starts anything: exit code 2 and the message, no PostgreSQL.
    const run = await runCommand(process.execPath, ['--import', 'tsx', 'src/main.ts'], { WORKERS: '2', DATA_DIR: '/nonexistent/never-created' });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('WORKERS=2 needs REDIS_URL');
  });
});

describe('metrics merged over the workers', () => {
  it('sums counters and per-process gauges, and takes the maximum of gauges that read shared state', async () => {
    const worker = (postbacks: number, buffered: number, openDeliveries: number) => {
      const registry = new Registry();
      new Counter({ name: 'postback_engine_postbacks_total', help: 'h', labelNames: ['outcome'], registers: [registry] }).inc({ outcome: 'accepted' }, postbacks);
      new Gauge({ name: 'postback_engine_db_batch_buffered_rows', help: 'h', labelNames: ['writer'], registers: [registry] }).set({ writer: 'clicks' }, buffered);
      new Gauge({ name: 'postback_engine_deliveries_open', help: 'h', labelNames: ['state'], registers: [registry] }).set({ state: 'pending' }, openDeliveries);
      return registry.getMetricsAsJSON();
    };
    const text = await mergeWorkerMetrics([await worker(3, 2, 7), await worker(4, 5, 7)]);
    expect(text).toMatch(/^postback_engine_postbacks_total\{outcome="accepted"\} 7$/m);
    expect(text).toMatch(/^postback_engine_db_batch_buffered_rows\{writer="clicks"\} 7$/m);
    // Seven open deliveries in PostgreSQL, seen by both workers: seven, not fourteen.
    expect(text).toMatch(/^postback_engine_deliveries_open\{state="pending"\} 7$/m);
  });
});

describe.skipIf(redis.url === null)('an engine box with WORKERS=2', () => {
  it('serves from both workers, keeps one conversion per txid across them, answers /metrics for the box, replaces a dead worker and exits 0 on SIGTERM with requests in flight', { timeout: 180_000 }, async () => {
    const db = await freshDatabase();
    cleanups.push(() => db.drop());
    const proc = await spawnEngine({ DATABASE_URL: db.url, REDIS_URL: redis.url as string, ADMIN_TOKEN: ADMIN, WORKERS: '2', ACCESS_LOG: 'true', LOG_LEVEL: 'info' });
    cleanups.push(() => proc.kill());
    await proc.ready(120_000);

    const advertiser = await created(`${proc.url}/v1/advertisers`, { name: 'Acme', ipAllowlist: [], auth: ['hmac'] });
    const publisher = await created(`${proc.url}/v1/publishers`, { name: 'Pub', postbackUrl: 'https://pub.example/pb?c={clickid}' });
    const offer = await created(`${proc.url}/v1/offers`, {
      advertiserId: advertiser.id,
      name: 'Offer',
      url: 'https://adv.example/lp?cid={clickid}',
      payout: '2.50',
      currency: 'USD',
      fraud: TEST_TRAFFIC_FRAUD,
    });
    const whsec = advertiser.secrets[0].secret as string;
    // The catalog reaches the other worker by NOTIFY; a click it cannot resolve yet would be a 404.
    const clickUrl = `${proc.url}/c/${offer.id}?pub=${publisher.id}`;
    const clicks: string[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await once(clickUrl);
      if (res.status === 302) clicks.push(new URL(res.location as string).searchParams.get('cid') as string);
    }
    expect(clicks.length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 300)); // the click batch writer flushes within ~20 ms
    const postback = (txid: string, clickid: string) => once(proc.url + signedGetUrl(advertiser.id, `clickid=${clickid}&txid=${encodeURIComponent(txid)}&payout=2.50`, whsec));

    // Distinct postbacks, one connection each: every one a new conversion, served by both workers.
    const distinct = await Promise.all(clicks.map((cid) => postback(uniqueTx(), cid)));
    expect(distinct.map((a) => a.status)).toEqual(clicks.map(() => 200));
    const workerPids = pidsByRoute(proc.output()).get('/postback/:advertiserId') ?? new Set();
    expect(workerPids.size, proc.output()).toBe(2);
    expect(workerPids.has(proc.child.pid as number)).toBe(false);

    // One txid sent ten times at once over both workers: one conversion, one first answer, the same ID everywhere.
    const txid = uniqueTx();
    const same = await Promise.all(Array.from({ length: 10 }, () => postback(txid, clicks[0] as string)));
    expect(same.map((a) => a.status)).toEqual(Array(10).fill(200));
    const bodies = same.map((a) => JSON.parse(a.body) as { conversionId: string; duplicate: boolean });
    expect(new Set(bodies.map((b) => b.conversionId)).size).toBe(1);
    expect(bodies.filter((b) => !b.duplicate)).toHaveLength(1);
    const rows = await db.sql<{ id: string }[]>`select id from conversions where txid = ${txid}`;
    expect(rows.map((r) => r.id)).toEqual([bodies[0]?.conversionId]);

    // /metrics answers for the box whichever worker takes the scrape: both scrapes count every postback.
    const sent = distinct.length + same.length;
    for (let i = 0; i < 2; i++) {
      const metrics = await once(`${proc.url}/metrics`);
      const outcomes = [...metrics.body.matchAll(/^postback_engine_postbacks_total\{outcome="[a-z_]+"\} (\d+)$/gm)].map((m) => Number(m[1]));
      expect(outcomes.reduce((a, b) => a + b, 0), metrics.body).toBe(sent);
    }

    // A worker killed outright is replaced, and the box keeps answering meanwhile.
    const victim = [...workerPids][0] as number;
    process.kill(victim, 'SIGKILL');
    await waitFor('a replacement worker', proc, () => /engine worker exited; starting a replacement/.test(proc.output()));
    expect((await once(`${proc.url}/healthz`)).status).toBe(200);
    await waitFor('the replacement listening', proc, () => (proc.output().match(/"msg":"postback engine listening"/g) ?? []).length >= 4);

    // SIGTERM to the primary with postbacks in flight: each one answered 200 is in PostgreSQL, and the box exits 0.
    const inFlight = clicks.map((cid) => {
      const tx = uniqueTx();
      return postback(tx, cid).then(
        (a) => ({ tx, status: a.status }),
        () => ({ tx, status: 0 }),
      );
    });
    await new Promise((r) => setTimeout(r, 5));
    proc.child.kill('SIGTERM');
    const answered = await Promise.all(inFlight);
    expect(await proc.exited, proc.output()).toEqual({ code: 0, signal: null });
    expect(proc.output()).not.toMatch(/drain took too long|error while draining|did not exit cleanly/);
    const ok = answered.filter((a) => a.status === 200).map((a) => a.tx);
    const kept = ok.length === 0 ? [] : await db.sql<{ txid: string }[]>`select txid from conversions where txid in ${db.sql(ok)}`;
    expect(kept.map((r) => r.txid).sort()).toEqual(ok.sort());
    expect(answered.every((a) => a.status === 200 || a.status === 0 || a.status === 503)).toBe(true);
  });

  it('serves METRICS_PORT from the primary, token required, counting what every worker answered', { timeout: 120_000 }, async () => {
    const db = await freshDatabase();
    cleanups.push(() => db.drop());
    const metricsPort = await freePort();
    const token = 'metrics-token-0123456789';
    const proc = await spawnEngine({ DATABASE_URL: db.url, REDIS_URL: redis.url as string, ADMIN_TOKEN: ADMIN, WORKERS: '2', METRICS_PORT: String(metricsPort), METRICS_TOKEN: token, ACCESS_LOG: 'true', LOG_LEVEL: 'info' });
    cleanups.push(() => proc.kill());
    await proc.ready(120_000);
    for (let i = 0; i < 8; i++) expect((await once(`${proc.url}/healthz`)).status).toBe(200);
    expect((await once(`${proc.url}/metrics`)).status).toBe(404);

    const scrape = (authorization?: string) =>
      fetch(`http://127.0.0.1:${metricsPort}/metrics`, authorization ? { headers: { authorization } } : {}).then(async (res) => ({ status: res.status, text: await res.text() }));
    expect((await scrape()).status).toBe(401);
    const ok = await scrape(`Bearer ${token}`);
    expect(ok.status).toBe(200);
    expect(ok.text).toMatch(/^postback_engine_http_requests_total\{route="\/healthz",method="GET",status="200"\} 8$/m);

    proc.child.kill('SIGTERM');
    expect(await proc.exited, proc.output()).toEqual({ code: 0, signal: null });
  });
});
