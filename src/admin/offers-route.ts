import type { FastifyInstance } from 'fastify';
import { requireRole } from '../auth/guard.js';
import { bumpCatalogVersion } from '../catalog/catalog.js';
import type { Engine } from '../engine.js';
import { ApiError, invalidRequest, type FieldIssue } from '../errors.js';
import { parse } from '../http/validate.js';
import { newId } from '../ids.js';
import { parseMoney } from '../money.js';
import { offerCreate, offerPatch } from './schemas.js';
import { requireJsonBody } from './json-only.js';
import { offerView } from './views.js';
import { auditEntityChange, lockedSnapshot } from '../audit/admin-snapshots.js';
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
    issues.push(...checkFraud(body.fraud));
    if (issues.length > 0 || !payout.ok) throw invalidRequest(issues);
    const id = newId('off');
    await txSql.begin(async (tx) => {
      await tx`insert into offers (id, advertiser_id, name, url, payout_minor, revenue_minor, currency, click_ttl_s, daily_cap, fraud)
        values (${id}, ${body.advertiserId}, ${body.name}, ${body.url}, ${payout.minor}, ${payout.minor}, ${body.currency},
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
    const current = await find(request.params.id);
    const body = parse(offerPatch, request.body);
    const issues: FieldIssue[] = [];
    let payoutMinor = current.payoutMinor;
    if (body.payout !== undefined) {
      const payout = parseMoney(body.payout, current.currency);
      if (payout.ok) payoutMinor = payout.minor;
      else issues.push({ path: 'payout', message: payout.message });
    }
    issues.push(...checkFraud(body.fraud));
    if (issues.length > 0) throw invalidRequest(issues);
    await txSql.begin(async (tx) => {
      const before = await lockedSnapshot(tx, 'offer', current.id);
      await tx`update offers set name = ${body.name ?? current.name}, url = ${body.url ?? current.url},
          payout_minor = ${payoutMinor}, click_ttl_s = ${body.clickTtlS ?? current.clickTtlS},
          daily_cap = ${body.dailyCap === undefined ? current.dailyCap : body.dailyCap},
          fraud = ${tx.json((body.fraud ?? current.fraud) as never)}, updated_at = now()
        where id = ${current.id}`;
      await bumpCatalogVersion(tx);
      await auditEntityChange(tx, actorOf(request.principal), 'update', 'offer', current.id, before);
    });
    await catalog.load();
    return offerView(await find(current.id));
  });
}
