import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';
import { checkClickFresh } from '../click/click-validity.js';
import type { Engine } from '../engine.js';
import { ApiError } from '../errors.js';
import { inRanges } from '../net/cidr.js';
import { resolveSourceAddress } from '../net/source-address.js';
import { authenticate, postbackToken } from './authenticate.js';
import type { CommitOutcome } from './commit-batch.js';
import { parseFields, type PostbackFields } from './fields.js';
import { priceConversion, type Pricing } from './pricing.js';
import { forbiddenFlatKey, forbiddenKeyError } from '../http/safe-parse.js';
import { EXTERNAL_ID_MAX, newTimedId } from '../ids.js';
import type { PostbackIntake } from './intake.js';
import { unavailableError } from './group-committer.js';
import { isDatabaseUnavailable } from '../db/database.js';

/**
 * `GET|POST /postback/:advertiserId`. The order of checks is the order of cost and trust: who is
 * calling (address, rate), may they (allowlist, signature), is it well-formed (fields), is the click
 * ours (click ID, no database), then score and commit. Every refusal is logged with its reason.
 */

type Params = { Params: { advertiserId: string } };

/** What is known about a refused postback when it is refused, for the attempt log. */
type Context = { advertiserId: string | null; sourceIp: string | null; clickId: string | null; txid: string | null };

export function registerPostbackRoutes(app: FastifyInstance, engine: Engine, intake: PostbackIntake): void {
  const handler = async (request: FastifyRequest<Params>, reply: FastifyReply) => {
    const receivedAt = engine.now();
    const claimed = claimedIds(request);
    const ctx: Context = { advertiserId: request.params.advertiserId.slice(0, 64), sourceIp: null, clickId: claimed.clickId, txid: claimed.txid };
    try {
      const body = await accept(request, engine, intake, ctx, receivedAt);
      engine.metrics.postbacks.inc({ outcome: body.duplicate ? 'duplicate' : body.decision });
      return reply.code(200).send(body);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      engine.metrics.postbacks.inc({ outcome: err.code });
      if (err.code === 'rate_limited') {
        intake.attempts.countRateLimited(ctx.advertiserId ?? '-', receivedAt);
      } else if (err.code !== 'unavailable') {
        intake.attempts.record({
          ...ctx,
          receivedAt,
          httpStatus: err.status,
          errorCode: err.code,
          reason: typeof err.extra?.reason === 'string' ? err.extra.reason : null,
          detail: { message: err.message, details: err.details },
        });
      }
      throw err;
    }
  };
  // The route refuses __proto__/constructor keys itself, so the refusal lands in the attempt log.
  app.get<Params>('/postback/:advertiserId', { config: { ownsFieldChecks: true } }, handler);
  app.post<Params>('/postback/:advertiserId', { config: { ownsFieldChecks: true } }, handler);
}

