import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { publisherView } from '../admin/views.js';
import { requireRole } from '../auth/guard.js';
import type { Engine } from '../engine.js';
import { ApiError, invalidRequest } from '../errors.js';
import { parse } from '../http/validate.js';
import { enablePublisher } from './endpoint.js';
import { actorOf } from '../audit/audit-log.js';
import { decodeCursor, getDelivery, listDeliveries } from './views.js';

/** CONTRACT §6: the delivery log, replay, and re-enabling an endpoint a 410 disabled. */

const id = z.string().min(1).max(64);
export const listQuery = z
  .object({
    state: z.enum(['pending', 'delivered', 'failed', 'expired']).optional(),
    publisherId: id.optional(),
    conversionId: id.optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
    cursor: z.string().max(512).optional(),
  })
  .strict();

type IdParams = { Params: { id: string } };

export function registerDeliveryRoutes(app: FastifyInstance, engine: Engine): void {
  const readers = requireRole(engine.tokens, 'admin', 'finance');
  const admin = requireRole(engine.tokens, 'admin');

  app.get('/v1/deliveries', { onRequest: readers }, async (request) => {
    const q = parse(listQuery, request.query);
    const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
    if (q.cursor !== undefined && !cursor) throw invalidRequest([{ path: 'cursor', message: 'is not a cursor this API returned' }]);
    return listDeliveries(engine.sql, { state: q.state, publisherId: q.publisherId, conversionId: q.conversionId, limit: q.limit, cursor });
  });

  app.get<IdParams>('/v1/deliveries/:id', { onRequest: readers }, async (request) => {
    const delivery = await getDelivery(engine.sql, request.params.id);
    if (!delivery) throw new ApiError('not_found', 'No such delivery.');
    return delivery;
  });

  app.post<IdParams>('/v1/deliveries/:id/replay', { onRequest: admin }, async (request) => {
    const result = await engine.deliveries.replay(request.params.id);
    switch (result.kind) {
      case 'not_found':
        throw new ApiError('not_found', 'No such delivery.');
      case 'in_flight':
        throw new ApiError('conflict', 'An attempt of this delivery is in flight; replay it once that attempt has finished.');
      case 'publisher_disabled':
        throw new ApiError('conflict', "The publisher's endpoint is disabled; re-enable it first with POST /v1/publishers/:id/enable.");
      case 'done':
        break;
    }
    return getDelivery(engine.sql, request.params.id);
  });

  app.post<IdParams>('/v1/publishers/:id/enable', { onRequest: admin }, async (request) => {
    const result = await enablePublisher(engine.txSql, request.params.id, actorOf(request.principal));
    if (!result.found) throw new ApiError('not_found', 'No such publisher.');
    await engine.catalog.load();
    const publisher = engine.catalog.publishers.get(request.params.id);
    if (!publisher) throw new ApiError('not_found', 'No such publisher.');
    return { ...publisherView(publisher), resumedDeliveries: result.resumed };
  });
}
