import type { FastifyInstance } from 'fastify';
import { requireRole } from '../auth/guard.js';
import { bumpCatalogVersion } from '../catalog/catalog.js';
import type { Engine } from '../engine.js';
import { ApiError, invalidRequest } from '../errors.js';
import { parse } from '../http/validate.js';
import { newId } from '../ids.js';
import { parseCidr } from '../net/cidr.js';
import { advertiserCreate, advertiserPatch, DEFAULT_RATE_LIMIT_PER_S } from './schemas.js';
import { requireJsonBody } from './json-only.js';
import { newWebhookSecret } from './secrets.js';
import { advertiserView } from './views.js';
import { auditEntityChange, lockForChange, secretSnapshot } from '../audit/admin-snapshots.js';
import { actorOf, recordAudit } from '../audit/audit-log.js';

type IdParams = { Params: { id: string } };

export function registerAdvertiserRoutes(app: FastifyInstance, engine: Engine): void {
  const admin = requireRole(engine.tokens, 'admin');
  const { txSql, catalog } = engine;

  // Another node may have created it a moment ago: a miss is checked against the database.
  const find = async (id: string) => {
    const advertiser = await catalog.findFresh(`advertiser:${id}`, (c) => c.advertisers.get(id));
    if (!advertiser) throw new ApiError('not_found', 'No such advertiser.');
    return advertiser;
  };

  app.post('/v1/advertisers', { onRequest: [admin, requireJsonBody] }, async (request, reply) => {
    const body = parse(advertiserCreate, request.body);
    const id = newId('adv');
    const secret = { id: newId('sec'), ...newWebhookSecret() };
    const allowlist = body.ipAllowlist.map((c) => (parseCidr(c) as NonNullable<ReturnType<typeof parseCidr>>).text);
    await txSql.begin(async (tx) => {
      await tx`insert into advertisers (id, name, ip_allowlist, auth, jwt, rate_limit_per_s)
        values (${id}, ${body.name}, ${allowlist}, ${body.auth}, ${body.jwt ? tx.json(body.jwt as never) : null},
                ${body.rateLimit?.perS ?? DEFAULT_RATE_LIMIT_PER_S})`;
      await tx`insert into advertiser_secrets (id, advertiser_id, secret) values (${secret.id}, ${id}, ${secret.key})`;
      await bumpCatalogVersion(tx);
      await auditEntityChange(tx, actorOf(request.principal), 'create', 'advertiser', id, null, { secretShown: true });
    });
    await catalog.load();
    const view = advertiserView(await find(id));
    return reply.code(201).send({ ...view, secrets: [{ id: secret.id, secret: secret.text, createdAt: view.secrets[0]?.createdAt }] });
  });

  app.get('/v1/advertisers', { onRequest: admin }, async () => {
    await catalog.refresh();
    return {
      items: [...catalog.advertisers.values()].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime()).map(advertiserView),
    };
  });

  app.get<IdParams>('/v1/advertisers/:id', { onRequest: admin }, async (request) => advertiserView(await find(request.params.id)));

  app.patch<IdParams>('/v1/advertisers/:id', { onRequest: [admin, requireJsonBody] }, async (request) => {
    const { id } = await find(request.params.id);
    const body = parse(advertiserPatch, request.body);
    await txSql.begin(async (tx) => {
      const current = (await lockForChange(tx, 'advertiser', id))?.advertisers.get(id);
      if (!current) throw new ApiError('not_found', 'No such advertiser.');
      const auth = body.auth ?? current.auth;
      const jwt = body.jwt === undefined ? current.jwt : body.jwt;
      if (auth.includes('jwt') && !jwt) throw invalidRequest([{ path: 'jwt', message: 'is required when auth includes jwt' }]);
      const allowlist = body.ipAllowlist?.map((c) => (parseCidr(c) as NonNullable<ReturnType<typeof parseCidr>>).text) ?? current.ipAllowlist;
      await tx`update advertisers set
          name = ${body.name ?? current.name}, ip_allowlist = ${allowlist}, auth = ${auth},
          jwt = ${jwt ? tx.json(jwt as never) : null}, rate_limit_per_s = ${body.rateLimit?.perS ?? current.rateLimitPerS},
          updated_at = now()
        where id = ${id}`;
      await bumpCatalogVersion(tx);
      await auditEntityChange(tx, actorOf(request.principal), 'update', 'advertiser', id, advertiserView(current));
    });
    await catalog.load();
    return advertiserView(await find(id));
  });

  app.post<IdParams>('/v1/advertisers/:id/secrets', { onRequest: [admin, requireJsonBody] }, async (request, reply) => {
    const advertiser = await find(request.params.id);
    const secret = { id: newId('sec'), ...newWebhookSecret() };
    const [row] = await txSql.begin(async (tx) => {
      const rows = await tx`insert into advertiser_secrets (id, advertiser_id, secret) values (${secret.id}, ${advertiser.id}, ${secret.key})
        returning created_at`;
      await tx`update advertisers set updated_at = now() where id = ${advertiser.id}`;
      await bumpCatalogVersion(tx);
      const after = await secretSnapshot(tx, secret.id);
      await recordAudit(tx, { actor: actorOf(request.principal), action: 'create', entity: 'advertiser_secret', entityId: secret.id, before: null, after });
      return rows;
    });
    await catalog.load();
    return reply.code(201).send({ id: secret.id, secret: secret.text, createdAt: (row as { created_at: Date }).created_at.toISOString() });
  });

  app.delete<{ Params: { id: string; secretId: string } }>('/v1/advertisers/:id/secrets/:secretId', { onRequest: admin }, async (request, reply) => {
    const advertiser = await find(request.params.id);
    const revoked = await txSql.begin(async (tx) => {
      const before = await secretSnapshot(tx, request.params.secretId);
      const rows = await tx`update advertiser_secrets set revoked_at = now()
        where id = ${request.params.secretId} and advertiser_id = ${advertiser.id} and revoked_at is null returning id`;
      if (rows.length > 0) {
        await tx`update advertisers set updated_at = now() where id = ${advertiser.id}`;
        await bumpCatalogVersion(tx);
        const after = await secretSnapshot(tx, request.params.secretId);
        await recordAudit(tx, { actor: actorOf(request.principal), action: 'revoke', entity: 'advertiser_secret', entityId: request.params.secretId, before, after });
      }
      return rows.length;
    });
    if (revoked === 0) throw new ApiError('not_found', 'No such active secret for this advertiser.');
    await catalog.load();
    return reply.code(204).send();
  });
}