async function accept(request: FastifyRequest<Params>, engine: Engine, intake: PostbackIntake, ctx: Context, receivedAt: Date) {
  // One budget for every wait on PostgreSQL this request makes: a 503 within 5 s, never a hang (db/breaker.ts).
  const deadlineAt = intake.breaker.deadline();
  const { config, catalog } = engine;
  const source = resolveSourceAddress(request.socket.remoteAddress, request.headers['x-forwarded-for'], config.trustProxy);
  if (!source.ok) throw new ApiError('ip_not_allowed', `The source address could not be determined: ${source.why}.`);
  ctx.sourceIp = source.text;

  const advertiserId = request.params.advertiserId;
  const advertiser = await catalog.findFresh(`advertiser:${advertiserId}`, (c) => c.advertisers.get(advertiserId));
  const rate = await intake.rateLimits.check(advertiser?.id, advertiser?.rateLimitPerS, source.text);
  if (!rate.ok) {
    throw new ApiError('rate_limited', `Over the ${rate.scope}'s postback rate.`, { headers: { 'retry-after': String(rate.retryAfterS) } });
  }
  if (!advertiser) throw new ApiError('unknown_advertiser');
  if (advertiser.ipAllowlist.length > 0 && !inRanges(source.address, advertiser.allowRanges)) {
    throw new ApiError('ip_not_allowed', `The source address ${source.text} is not in the advertiser's allowlist.`);
  }

  const nowS = Math.floor(receivedAt.getTime() / 1000);
  const auth = await authenticate(request, advertiser, intake.jwks, config.signatureToleranceS, nowS);
  const forbidden = request.forbiddenKey ?? forbiddenFlatKey(request.query as object);
  if (forbidden !== undefined) throw forbiddenKeyError(forbidden);
  Object.assign(ctx, pickIds(auth.fields));
  const fields = parseFields(auth.fields);

  const validity = await checkClickFresh(catalog, fields.clickid, advertiser.id, receivedAt);
  if (!validity.ok) throw new ApiError('invalid_click', validity.detail, { extra: { reason: validity.reason } });
  const { click } = validity;
  const money = priceConversion(fields, click.offer);
  const message = auth.message ? { ...auth.message, hashHex: contentHash(fields, money) } : undefined;

  const recent = await intake.recent.lookup(advertiser.id, fields.txid, message);
  if (recent.replay === 'different') {
    throw new ApiError('conflict', `${message?.kind === 'jti' ? 'jti' : 'webhook-id'} was already used for different content`);
  }
  const known = recent.result;
  if (known && known.clickId === click.clickId && known.payoutMinor === money.payoutMinor.toString() && known.currency === money.currency && known.status === fields.status) {
    return { conversionId: known.conversionId, decision: known.decision, reasons: known.reasons, duplicate: true, status: known.status };
  }

  // A txid this engine already committed is a status change or a conflict, never a new conversion:
  // scoring it again would count it in another click's or offer's fraud counters.
  const stored = known
    ? undefined
    : await intake.breaker.run(() => engine.clickLookup.find(click.clickId, click.claims.createdAt, advertiser.id), deadlineAt).catch((err: unknown) => {
        throw isDatabaseUnavailable(err) ? unavailableError(err) : err;
      });
  const score = known
    ? undefined
    : await intake.scorer.score({
        advertiserId: advertiser.id,
        offer: click.offer,
        publisherId: click.publisher.id,
        clickId: click.clickId,
        clickCreatedAt: click.claims.createdAt,
        click: stored ? { ip: stored.ip, userAgent: stored.userAgent, subs: stored.subs } : undefined,
        userIp: fields.ip,
        userAgent: fields.ua,
        txid: fields.txid,
        event: fields.event,
        status: fields.status,
        payoutMinor: money.payoutMinor,
        currency: money.currency,
        payoutSent: money.payoutSent,
        now: receivedAt,
      });

  const outcome = await intake.committer.submit({
    // Dated at receipt, as the conversion row will be: a lookup by this ID names its day partition.
    conversionId: newTimedId('cv', receivedAt),
    advertiserId: advertiser.id,
    offerId: click.offer.id,
    publisherId: click.publisher.id,
    clickId: click.clickId,
    clickCreatedAt: click.claims.createdAt,
    txid: fields.txid,
    event: fields.event,
    status: fields.status,
    payoutMinor: money.payoutMinor,
    revenueMinor: money.revenueMinor,
    amountMinor: money.amountMinor,
    currency: money.currency,
    caps: click.offer.caps,
    receivedAt,
    subs: stored?.subs ?? [null, null, null, null, null],
    userIp: fields.ip ?? null,
    userAgent: fields.ua ?? null,
    sourceIp: source.text,
    score,
    message,
  }, deadlineAt);
  if (outcome.kind !== 'conflict') {
    await intake.recent.remember(advertiser.id, fields.txid, {
      conversionId: outcome.conversionId,
      clickId: click.clickId,
      payoutMinor: money.payoutMinor.toString(),
      currency: money.currency,
      status: outcome.status,
      decision: outcome.decision,
      reasons: outcome.reasons,
    });
  }
  return toBody(outcome);
}

function toBody(outcome: CommitOutcome) {
  if (outcome.kind === 'conflict') {
    throw new ApiError('conflict', outcome.message, outcome.conversionId ? { extra: { conversionId: outcome.conversionId } } : {});
  }
  return {
    conversionId: outcome.conversionId,
    decision: outcome.decision,
    reasons: outcome.reasons,
    duplicate: outcome.kind === 'duplicate',
    status: outcome.status,
  };
}

/**
 * The click ID and txid a request claims, before anything is verified: the attempt log needs them so
 * that a missing conversion can be traced to its refused postback (root causes in reconciliation).
 */
function claimedIds(request: FastifyRequest): { clickId: string | null; txid: string | null } {
  const query = request.query as Record<string, unknown>;
  const body = request.body && typeof request.body === 'object' && !Buffer.isBuffer(request.body) ? (request.body as Record<string, unknown>) : {};
  // The body's value wins over the query's, field by field (not by merging the two objects per request).
  const fromRequest = pickIds({ clickid: body.clickid ?? query.clickid, txid: body.txid ?? query.txid });
  if (fromRequest.clickId || fromRequest.txid) return fromRequest;
  const token = postbackToken(request);
  if (!token) return fromRequest;
  try {
    return pickIds(decodeJwt(token));
  } catch {
    return fromRequest;
  }
}

function pickIds(fields: Record<string, unknown>): { clickId: string | null; txid: string | null } {
  return {
    clickId: typeof fields.clickid === 'string' ? fields.clickid.slice(0, EXTERNAL_ID_MAX) : null,
    txid: typeof fields.txid === 'string' ? fields.txid.slice(0, EXTERNAL_ID_MAX) : null,
  };
}

/** What a webhook-id or jti vouches for: the postback's meaning, not its transport (timestamps, signatures). */
function contentHash(fields: PostbackFields, money: Pricing): string {
  const canonical = JSON.stringify([
    fields.clickid, fields.txid, fields.event, fields.status, money.payoutMinor.toString(), money.currency, fields.ip ?? null, fields.ua ?? null,
    money.revenueMinor.toString(), money.amountMinor?.toString() ?? null,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}
