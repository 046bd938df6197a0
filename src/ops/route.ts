import type { FastifyInstance } from 'fastify';
import { unavailableReason } from '../db/breaker.js';
import { isMigrated } from '../db/migrate.js';
import type { Engine } from '../engine.js';
import { METRICS_CHALLENGE, metricsGate, unauthorizedBody } from './metrics-access.js';

export function registerOpsRoutes(app: FastifyInstance, engine: Engine): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  // Through the breaker: answered within the deadline while PostgreSQL is silent, at once while the
  // circuit is open, and a poll after the cooldown is the probe that closes it again.
  app.get('/readyz', async (request, reply) => {
    const notReady = (reason: string, message: string) => {
      engine.metrics.unavailable.inc({ route: '/readyz', reason });
      return reply.code(503).send({ error: { code: 'unavailable', message, requestId: request.id } });
    };
    // Draining after SIGTERM: load balancers take the node out while it still answers everything else.
    if (engine.draining) return notReady('shutting_down', 'The engine is shutting down.');
    try {
      if (await engine.breaker.run(() => isMigrated(engine.sql))) return { status: 'ready' };
      return notReady('not_migrated', 'Database migrations are not all applied.');
    } catch (err) {
      return notReady(unavailableReason(err), 'The database is not reachable.');
    }
  });

  // With METRICS_PORT set, /metrics lives on its own listener (metrics-access.ts) and not here.
  if (engine.config.metricsPort !== undefined) return;
  const allowed = metricsGate(engine.config.metricsToken);
  app.get('/metrics', async (request, reply) => {
    if (!allowed(request.headers.authorization)) return reply.code(401).headers(METRICS_CHALLENGE).send(unauthorizedBody(request.id));
    const text = await engine.metrics.scrape();
    return reply.header('content-type', engine.metrics.registry.contentType).send(text);
  });
}
