import type { FastifyInstance } from 'fastify';
import { unavailableReason } from '../db/breaker.js';
import { isMigrated } from '../db/migrate.js';
import type { Engine } from '../engine.js';

export function registerOpsRoutes(app: FastifyInstance, engine: Engine): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  // Through the breaker: answered within the deadline while PostgreSQL is silent, at once while the
  // circuit is open, and a poll after the cooldown is the probe that closes it again.
  app.get('/readyz', async (_request, reply) => {
    const notReady = (reason: string, message: string) => {
      engine.metrics.unavailable.inc({ route: '/readyz', reason });
      return reply.code(503).send({ error: { code: 'unavailable', message } });
    };
    try {
      if (await engine.breaker.run(() => isMigrated(engine.sql))) return { status: 'ready' };
      return notReady('not_migrated', 'Database migrations are not all applied.');
    } catch (err) {
      return notReady(unavailableReason(err), 'The database is not reachable.');
    }
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await engine.metrics.registry.metrics();
    return reply.header('content-type', engine.metrics.registry.contentType).send(text);
  });
}
