import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import { checkClickFresh } from '../click/click-validity.js';
import { verifyClickId } from '../click/click-id.js';
import type { Engine } from '../engine.js';
import { isTxid } from '../ids.js';
import { resolveSourceAddress } from '../net/source-address.js';
import type { PixelRow } from './pixel-store.js';

/**
 * `GET /pixel.gif?clickid=..&txid=..&event=..` (CONTRACT §5): the browser's side of a conversion.
 * The answer is always the same 1×1 GIF, at once, whatever the input: a broken pixel must never
 * show on an advertiser's thank-you page, and the answer must not tell a prober which click IDs are
 * real. The pixel URL names no advertiser, so the click ID alone (verified by its tag, no database)
 * says whose conversion it is. Only a valid hit is buffered for a batched insert.
 */

/** The classic transparent 1×1 GIF89a, 42 bytes. */
export const PIXEL_GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

const EVENT = /^[A-Za-z0-9_.-]{1,64}$/;
const UA_MAX = 512;

type Query = Record<string, string | string[] | undefined>;
type Outcome = 'recorded' | 'invalid' | 'dropped';

/** A single value, or undefined when absent or repeated (two copies are refused, never resolved). */
function single(query: Query, key: string): string | undefined {
  const value = query[key];
  return typeof value === 'string' ? value : undefined;
}

export async function toPixelRow(engine: Engine, request: FastifyRequest, now: Date): Promise<PixelRow | undefined> {
  const query = (request.query ?? {}) as Query;
  const clickId = single(query, 'clickid');
  const txid = single(query, 'txid');
  const rawEvent = single(query, 'event');
  const event = rawEvent === undefined || rawEvent === '' ? 'conversion' : rawEvent;
  if (clickId === undefined || txid === undefined || !isTxid(txid) || !EVENT.test(event)) return undefined;
  const { catalog } = engine;
  const verified = verifyClickId(clickId, catalog.clickKeys);
  if (!verified.ok) return undefined;
  const { advertiserSeq } = verified.claims;
  const owner = await catalog.findFresh(`advertiserSeq:${advertiserSeq}`, (c) => c.advertisersBySeq.get(advertiserSeq));
  if (!owner) return undefined;
  // The same test a postback for this click would face (owner, offer, publisher, TTL, clock skew).
  const validity = await checkClickFresh(catalog, clickId, owner.id, now);
  if (!validity.ok) return undefined;
  const { click } = validity;
  const source = resolveSourceAddress(request.socket.remoteAddress, request.headers['x-forwarded-for'], engine.config.trustProxy);
  const ua = request.headers['user-agent'];
  return {
    clickId,
    clickCreatedAt: click.claims.createdAt,
    advertiserId: owner.id,
    offerId: click.offer.id,
    publisherId: click.publisher.id,
    event,
    txid,
    ip: source.ok ? source.text : null,
    userAgent: ua ? ua.slice(0, UA_MAX) : null,
    createdAt: now,
  };
}

export function registerPixelRoutes(app: FastifyInstance, engine: Engine): void {
  const registry = engine.metrics.registry;
  const hits =
    (registry.getSingleMetric('postback_engine_pixel_hits_total') as Counter<'outcome'> | undefined) ??
    new Counter({ name: 'postback_engine_pixel_hits_total', help: 'Pixel requests by outcome', labelNames: ['outcome'] as const, registers: [registry] });

  app.get('/pixel.gif', {
    // Even a request fastify itself refuses (a body it cannot parse, say) gets the image, not JSON.
    errorHandler: (err, request, reply) => {
      request.log.warn({ err }, 'pixel request refused before the handler');
      hits.inc({ outcome: 'invalid' });
      return sendGif(reply);
    },
    handler: async (request: FastifyRequest, reply: FastifyReply) => {
      let outcome: Outcome = 'invalid';
      try {
        const row = await toPixelRow(engine, request, engine.now());
        if (row) outcome = engine.pixelWriter.add(row) ? 'recorded' : 'dropped';
      } catch (err) {
        // Whatever went wrong, the page that embeds the pixel still gets its image.
        request.log.error({ err }, 'pixel hit could not be recorded');
      }
      hits.inc({ outcome });
      return sendGif(reply);
    },
  });
}

function sendGif(reply: FastifyReply): FastifyReply {
  return reply
    .code(200)
    .header('content-type', 'image/gif')
    .header('cache-control', 'no-store, no-cache, must-revalidate, max-age=0')
    .header('pragma', 'no-cache')
    .header('expires', '0')
    .send(PIXEL_GIF);
}
