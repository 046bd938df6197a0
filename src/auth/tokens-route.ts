import type { FastifyInstance } from 'fastify';
import type { Engine } from '../engine.js';
import { ApiError } from '../errors.js';
import { requireJsonBody } from '../admin/json-only.js';
import { parse } from '../http/validate.js';
import { actorOf } from '../audit/audit-log.js';
import { tokenCreate } from '../admin/schemas.js';
import { requireRole } from './guard.js';
import { createToken, revokeToken } from './token-admin.js';

export function registerTokenRoutes(app: FastifyInstance, engine: Engine): void {
  const admin = requireRole(engine.tokens, 'admin');
  const { sql } = engine;

  app.post('/v1/tokens', { onRequest: [admin, requireJsonBody] }, async (request, reply) => {
    const body = parse(tokenCreate, request.body);
    return reply.code(201).send(await createToken(engine.txSql, actorOf(request.principal), body));
  });

  app.get('/v1/tokens', { onRequest: admin }, async () => {
    const rows = await sql`select id, name, role, created_at, revoked_at from api_tokens order by created_at desc`;
    return {
      items: rows.map((r) => ({
        id: r.id,
        name: r.name,
        role: r.role,
        createdAt: (r.created_at as Date).toISOString(),
        revokedAt: r.revoked_at ? (r.revoked_at as Date).toISOString() : null,
      })),
    };
  });

  app.delete<{ Params: { id: string } }>('/v1/tokens/:id', { onRequest: admin }, async (request, reply) => {
    if (!(await revokeToken(engine.txSql, actorOf(request.principal), request.params.id))) throw new ApiError('not_found', 'No such active token.');
    return reply.code(204).send();
  });
}
