import type { FastifyInstance } from 'fastify';
import type { Engine } from '../engine.js';
import { ApiError } from '../errors.js';
import { requireJsonBody } from '../admin/json-only.js';
import { parse } from '../http/validate.js';
import { newId } from '../ids.js';
import { tokenCreate } from '../admin/schemas.js';
import { requireRole } from './guard.js';
import { hashToken, newBearerToken } from './tokens.js';

export function registerTokenRoutes(app: FastifyInstance, engine: Engine): void {
  const admin = requireRole(engine.tokens, 'admin');
  const { sql } = engine;

  app.post('/v1/tokens', { onRequest: [admin, requireJsonBody] }, async (request, reply) => {
    const body = parse(tokenCreate, request.body);
    const id = newId('tok');
    const token = newBearerToken();
    const [row] = await sql`insert into api_tokens (id, name, role, token_hash)
      values (${id}, ${body.name}, ${body.role}, ${hashToken(token)}) returning created_at`;
    return reply.code(201).send({ id, token, role: body.role, name: body.name, createdAt: (row?.created_at as Date).toISOString() });
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
    const rows = await sql`update api_tokens set revoked_at = now() where id = ${request.params.id} and revoked_at is null returning id`;
    if (rows.length === 0) throw new ApiError('not_found', 'No such active token.');
    return reply.code(204).send();
  });
}
