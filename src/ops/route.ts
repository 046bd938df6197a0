import type { FastifyInstance } from 'fastify';
import { isMigrated } from '../db/migrate.js';
import type { Engine } from '../engine.js';

export function registerOpsRoutes(app: FastifyInstance, engine: Engine): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    try {
      if (await isMigrated(engine.sql)) return { status: 'ready' };
      return reply.code(503).send({ error: { code: 'unavailable', message: 'Database migrations are not all applied.' } });
    } catch {
      return reply.code(503).send({ error: { code: 'unavailable', message: 'The database is not reachable.' } });
    }
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await engine.metrics.registry.metrics();
    return reply.header('content-type', engine.metrics.registry.contentType).send(text);
  });
}
