import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { REPORTS_DIR } from '../src/reconcile/reconciler.js';
import { freshDatabase } from './helpers/db.js';
import { ADMIN } from './helpers/engine.js';
import { spawnEngine, type EngineProcess } from './helpers/process.js';
import { removeRunFiles, sleep, type RunBody } from './helpers/reconcile.js';

/**
 * Two real engine processes on one PostgreSQL: runs started at once on both, and the schedule on
 * both, never recover twice, never overlap, and a run repeated over its window changes nothing.
 */

const headers = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };

async function api(node: EngineProcess, path: string, body?: object) {
  const res = await fetch(`${node.url}${path}`, body ? { method: 'POST', headers, body: JSON.stringify(body) } : { headers });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** A catalog through node A, and a pixel-only conversion (a click and its pixel, never an S2S postback) on node B. */
async function pixelOnlyConversion(a: EngineProcess, b: EngineProcess): Promise<{ txid: string; offerId: string }> {
  const adv = await api(a, '/v1/advertisers', { name: 'A', ipAllowlist: [], auth: ['hmac'] });
  const pub = await api(a, '/v1/publishers', { name: 'P', postbackUrl: 'https://pub.example/pb?c={clickid}' });
  const offer = await api(a, '/v1/offers', { advertiserId: adv.body.id, name: 'O', url: 'https://adv.example/?cid={clickid}', payout: '1.00', currency: 'EUR' });
  expect(offer.status).toBe(201);
  let location: string | null = null;
  for (let i = 0; i < 50 && !location; i++) {
    const res = await fetch(`${b.url}/c/${offer.body.id}?pub=${pub.body.id}`, { redirect: 'manual' });
    if (res.status === 302) location = res.headers.get('location');
    else await sleep(100);
  }
  const clickid = new URL(location as string).searchParams.get('cid');
  const txid = `tx_${randomBytes(6).toString('hex')}`;
  const gif = await fetch(`${b.url}/pixel.gif?clickid=${clickid}&txid=${txid}`);
  expect(gif.headers.get('content-type')).toBe('image/gif');
  return { txid, offerId: offer.body.id };
}

let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;
let nodes: EngineProcess[] = [];

afterEach(async () => {
  for (const n of nodes) n.kill();
  await Promise.all(nodes.map((n) => n.exited));
  nodes = [];
  if (db) {
    await removeRunFiles(db.sql, REPORTS_DIR);
    await db.drop();
  }
  db = undefined;
});
afterAll(async () => {
  for (const n of nodes) n.kill();
});

describe('two engine processes', () => {
  it('two runs started at once over the same window recover once; the second finds nothing to change', async () => {
    db = await freshDatabase();
    const env = { DATABASE_URL: db.url, ADMIN_TOKEN: ADMIN, PIXEL_GRACE_S: '1' };
    nodes = await Promise.all([spawnEngine(env), spawnEngine(env)]);
    const [a, b] = nodes as [EngineProcess, EngineProcess];
    await Promise.all([a.ready(), b.ready()]);
    const { txid, offerId } = await pixelOnlyConversion(a, b);
    await sleep(1500);

    const window = { from: new Date(Date.now() - 3600_000).toISOString(), to: new Date(Date.now() + 60_000).toISOString() };
    const [ra, rb] = await Promise.all([api(a, '/v1/reconciliations', window), api(b, '/v1/reconciliations', window)]);
    expect([ra.status, rb.status]).toEqual([201, 201]);
    const runs = [ra.body, rb.body] as RunBody[];
    expect(runs.map((r) => r.totals.recovered).sort()).toEqual([0, 1]);
    for (const r of runs) expect(r.totals).toMatchObject({ pixel: 1, pixelOnly: 1, s2s: 0 });
    const conversions = await db.sql`select source, decision, offer_id, payout_minor, currency from conversions where txid = ${txid}`;
    expect(conversions).toEqual([{ source: 'pixel', decision: 'flagged', offer_id: offerId, payout_minor: 100n, currency: 'EUR' }]);
    const history = await db.sql`select count(*)::int as n from conversion_status_history`;
    expect(history[0]?.n).toBe(1);

    // Serialised by the lock: one run finished before the other started.
    const stored = await db.sql`select started_at, finished_at from reconciliation_runs order by started_at`;
    expect(stored).toHaveLength(2);
    expect((stored[1]?.started_at as Date).getTime()).toBeGreaterThanOrEqual((stored[0]?.finished_at as Date).getTime());
  }, 90_000);

  it('RECONCILE_CRON on both nodes: each tick runs on exactly one node, and runs never overlap', async () => {
    db = await freshDatabase();
    const env = { DATABASE_URL: db.url, ADMIN_TOKEN: ADMIN, PIXEL_GRACE_S: '1', REFIRE_WINDOW_S: '3600', RECONCILE_CRON: '*/2 * * * * *' };
    nodes = await Promise.all([spawnEngine(env), spawnEngine(env)]);
    const [a, b] = nodes as [EngineProcess, EngineProcess];
    await Promise.all([a.ready(), b.ready()]);
    const { txid } = await pixelOnlyConversion(a, b);
    // Long enough for several ticks after the grace period.
    await sleep(7000);

    // Ticks keep coming every 2 s: read the runs between two of them, when none is still running.
    let runs = await db.sql`select id, trigger, state, window_from, window_to, started_at, finished_at from reconciliation_runs order by started_at`;
    for (let tries = 0; runs.some((r) => r.state === 'running') && tries < 100; tries++) {
      await sleep(50);
      runs = await db.sql`select id, trigger, state, window_from, window_to, started_at, finished_at from reconciliation_runs order by started_at`;
    }
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(runs.every((r) => r.trigger === 'cron' && r.state === 'done')).toBe(true);
    const ends = runs.map((r) => (r.window_to as Date).getTime());
    expect(new Set(ends).size).toBe(ends.length);
    for (const end of ends) expect(end % 2000).toBe(0);
    for (const r of runs) expect((r.window_to as Date).getTime() - (r.window_from as Date).getTime()).toBe(3600_000);
    for (let i = 1; i < runs.length; i++) {
      expect((runs[i]?.started_at as Date).getTime()).toBeGreaterThanOrEqual((runs[i - 1]?.finished_at as Date).getTime());
    }
    expect(await db.sql`select id from conversions where txid = ${txid}`).toHaveLength(1);
    const recovered = await db.sql`select coalesce(sum(recovered), 0)::int as n from reconciliation_rows`;
    expect(recovered[0]?.n).toBe(1);
  }, 90_000);
});
