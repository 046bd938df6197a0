import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Engine } from '../engine.js';
import { ApiError } from '../errors.js';
import { parse } from '../http/validate.js';
import { resolveSourceAddress } from '../net/source-address.js';
import { mintClickId } from './click-id.js';

const SUB_MAX = 255;
const UA_MAX = 512;

const sub = z.string().max(SUB_MAX).regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters').optional();
// Loose: landing-page trackers append their own parameters, which a click must not refuse.
// Built once: a zod schema compiles itself on first use, so a per-request `.loose()` recompiled it every click.
export const clickQuery = z
  .object({
    pub: z.string({ error: 'is required' }).min(1).max(64),
    sub1: sub, sub2: sub, sub3: sub, sub4: sub, sub5: sub,
  })
  .loose();

/** Macros an offer URL may carry; every value is URL-encoded. */
function landingUrl(template: string, values: Record<string, string>): string {
  return template.replace(/\{(clickid|offer_id|publisher_id|sub[1-5])\}/g, (_, name: string) => encodeURIComponent(values[name] ?? ''));
}

export function registerClickRoutes(app: FastifyInstance, engine: Engine): void {
  app.get<{ Params: { offerId: string }; Querystring: Record<string, unknown> }>('/c/:offerId', async (request, reply) => {
    const { catalog } = engine;
    const offerId = request.params.offerId;
    const offer = await catalog.findFresh(`offer:${offerId}`, (c) => c.offers.get(offerId));
    if (!offer) throw new ApiError('unknown_offer');
    const q = parse(clickQuery, request.query);
    const publisher = await catalog.findFresh(`publisher:${q.pub}`, (c) => c.publishers.get(q.pub));
    if (!publisher) throw new ApiError('unknown_publisher');
    const advertiser = catalog.advertisers.get(offer.advertiserId);
    const key = engine.catalog.mintingKey;
    if (!advertiser || !key) throw new ApiError('unavailable', 'The engine has not finished loading its catalog.');

    const now = engine.now();
    const clickId = mintClickId(key, { advertiserSeq: advertiser.seq, offerSeq: offer.seq, publisherSeq: publisher.seq }, now);
    const source = resolveSourceAddress(request.socket.remoteAddress, request.headers['x-forwarded-for'], engine.config.trustProxy);
    const subs = [q.sub1, q.sub2, q.sub3, q.sub4, q.sub5].map((s) => s ?? null);
    const ua = request.headers['user-agent'];
    engine.clickWriter.add({
      id: clickId,
      createdAt: now,
      offerId: offer.id,
      publisherId: publisher.id,
      advertiserId: advertiser.id,
      subs,
      ip: source.ok ? source.text : null,
      userAgent: ua ? ua.slice(0, UA_MAX) : null,
    });
    engine.fraudState.recordClick({ offerId: offer.id, publisherId: publisher.id, sub1: subs[0] ?? null, address: source.ok ? source.address : null, at: now });
    const location = landingUrl(offer.url, {
      clickid: clickId,
      offer_id: offer.id,
      publisher_id: publisher.id,
      sub1: subs[0] ?? '', sub2: subs[1] ?? '', sub3: subs[2] ?? '', sub4: subs[3] ?? '', sub5: subs[4] ?? '',
    });
    return reply.code(302).header('location', location).header('cache-control', 'no-store').send();
  });
}
