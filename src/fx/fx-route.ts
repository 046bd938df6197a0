import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { requireJsonBody } from '../admin/json-only.js';
import { actorOf } from '../audit/audit-log.js';
import { requireRole } from '../auth/guard.js';
import type { Engine } from '../engine.js';
import { ApiError, invalidRequest, issuesToDetails, type FieldIssue } from '../errors.js';
import { parseUtcDay, utcDay } from '../http/utc-day.js';
import { parse } from '../http/validate.js';
import { checkRates, getRates, listRates, putRates } from './fx-store.js';

export const ratesBody = z.object({ base: z.string(), rates: z.record(z.string(), z.unknown()) }).strict();

export const listQuery = z
  .object({
    from: utcDay.optional(),
    to: utcDay.optional(),
    limit: z.coerce.number().int().min(1).max(366).default(31),
    cursor: utcDay.optional(),
  })
  .strict();

type DateParams = { Params: { date: string } };

function dayParam(text: string): string {
  const day = parseUtcDay(text);
  if (!day) throw invalidRequest([{ path: 'date', message: 'must be a calendar day YYYY-MM-DD (UTC)' }]);
  return day;
}

export function registerFxRoutes(app: FastifyInstance, engine: Engine): void {
  const finance = requireRole(engine.tokens, 'finance');

  app.put<DateParams>('/v1/fx-rates/:date', { onRequest: [finance, requireJsonBody] }, async (request) => {
    // The day and the body are checked together, so one answer names every bad field.
    const day = parseUtcDay(request.params.date);
    const issues: FieldIssue[] = day ? [] : [{ path: 'date', message: 'must be a calendar day YYYY-MM-DD (UTC)' }];
    const body = ratesBody.safeParse(request.body ?? {});
    if (!body.success) issues.push(...issuesToDetails(body.error.issues));
    const input = body.success ? { base: body.data.base, rates: body.data.rates as Record<string, string> } : undefined;
    if (input) issues.push(...checkRates(input));
    if (issues.length > 0 || !day || !input) throw invalidRequest(issues);
    return (await putRates(engine.txSql, actorOf(request.principal), day, input)).set;
  });

  app.get<DateParams>('/v1/fx-rates/:date', { onRequest: finance }, async (request) => {
    const set = await getRates(engine.sql, dayParam(request.params.date));
    if (!set) throw new ApiError('not_found', 'No rates are stored for that day.');
    return set;
  });

  app.get('/v1/fx-rates', { onRequest: finance }, async (request) => {
    const q = parse(listQuery, request.query);
    return listRates(engine.sql, { from: q.from, to: q.to, limit: q.limit, before: q.cursor });
  });
}
