import type { FastifyInstance } from 'fastify';
import { requireRole } from '../auth/guard.js';
import { bumpCatalogVersion } from '../catalog/catalog.js';
import type { Engine } from '../engine.js';
import { ApiError, invalidRequest, type FieldIssue } from '../errors.js';
import { parse } from '../http/validate.js';
import { newId } from '../ids.js';
import { parseMoney } from '../money.js';
import { offerCreate, offerPatch } from './schemas.js';
import { checkTerms } from '../offers/terms.js';
import { requireJsonBody } from './json-only.js';
import { offerView } from './views.js';
import { auditEntityChange, lockForChange } from '../audit/admin-snapshots.js';
import { actorOf } from '../audit/audit-log.js';

type IdParams = { Params: { id: string } };

export function registerOfferRoutes(app: FastifyInstance, engine: Engine): void {
  const admin = requireRole(engine.tokens, 'admin');
  const { txSql, catalog } = engine;

  // Another node may have created it a moment ago: a miss is checked against the database.
  const find = async (id: string) => {
    const offer = await catalog.findFresh(`offer:${id}`, (c) => c.offers.get(id));
    if (!offer) throw new ApiError('not_found', 'No such offer.');
    return offer;
  };

  const checkFraud = (fraud: { rules?: Record<string, Record<string, unknown>> } | undefined): FieldIssue[] =>
    engine.fraudRules ? engine.fraudRules.validateOverrides(fraud?.rules ?? {}) : [];

  app.post('/v1/offers', { onRequest: [admin, requireJsonBody] }, async (request, reply) => {
    const body = parse(offerCreate, request.body);
    const issues: FieldIssue[] = [];
    if (!catalog.advertisers.has(body.advertiserId)) issues.push({ path: 'advertiserId', message: 'no such advertiser' });
    const payout = parseMoney(body.payout, body.currency);
    if (!payout.ok) issues.push({ path: 'payout', message: payout.message });
    // §10: revenue defaults to the payout.
    const revenue = parseMoney(body.revenue ?? body.payout, body.currency);
    if (!revenue.ok && body.revenue !== undefined) issues.push({ path: 'revenue', message: revenue.message });
    issues.push(...checkTerms(body.goals, body.caps, body.currency));
    issues.push(...checkFraud(body.fraud));
    if (issues.length > 0 || !payout.ok || !revenue.ok) throw invalidRequest(issues);
    const id = newId('off');
    await txSql.begin(async (tx) => {
      await tx`insert into offers (id, advertiser_id, name, url, payout_minor, revenue_minor, currency, goals, caps, click_ttl_s, daily_cap, fraud)
        values (${id}, ${body.advertiserId}, ${body.name}, ${body.url}, ${payout.minor}, ${revenue.minor}, ${body.currency},
                ${tx.json((body.goals ?? {}) as never)}, ${tx.json((body.caps ?? []) as never)},
                ${body.clickTtlS}, ${body.dailyCap ?? null}, ${tx.json((body.fraud ?? {}) as never)})`;
      await bumpCatalogVersion(tx);
      await auditEntityChange(tx, actorOf(request.principal), 'create', 'offer', id, null);
    });
    await catalog.load();
    return reply.code(201).send(offerView(await find(id)));
  });

  app.get('/v1/offers', { onRequest: admin }, async () => {
    await catalog.refresh();
    return {
      items: [...catalog.offers.values()].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime()).map(offerView),
    };
  });

  app.get<IdParams>('/v1/offers/:id', { onRequest: admin }, async (request) => offerView(await find(request.params.id)));

  app.patch<IdParams>('/v1/offers/:id', { onRequest: [admin, requireJsonBody] }, async (request) => {
    // An offer's currency never changes, so amounts are checked against it before the row is locked.
    const { id, currency } = await find(request.params.id);
    const body = parse(offerPatch, request.body);
    const issues: FieldIssue[] = [];
    const payout = body.payout === undefined ? undefined : parseMoney(body.payout, currency);
    if (payout && !payout.ok) issues.push({ path: 'payout', message: payout.message });
    const revenue = body.revenue === undefined ? undefined : parseMoney(body.revenue, currency);
    if (revenue && !revenue.ok) issues.push({ path: 'revenue', message: revenue.message });
    issues.push(...checkTerms(body.goals, body.caps, currency));
    issues.push(...checkFraud(body.fraud));
    if (issues.length > 0) throw invalidRequest(issues);
    await txSql.begin(async (tx) => {
      const current = (await lockForChange(tx, 'offer', id))?.offers.get(id);
      if (!current) throw new ApiError('not_found', 'No such offer.');
      const payoutMinor = payout?.ok ? payout.minor : current.payoutMinor;
      // An offer whose revenue was never set apart from its payout keeps following it.
      const followsPayout = current.revenueMinor === current.payoutMinor;
      const revenueMinor = revenue?.ok ? revenue.minor : followsPayout ? payoutMinor : current.revenueMinor;
      await tx`update offers set name = ${body.name ?? current.name}, url = ${body.url ?? current.url},
          payout_minor = ${payoutMinor}, revenue_minor = ${revenueMinor},
          goals = ${tx.json((body.goals ?? current.goalsInput) as never)}, caps = ${tx.json((body.caps ?? current.capsInput) as never)},
          click_ttl_s = ${body.clickTtlS ?? current.clickTtlS},
          daily_cap = ${body.dailyCap === undefined ? current.dailyCap : body.dailyCap},
          fraud = ${tx.json((body.fraud ?? current.fraud) as never)}, updated_at = now()
        where id = ${id}`;
      await bumpCatalogVersion(tx);
      await auditEntityChange(tx, actorOf(request.principal), 'update', 'offer', id, offerView(current));
    });
    await catalog.load();
    return offerView(await find(id));
  });
}
