import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { DEFAULT_FLAG_AT, DEFAULT_REJECT_AT } from '../admin/schemas.js';
import { requireRole } from '../auth/guard.js';
import type { Engine } from '../engine.js';
import { ApiError } from '../errors.js';
import { parse } from '../http/validate.js';
import { CATEGORY_CAPS, MAX_SCORE, offerFraud, RULES } from './registry.js';
import { qualityQuery, qualityWindow, ruleQuality } from './rule-quality.js';

/**
 * `GET /v1/fraud/rules`: every rule with its reason code, category, inputs, default mode, points and
 * settings (a JSON Schema carrying each default), the category caps and the default thresholds.
 * `?offerId=` adds what applies to that offer: its thresholds and each rule's effective settings.
 */

const query = z.object({ offerId: z.string().min(1).max(64).optional() }).strict();

export function registerFraudRoutes(app: FastifyInstance, engine: Engine): void {
  const anyRole = requireRole(engine.tokens, 'admin', 'analyst', 'finance');
  const analyst = requireRole(engine.tokens, 'admin', 'analyst');

  app.get('/v1/fraud/rules/quality', { onRequest: analyst }, async (request) =>
    ruleQuality(engine.sql, qualityWindow(parse(qualityQuery, request.query), engine.now())),
  );

  app.get('/v1/fraud/rules', { preHandler: anyRole }, async (request) => {
    const { offerId } = parse(query, request.query);
    const offer = offerId === undefined ? undefined : await engine.catalog.findFresh(`offer:${offerId}`, (c) => c.offers.get(offerId));
    if (offerId !== undefined && !offer) throw new ApiError('not_found', 'No such offer.');
    const effective = offer ? offerFraud(offer) : undefined;
    return {
      flagAt: DEFAULT_FLAG_AT,
      rejectAt: DEFAULT_REJECT_AT,
      maxScore: MAX_SCORE,
      categories: Object.entries(CATEGORY_CAPS).map(([name, cap]) => ({
        name,
        cap,
        rules: RULES.filter((r) => r.category === name).map((r) => r.code),
      })),
      rules: RULES.map((rule) => ({
        code: rule.code,
        category: rule.category,
        description: rule.description,
        inputs: rule.inputs,
        mode: rule.defaults.mode,
        points: rule.defaults.points,
        defaults: rule.defaults,
        settings: rule.settingsSchema,
        ...(effective ? { effective: effective.settings.get(rule.code) } : {}),
      })),
      ...(offer && effective ? { offer: { id: offer.id, flagAt: effective.flagAt, rejectAt: effective.rejectAt } } : {}),
    };
  });
}
