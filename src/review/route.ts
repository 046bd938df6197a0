import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { requireJsonBody } from '../admin/json-only.js';
import { requireRole } from '../auth/guard.js';
import { conversionView } from '../conversions/query.js';
import type { Engine } from '../engine.js';
import { ApiError } from '../errors.js';
import { parse } from '../http/validate.js';
import { listQueue, queueQuery } from './queue.js';
import { reviewConversion } from './review.js';

/**
 * CONTRACT §8 review, for analysts (admin has every role; finance gets 403):
 * - `POST /v1/conversions/:id/review {"decision": "approve"|"reject", "note"?}` → 201 with the review
 *   (a new audit-trail entry), who made it and when, and the conversion as it now stands.
 * - `GET /v1/reviews/queue` → flagged conversions awaiting a decision, by payout × score (queue.ts).
 * The role check runs as `onRequest`, before the body is read: a finance token never reaches parsing.
 */

/** Long enough for a paragraph of reasoning, short enough that the audit trail stays a log. */
export const NOTE_MAX = 2000;

export const reviewBody = z
  .object({
    decision: z.enum(['approve', 'reject'], { error: 'must be approve or reject' }),
    note: z
      .string()
      .max(NOTE_MAX, `must be at most ${NOTE_MAX} characters`)
      // PostgreSQL text cannot hold NUL; refusing it here makes it a 400, not a failed insert.
      .refine((s) => !s.includes('\u0000'), 'must not contain NUL characters')
      .nullable()
      .optional(),
  })
  .strict();

type IdParams = { Params: { id: string } };

export function registerReviewRoutes(app: FastifyInstance, engine: Engine): void {
  const analyst = requireRole(engine.tokens, 'analyst');

  app.post<IdParams>('/v1/conversions/:id/review', { onRequest: [analyst, requireJsonBody] }, async (request, reply) => {
    const body = parse(reviewBody, request.body);
    const reviewer = request.principal;
    if (!reviewer) throw new ApiError('unauthorized');
    const note = body.note ? body.note : null;
    const outcome = await reviewConversion(
      engine.txSql,
      { conversionId: request.params.id, decision: body.decision, note, reviewer },
      engine.config.refireWindowS,
    );
    if (!outcome) throw new ApiError('not_found', 'No such conversion.');
    return reply.code(201).send({
      id: outcome.review.id.toString(),
      conversionId: outcome.conversion.id,
      decision: body.decision,
      note,
      by: reviewer.name,
      tokenId: reviewer.tokenId,
      at: outcome.review.created_at.toISOString(),
      releasedDeliveryId: outcome.releasedDeliveryId,
      conversion: conversionView(outcome.conversion, engine.catalog),
    });
  });

  app.get('/v1/reviews/queue', { onRequest: analyst }, async (request) => listQueue(engine.sql, engine.catalog, parse(queueQuery, request.query)));
}
