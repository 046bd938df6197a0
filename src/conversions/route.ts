import type { FastifyInstance } from 'fastify';
import { requireRole } from '../auth/guard.js';
import { findClick } from '../click/click-store.js';
import { expandEvidence } from '../fraud/evidence.js';
import type { Engine } from '../engine.js';
import { ApiError } from '../errors.js';
import { parse } from '../http/validate.js';
import { createdRangeOfId } from '../ids.js';
import { formatMoney } from '../money.js';
import { conversionsCsv } from './csv.js';
import { conversionView, listConversions, listQuery, type ConversionRow } from './query.js';

export function registerConversionRoutes(app: FastifyInstance, engine: Engine): void {
  const readers = requireRole(engine.tokens, 'analyst', 'finance');
  const { sql } = engine;

  app.get('/v1/conversions', { onRequest: readers }, async (request, reply) => {
    const { format, ...q } = parse(listQuery, request.query);
    if (format === 'json') return listConversions(sql, engine.catalog, q);
    const csv = await conversionsCsv(sql, engine.catalog, q);
    return reply
      .header('content-type', 'text/csv; charset=utf-8; header=present')
      .header('content-disposition', 'attachment; filename="conversions.csv"')
      .send(csv);
  });

  app.get<{ Params: { id: string } }>('/v1/conversions/:id', { onRequest: readers }, async (request) => {
    const [from, to] = createdRangeOfId(request.params.id);
    const [row] = await sql<ConversionRow[]>`select * from conversions
      where id = ${request.params.id} and created_at >= ${from}::timestamptz and created_at < ${to}::timestamptz`;
    if (!row) throw new ApiError('not_found', 'No such conversion.');
    // What hangs off a conversion is never dated before it: only partitions from its day on are read.
    const since = row.created_at as Date;
    const [click, history, deliveries, attempts, reviews] = await Promise.all([
      findClick(sql, row.click_id as string, row.click_created_at as Date, row.advertiser_id as string),
      sql`select from_status, to_status, payout_minor, currency, source, created_at from conversion_status_history
          where conversion_id = ${row.id} and created_at >= ${since} order by id`,
      sql`select id, publisher_id, state, attempts, next_attempt_at, deadline_at, last_status_code, last_error, delivered_at, created_at
          from deliveries where conversion_id = ${row.id} and created_at >= ${since} order by created_at`,
      sql`select a.delivery_id, a.attempted_at, a.status_code, a.latency_ms, a.error from delivery_attempts a
          join deliveries d on d.id = a.delivery_id and d.created_at >= ${since} where d.conversion_id = ${row.id} order by a.id`,
      sql`select id, decision, note, reviewer_name, reviewer_token_id, created_at from reviews where conversion_id = ${row.id} order by id`,
    ]);
    return {
      ...conversionView(row, engine.catalog),
      ip: row.user_ip,
      ua: row.user_agent,
      sourceIp: row.source_ip,
      subs: [row.sub1, row.sub2, row.sub3, row.sub4, row.sub5],
      evidence: expandEvidence(row.evidence),
      click: {
        id: row.click_id,
        createdAt: (row.click_created_at as Date).toISOString(),
        recorded: click !== undefined,
        ip: click?.ip ?? null,
        userAgent: click?.userAgent ?? null,
        subs: click?.subs ?? null,
      },
      statusHistory: history.map((h) => ({
        from: h.from_status,
        to: h.to_status,
        payout: formatMoney(h.payout_minor, h.currency),
        currency: h.currency,
        source: h.source,
        at: (h.created_at as Date).toISOString(),
      })),
      deliveries: deliveries.map((d) => ({
        id: d.id,
        publisherId: d.publisher_id,
        publisherName: engine.catalog.publishers.get(d.publisher_id as string)?.name ?? null,
        state: d.state,
        attempts: attempts
          .filter((a) => a.delivery_id === d.id)
          .map((a) => ({ at: (a.attempted_at as Date).toISOString(), statusCode: a.status_code, latencyMs: a.latency_ms, error: a.error })),
        nextAttemptAt: (d.next_attempt_at as Date | null)?.toISOString() ?? null,
        deadlineAt: (d.deadline_at as Date).toISOString(),
        deliveredAt: (d.delivered_at as Date | null)?.toISOString() ?? null,
      })),
      reviews: reviews.map((r) => ({
        id: String(r.id),
        decision: r.decision,
        note: r.note,
        by: r.reviewer_name,
        tokenId: r.reviewer_token_id,
        at: (r.created_at as Date).toISOString(),
      })),
    };
  });
}
