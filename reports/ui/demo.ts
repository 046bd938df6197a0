/**
 * A throwaway engine with demo data for looking at the web UI (src/ui) in a browser:
 *
 *   npx tsx reports/ui/demo.ts [--port 8099] [--stub-missing]
 *
 * Starts an embedded PostgreSQL under a fresh /tmp directory, the real engine (real fraud scorer) on
 * 127.0.0.1:<port>, seeds advertisers, publishers, offers, clicks and signed postbacks (some clean, some
 * that the fraud rules flag), creates an analyst and a finance token, and prints sign-in URLs of the form
 * `/ui/#token=...`. Nothing here is part of the engine or the test suite.
 *
 * `--stub-missing` registers stand-ins, shaped as CONTRACT §7/§8 describes, for the review, reconciliation
 * and payout-report routes, but only for routes this build does not have yet, so the UI can be looked at
 * before they land. They are crude (they read the conversions table) and never used by the engine.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { requireRole } from '../../src/auth/guard.js';
import { testConfig } from '../../src/config.js';
import { connect, type Sql } from '../../src/db/database.js';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { migrate } from '../../src/db/migrate.js';
import { createEngine, type Engine } from '../../src/engine.js';
import { ApiError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { formatMoney } from '../../src/money.js';
import { mintClick, signedGetUrl, uniqueTx } from '../../test/helpers/postback.js';

const ADMIN = 'demo-admin-token-0123456789';
const args = process.argv.slice(2);
const port = Number(args[args.indexOf('--port') + 1] ?? 8099) || 8099;
const stubMissing = args.includes('--stub-missing');

const dataDir = mkdtempSync(path.join(tmpdir(), 'pbe-ui-demo-'));
chmodSync(dataDir, 0o755); // PostgreSQL runs as its own user when we are root
const db = await startEmbeddedPostgres(dataDir, (line) => process.stderr.write(`${line}\n`), { persistent: false });
const sql = connect(db.url);
await migrate(sql);
const config = testConfig({ adminToken: ADMIN, databaseUrl: db.url, port, host: '127.0.0.1', publicUrl: `http://127.0.0.1:${port}`, logLevel: 'warn' });
const engine = await createEngine(config, sql, createLogger('warn'));
const app = await buildApp(engine);
if (stubMissing) registerStandIns(app, engine);
await app.listen({ port, host: '127.0.0.1' });

const tokens = await seed(app, sql);
const base = `http://127.0.0.1:${port}/ui/`;
process.stdout.write(
  [
    '',
    `UI demo listening: ${base}`,
    `  admin:   ${base}#token=${ADMIN}`,
    `  analyst: ${base}#token=${tokens.analyst}`,
    `  finance: ${base}#token=${tokens.finance}`,
    `  data:    ${dataDir}`,
    stubMissing ? '  stand-ins registered for routes this build lacks (--stub-missing)' : '',
    '',
  ].join('\n'),
);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await app.close();
  await engine.close();
  await sql.end({ timeout: 2 });
  await db.stop();
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());

async function seed(app: FastifyInstance, sql: Sql) {
  const auth = { authorization: `Bearer ${ADMIN}` };
  const post = async (url: string, payload: object) => {
    const res = await app.inject({ method: 'POST', url, headers: auth, payload });
    if (res.statusCode !== 201) throw new Error(`${url} -> ${res.statusCode} ${res.body}`);
    return res.json();
  };
  const adv = await post('/v1/advertisers', { name: 'Acme Games', ipAllowlist: [], auth: ['hmac'], rateLimit: { perS: 1000 } });
  const whsec = adv.secrets[0].secret as string;
  const pubs = [
    await post('/v1/publishers', { name: 'Blue Media', postbackUrl: 'https://blue-media.example/pb?c={clickid}&p={payout}' }),
    await post('/v1/publishers', { name: 'Northwind Ads', postbackUrl: 'https://northwind.example/pb?c={clickid}' }),
    await post('/v1/publishers', { name: 'Orbit Traffic', postbackUrl: 'https://orbit.example/pb?c={clickid}' }),
  ];
  const offers = [
    await post('/v1/offers', { advertiserId: adv.id, name: 'Puzzle Quest install', url: 'https://acme.example/lp?cid={clickid}', payout: '2.50', currency: 'USD', fraud: { rules: { ctit_too_short: { minS: 0 } } } }),
    await post('/v1/offers', { advertiserId: adv.id, name: 'Racing trial', url: 'https://acme.example/race?cid={clickid}', payout: '4.20', currency: 'EUR', fraud: { rules: { ctit_too_short: { minS: 0 } } } }),
  ];

  const people = ['81.2.69.142', '85.214.132.117', '93.184.216.34', '151.101.1.69', '203.0.113.50', '198.51.100.20', '2.16.8.1', '77.88.55.60'];
  const phone = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';
  const android = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36';
  const postback = async (offerIdx: number, pubIdx: number, opts: { ip: string; ua: string; userIp?: string; userUa?: string; payout?: string; txid?: string; click?: string }) => {
    const offer = offers[offerIdx];
    const clickid = opts.click ?? (await mintClick(app, offer.id, pubs[pubIdx].id, { ip: opts.ip, ua: opts.ua, subs: `&sub1=campaign${pubIdx + 1}&sub2=${offerIdx ? 'video' : 'banner'}` }));
    const params = new URLSearchParams({ clickid, txid: opts.txid ?? uniqueTx() });
    if (opts.payout) params.set('payout', opts.payout);
    if (opts.userIp) params.set('ip', opts.userIp);
    if (opts.userUa) params.set('ua', opts.userUa);
    const res = await app.inject({ method: 'GET', url: signedGetUrl(adv.id, params.toString().replace(/\+/g, '%20'), whsec), remoteAddress: '192.0.2.10' });
    if (res.statusCode !== 200) process.stderr.write(`postback -> ${res.statusCode} ${res.body}\n`);
    // Most conversions are also seen by the browser pixel; some are not (blocked, closed tab).
    if (Math.random() < 0.8) await pixel(clickid, params.get('txid') as string);
    return { clickid, ...(res.json() as { conversionId: string; decision: string }) };
  };
  const pixel = async (clickid: string, txid: string) => {
    await app.inject({ method: 'GET', url: `/pixel.gif?${new URLSearchParams({ clickid, txid, event: 'conversion' })}`, remoteAddress: '81.2.69.142', headers: { 'user-agent': phone } });
  };

  // Clean conversions.
  for (let i = 0; i < 26; i += 1) {
    const ip = people[i % people.length] as string;
    await postback(i % 2, i % 3, { ip, ua: i % 2 ? android : phone, userIp: ip, userUa: i % 2 ? android : phone });
  }
  // Suspicious ones: bots, hosting addresses, changed addresses, payout changes, double conversions, bursts.
  await postback(0, 2, { ip: '52.94.236.248', ua: 'python-requests/2.31', userIp: '52.94.236.248', userUa: 'python-requests/2.31' });
  await postback(0, 2, { ip: '81.2.69.142', ua: phone, userIp: '34.102.136.180', userUa: 'curl/8.5.0' });
  await postback(1, 1, { ip: '85.214.132.117', ua: android, userIp: '3.120.181.40', userUa: phone, payout: '9.99' });
  const twice = await postback(0, 0, { ip: '93.184.216.34', ua: phone, userIp: '93.184.216.34', userUa: phone });
  await postback(0, 0, { ip: '93.184.216.34', ua: phone, userIp: '93.184.216.34', userUa: phone, click: twice.clickid, payout: '7.50' });
  for (let i = 0; i < 8; i += 1) await postback(i % 2, 2, { ip: '198.51.100.99', ua: android, userIp: '198.51.100.99', userUa: i > 4 ? 'HeadlessChrome/124' : android });
  await postback(1, 0, { ip: '151.101.1.69', ua: '', userIp: '104.28.0.1', payout: '12.00' });

  // Pixel-only: the browser saw a sale whose S2S postback never came (the reconciler recovers these).
  for (let i = 0; i < 4; i += 1) {
    const clickid = await mintClick(app, offers[i % 2].id, pubs[(i + 1) % 3].id, { ip: people[i] as string, ua: phone });
    await pixel(clickid, uniqueTx());
  }
  await new Promise((r) => setTimeout(r, 500)); // pixels are written in batches

  // Spread everything over the last day so ages, hours and the charts have some shape (demo database only).
  await sql`update conversions set created_at = now() - (random() * interval '22 hours') - interval '5 minutes', updated_at = now()`;
  await sql`update conversion_status_history h set created_at = c.created_at from conversions c where c.id = h.conversion_id`;
  await sql`update pixel_events p set created_at = c.created_at + interval '3 seconds' from conversions c where c.click_id = p.click_id and c.txid = p.txid`;
  await sql`update pixel_events p set created_at = now() - (random() * interval '20 hours') - interval '1 hour'
            where not exists (select 1 from conversions c where c.click_id = p.click_id and c.txid = p.txid)`;

  const analyst = (await post('/v1/tokens', { role: 'analyst', name: 'Dana (analyst)' })).token as string;
  const finance = (await post('/v1/tokens', { role: 'finance', name: 'Frank (finance)' })).token as string;
  const counts = await sql`select decision, count(*)::int as n from conversions group by decision order by decision`;
  process.stdout.write(`seeded: ${counts.map((c) => `${c.n} ${c.decision}`).join(', ')}\n`);
  return { analyst, finance };
}

/** Stand-ins for routes other engineers are still building; each is added only if the route is absent. */
function registerStandIns(app: FastifyInstance, engine: Engine): void {
  const { sql } = engine;
  const analyst = requireRole(engine.tokens, 'analyst');
  const finance = requireRole(engine.tokens, 'finance');
  const missing = (method: 'GET' | 'POST', url: string) => !app.hasRoute({ method, url });
  const runs = new Map<string, Record<string, unknown>>();

  if (missing('POST', '/v1/conversions/:id/review')) {
    app.post<{ Params: { id: string }; Body: { decision?: string; note?: string } }>('/v1/conversions/:id/review', { onRequest: analyst }, async (request) => {
      const decision = request.body?.decision;
      if (decision !== 'approve' && decision !== 'reject') {
        throw new ApiError('invalid_request', 'One or more fields are invalid.', { details: [{ path: 'decision', message: 'must be approve or reject' }] });
      }
      const [row] = await sql`select id from conversions where id = ${request.params.id}`;
      if (!row) throw new ApiError('not_found', 'No such conversion.');
      const p = request.principal!;
      const [r] = await sql`insert into reviews (conversion_id, decision, note, reviewer_token_id, reviewer_name)
        values (${request.params.id}, ${decision}, ${request.body.note ?? null}, ${p.tokenId}, ${p.name}) returning id, created_at`;
      await sql`update conversions set review_state = ${decision === 'approve' ? 'approved' : 'rejected'}, updated_at = now() where id = ${request.params.id}`;
      return { id: String(r!.id), conversionId: request.params.id, decision, note: request.body.note ?? null, by: p.name, at: (r!.created_at as Date).toISOString() };
    });
  }

  const computeRun = async (from: string, to: string) => {
    const rows = await sql`
      select offer_id, publisher_id, date_trunc('hour', created_at) as hour,
             count(*) filter (where source = 's2s')::int as s2s
      from conversions where created_at >= ${from}::timestamptz and created_at < ${to}::timestamptz
      group by 1, 2, 3 order by 3, 1, 2`;
    const out = rows.map((r, i) => {
      const s2s = r.s2s as number;
      const pixel = Math.max(0, s2s - (i % 3 === 0 ? 1 : 0) + (i % 5 === 0 ? 1 : 0));
      const matched = Math.min(s2s, pixel);
      return {
        offerId: r.offer_id, publisherId: r.publisher_id, hour: (r.hour as Date).toISOString(),
        s2s, pixel, matched, s2sOnly: s2s - matched, pixelOnly: pixel - matched, recovered: i % 5 === 0 ? 1 : 0, refired: i % 4 === 0 ? 1 : 0, expired: 0,
      };
    });
    const totals: Record<string, number> = {};
    for (const row of out) for (const [k, v] of Object.entries(row)) if (typeof v === 'number') totals[k] = (totals[k] ?? 0) + v;
    return { rows: out, totals };
  };

  if (missing('POST', '/v1/reconciliations')) {
    app.post<{ Body: { from?: string; to?: string } }>('/v1/reconciliations', { onRequest: finance }, async (request, reply) => {
      const { from, to } = request.body ?? {};
      if (!from || !to || Number.isNaN(Date.parse(from)) || Number.isNaN(Date.parse(to))) {
        throw new ApiError('invalid_request', 'One or more fields are invalid.', { details: [{ path: 'from', message: 'must be an ISO 8601 time' }] });
      }
      const id = `rec_demo${runs.size + 1}`;
      const run = { id, from: new Date(from).toISOString(), to: new Date(to).toISOString(), createdAt: new Date().toISOString(), trigger: 'manual', ...(await computeRun(from, to)) };
      runs.set(id, run);
      return reply.code(201).send(run);
    });
  }
  if (missing('GET', '/v1/reconciliations')) {
    app.get('/v1/reconciliations', { onRequest: finance }, async () => ({
      items: [...runs.values()].reverse().map(({ rows, ...rest }) => ({ ...rest, rowCount: (rows as unknown[]).length })),
      nextCursor: null,
    }));
    app.get<{ Params: { id: string } }>('/v1/reconciliations/:id', { onRequest: finance }, async (request) => {
      const run = runs.get(request.params.id);
      if (!run) throw new ApiError('not_found', 'No such reconciliation run.');
      return run;
    });
  }
  if (missing('GET', '/v1/reports/payouts')) {
    app.get<{ Querystring: Record<string, string> }>('/v1/reports/payouts', { onRequest: finance }, async (request, reply) => {
      const q = request.query;
      const rows = await sql`
        select publisher_id, currency,
               count(*) filter (where status = 'approved' and (decision = 'accepted' or review_state = 'approved'))::int as approved,
               coalesce(sum(payout_minor) filter (where status = 'approved' and (decision = 'accepted' or review_state = 'approved')), 0)::bigint as payout_minor,
               count(*) filter (where decision = 'flagged' and review_state = 'none')::int as flagged,
               count(*) filter (where decision = 'rejected' or review_state = 'rejected')::int as rejected,
               count(*) filter (where source = 's2s')::int as s2s,
               count(*) filter (where source = 'pixel')::int as pixel
        from conversions
        where created_at >= ${q.from ?? '-infinity'}::timestamptz and created_at < ${q.to ?? 'infinity'}::timestamptz
          ${q.publisherId ? sql`and publisher_id = ${q.publisherId}` : sql``}
        group by 1, 2 order by 1, 2`;
      const items = rows.map((r) => ({
        publisherId: r.publisher_id, currency: (r.currency as string).trim(), approved: r.approved,
        payout: formatMoney(r.payout_minor as bigint, (r.currency as string).trim()), flagged: r.flagged, rejected: r.rejected, s2s: r.s2s, pixel: r.pixel, refired: 0, expired: 0,
      }));
      if (q.format === 'csv') {
        const header = 'publisherId,currency,approved,payout,flagged,rejected,s2s,pixel,refired,expired';
        const lines = items.map((i) => [i.publisherId, i.currency, i.approved, i.payout, i.flagged, i.rejected, i.s2s, i.pixel, i.refired, i.expired].join(','));
        return reply.type('text/csv; charset=utf-8').send(`${[header, ...lines].join('\n')}\n`);
      }
      return { from: q.from, to: q.to, items };
    });
  }
}
