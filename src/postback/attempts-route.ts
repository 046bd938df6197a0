import type { FastifyInstance } from 'fastify';
import { requireRole } from '../auth/guard.js';
import type { Engine } from '../engine.js';
import { parse } from '../http/validate.js';
import { attemptsQuery, listAttempts } from './attempts-query.js';

export function registerAttemptRoutes(app: FastifyInstance, engine: Engine): void {
  const support = requireRole(engine.tokens, 'admin', 'analyst');
  app.get('/v1/postback-attempts', { onRequest: support }, async (request) => listAttempts(engine.sql, engine.catalog, parse(attemptsQuery, request.query)));
}
