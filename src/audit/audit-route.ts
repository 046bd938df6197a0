import type { FastifyInstance } from 'fastify';
import { requireRole } from '../auth/guard.js';
import type { Engine } from '../engine.js';
import { parse } from '../http/validate.js';
import { auditQuery, listAudit } from './audit-query.js';

export function registerAuditRoutes(app: FastifyInstance, engine: Engine): void {
  const admin = requireRole(engine.tokens, 'admin');
  app.get('/v1/audit', { onRequest: admin }, async (request) => listAudit(engine.sql, parse(auditQuery, request.query)));
}
