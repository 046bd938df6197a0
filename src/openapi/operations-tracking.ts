import { z } from 'zod';
import { clickQuery } from '../click/route.js';
import { listQuery as conversionsQuery } from '../conversions/query.js';
import { attemptsQuery } from '../postback/attempts-query.js';
import { fieldSchema } from '../postback/fields.js';
import { queueQuery } from '../review/queue.js';
import { reviewBody } from '../review/route.js';
import type { Operation } from './operation.js';
import { postbackResult } from './responses.js';

/** The public edge (CONTRACT §3-§5) and what analysts read about it (§8). */

const json = { 'application/json': undefined };

// The signature and token travel beside the fields; authenticate.ts reads them, parseFields skips them.
const postbackQuery = fieldSchema.extend({
  ts: z.string().optional().meta({ description: 'Query-signature HMAC: Unix seconds, signed.' }),
  sig: z.string().optional().meta({ description: 'Query-signature HMAC: lowercase hex, the last parameter.' }),
  token: z.string().optional().meta({ description: 'A postback JWT, as an alternative to `Authorization: Bearer`.' }),
});

const postbackRefusals = [
  'bad_signature', 'stale_signature', 'bad_token', 'ip_not_allowed', 'unknown_advertiser', 'conflict', 'payload_too_large',
  'unsupported_media_type', 'invalid_click', 'unknown_event', 'rate_limited', 'unavailable',
] as const;

const postbackAnswer = {
  200: {
    description: 'Committed to PostgreSQL (`duplicate: true`: seen before with the same click, payout and status; nothing new).',
    content: { 'application/json': postbackResult },
  },
};

// No zod schema in the route: the pixel reads these by hand because it must answer a GIF whatever comes.
const pixelQuery = z.object({
  clickid: z.string().meta({ description: 'A click ID minted by `/c/{offerId}`.' }),
  txid: z.string().meta({ description: "The advertiser's transaction ID." }),
  event: z.string().optional().meta({ description: 'Default `conversion`.' }),
});

const readers = ['analyst', 'finance'] as const;

export const trackingOperations: Operation[] = [
  {
    method: 'get', path: '/c/:offerId', operationId: 'click', tag: 'Tracking', summary: 'Click redirect',
    description: 'Mints a self-authenticating click ID, records the click and redirects to the offer URL with its macros filled. Other query parameters are allowed and ignored.',
    query: clickQuery,
    ok: { 302: { description: 'To the offer URL.', headers: { location: 'The offer URL, `{clickid}`, `{sub1}`.. replaced.' } } },
    errors: ['unknown_offer', 'unknown_publisher', 'unavailable'],
  },
  {
    method: 'get', path: '/postback/:advertiserId', operationId: 'postbackGet', tag: 'Tracking', summary: 'Postback (query string)',
    description: 'Authenticated by the query signature (`&ts=..&sig=..` last) or a JWT, and by the allowlist. With a JWT the fields are its claims.',
    security: [{ querySignature: [] }, { postbackJwt: [] }],
    query: postbackQuery,
    ok: postbackAnswer,
    errors: postbackRefusals,
  },
  {
    method: 'post', path: '/postback/:advertiserId', operationId: 'postbackPost', tag: 'Tracking', summary: 'Postback (JSON or form body)',
    description: 'Authenticated by Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`) over the raw body, or a JWT whose claims are the fields.',
    security: [{ webhookSignature: [] }, { postbackJwt: [] }],
    body: { content: { 'application/json': fieldSchema, 'application/x-www-form-urlencoded': fieldSchema } },
    ok: postbackAnswer,
    errors: postbackRefusals,
  },
  {
    method: 'get', path: '/pixel.gif', operationId: 'pixel', tag: 'Tracking', summary: 'Conversion pixel',
    description: 'Always the same 1×1 GIF at once, whatever the input, so a prober learns nothing; only a hit with a valid click ID is recorded.',
    query: pixelQuery,
    neverRefuses: true,
    ok: { 200: { description: 'A transparent 1×1 GIF.', content: { 'image/gif': undefined } } },
  },

  {
    method: 'get', path: '/v1/conversions', operationId: 'listConversions', tag: 'Conversions', roles: readers, summary: 'List conversions',
    query: conversionsQuery,
    ok: { 200: { description: '`{items, nextCursor}`, newest first.', content: json } },
  },
  {
    method: 'get', path: '/v1/conversions/:id', operationId: 'getConversion', tag: 'Conversions', roles: readers, summary: 'Get a conversion with its evidence',
    ok: { 200: { description: 'The conversion with its click, fraud evidence, status history, deliveries and reviews.', content: json } },
    errors: ['not_found'],
  },
  {
    method: 'post', path: '/v1/conversions/:id/review', operationId: 'reviewConversion', tag: 'Conversions', roles: ['analyst'], summary: 'Approve or reject a conversion',
    body: { content: { 'application/json': reviewBody } },
    ok: { 201: { description: 'The review (who, when) and the conversion as it now stands.', content: json } },
    errors: ['not_found', 'unsupported_media_type'],
  },
  {
    method: 'get', path: '/v1/reviews/queue', operationId: 'reviewQueue', tag: 'Conversions', roles: ['analyst'], summary: 'Flagged conversions awaiting review',
    description: 'Ordered by payout × score, highest first.',
    query: queueQuery,
    ok: { 200: { description: '`{items, nextCursor}`.', content: json } },
  },
  {
    method: 'get', path: '/v1/postback-attempts', operationId: 'listPostbackAttempts', tag: 'Conversions', roles: ['analyst'], summary: 'Refused postbacks and why',
    query: attemptsQuery,
    ok: { 200: { description: '`{items, nextCursor}`, newest first.', content: json } },
  },
];
