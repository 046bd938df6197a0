import type { FastifyInstance } from 'fastify';
import { requireRole } from '../auth/guard.js';
import { bumpCatalogVersion } from '../catalog/catalog.js';
import type { Engine } from '../engine.js';
import { resolvedHostRefusal } from '../delivery/destination-guard.js';
import { ApiError, invalidRequest } from '../errors.js';
import { parse } from '../http/validate.js';
import { newId } from '../ids.js';
import { publisherSchemas } from './schemas.js';
import { requireJsonBody } from './json-only.js';
import { newWebhookSecret } from './secrets.js';
import { publisherView } from './views.js';
import { auditEntityChange, lockForChange } from '../audit/admin-snapshots.js';
import { actorOf } from '../audit/audit-log.js';

type IdParams = { Params: { id: string } };

export function registerPublisherRoutes(app: FastifyInstance, engine: Engine): void {
  const admin = requireRole(engine.tokens, 'admin');
  const { txSql, catalog } = engine;
  const schemas = publisherSchemas(engine.config.allowPrivateDestinations);

  // Another node may have created it a moment ago: a miss is checked against the database.
  const find = async (id: string) => {
    const publisher = await catalog.findFresh(`publisher:${id}`, (c) => c.publishers.get(id));
    if (!publisher) throw new ApiError('not_found', 'No such publisher.');
    return publisher;
  };

  /** The schema refused literal private addresses; a name that resolves to one is refused here. */
  const refuseResolvedPrivateHost = async (postbackUrl: string | undefined) => {
    if (postbackUrl === undefined || engine.config.allowPrivateDestinations) return;
    const refusal = await resolvedHostRefusal(new URL(postbackUrl).hostname, engine.resolve);
    if (refusal) throw invalidRequest([{ path: 'postbackUrl', message: refusal }]);
  };

  app.post('/v1/publishers', { onRequest: [admin, requireJsonBody] }, async (request, reply) => {
    const body = parse(schemas.create, request.body);
    await refuseResolvedPrivateHost(body.postbackUrl);
    const id = newId('pub');
    const secret = newWebhookSecret();
    await txSql.begin(async (tx) => {
      await tx`insert into publishers (id, name, postback_url, method, secret, on_status_change, events)
        values (${id}, ${body.name}, ${body.postbackUrl}, ${body.method}, ${secret.key}, ${body.onStatusChange}, ${body.events ?? null}::text[])`;
      await bumpCatalogVersion(tx);
      await auditEntityChange(tx, actorOf(request.principal), 'create', 'publisher', id, null, { secretShown: true });
    });
    await catalog.load();
    return reply.code(201).send({ ...publisherView(await find(id)), secret: secret.text });
  });

  app.get('/v1/publishers', { onRequest: admin }, async () => {
    await catalog.refresh();
    return {
      items: [...catalog.publishers.values()].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime()).map(publisherView),
    };
  });

  app.get<IdParams>('/v1/publishers/:id', { onRequest: admin }, async (request) => publisherView(await find(request.params.id)));

  app.patch<IdParams>('/v1/publishers/:id', { onRequest: [admin, requireJsonBody] }, async (request) => {
    const { id } = await find(request.params.id);
    const body = parse(schemas.patch, request.body);
    await refuseResolvedPrivateHost(body.postbackUrl);
    await txSql.begin(async (tx) => {
      const current = (await lockForChange(tx, 'publisher', id))?.publishers.get(id);
      if (!current) throw new ApiError('not_found', 'No such publisher.');
      await tx`update publishers set name = ${body.name ?? current.name}, postback_url = ${body.postbackUrl ?? current.postbackUrl},
          method = ${body.method ?? current.method}, on_status_change = ${body.onStatusChange ?? current.onStatusChange},
          events = ${body.events === undefined ? current.events : body.events}::text[], updated_at = now()
        where id = ${id}`;
      await bumpCatalogVersion(tx);
      await auditEntityChange(tx, actorOf(request.principal), 'update', 'publisher', id, publisherView(current));
    });
    await catalog.load();
    return publisherView(await find(id));
  });
}
