import { advertiserCreate, advertiserPatch, offerCreate, offerPatch, publisherSchemas, tokenCreate } from '../admin/schemas.js';
import { auditQuery } from '../audit/audit-query.js';
import type { Operation } from './operation.js';

/** The admin API (CONTRACT §2): tokens, advertisers and their secrets, publishers, offers, the audit log. */

const json = { 'application/json': undefined };
// The production rule (ALLOW_PRIVATE_DESTINATIONS=false); with it set, private destinations pass as well.
const publisher = publisherSchemas(false);
const admin = ['admin'] as const;

export const catalogOperations: Operation[] = [
  {
    method: 'post', path: '/v1/tokens', operationId: 'createToken', tag: 'Tokens', roles: admin,
    summary: 'Create an API token',
    description: 'The token text is in this answer only; the engine stores its hash.',
    body: { content: { 'application/json': tokenCreate } },
    ok: { 201: { description: '`{id, token, name, role, createdAt}`.', content: json } },
    errors: ['unsupported_media_type'],
  },
  { method: 'get', path: '/v1/tokens', operationId: 'listTokens', tag: 'Tokens', roles: admin, summary: 'List API tokens', ok: { 200: { description: '`{items: [{id, name, role, createdAt, revokedAt}]}`, newest first; never the token text.', content: json } } },
  {
    method: 'delete', path: '/v1/tokens/:id', operationId: 'revokeToken', tag: 'Tokens', roles: admin, summary: 'Revoke an API token at once',
    ok: { 204: { description: 'Revoked.' } }, errors: ['not_found'],
  },

  {
    method: 'post', path: '/v1/advertisers', operationId: 'createAdvertiser', tag: 'Catalog', roles: admin, summary: 'Create an advertiser',
    description: 'The answer carries the first webhook secret (`whsec_...`), shown this once.',
    body: { content: { 'application/json': advertiserCreate } },
    ok: { 201: { description: 'The advertiser with `secrets: [{id, secret, createdAt}]`.', content: json } },
    errors: ['unsupported_media_type'],
  },
  { method: 'get', path: '/v1/advertisers', operationId: 'listAdvertisers', tag: 'Catalog', roles: admin, summary: 'List advertisers', ok: { 200: { description: '`{items}`, newest first; secrets are listed by id only.', content: json } } },
  { method: 'get', path: '/v1/advertisers/:id', operationId: 'getAdvertiser', tag: 'Catalog', roles: admin, summary: 'Get an advertiser', ok: { 200: { description: 'The advertiser.', content: json } }, errors: ['not_found'] },
  {
    method: 'patch', path: '/v1/advertisers/:id', operationId: 'updateAdvertiser', tag: 'Catalog', roles: admin, summary: 'Change an advertiser',
    description: 'Name, allowlist, auth methods, JWT settings and rate limit; every node applies it within 5 s.',
    body: { content: { 'application/json': advertiserPatch } },
    ok: { 200: { description: 'The advertiser as it now stands.', content: json } },
    errors: ['not_found', 'unsupported_media_type'],
  },
  {
    method: 'post', path: '/v1/advertisers/:id/secrets', operationId: 'addAdvertiserSecret', tag: 'Catalog', roles: admin, summary: 'Add a webhook secret',
    description: 'For rotation: older secrets keep working until revoked. Takes no body.',
    ok: { 201: { description: '`{id, secret, createdAt}`; the secret is shown this once.', content: json } },
    errors: ['not_found', 'unsupported_media_type'],
  },
  {
    method: 'delete', path: '/v1/advertisers/:id/secrets/:secretId', operationId: 'revokeAdvertiserSecret', tag: 'Catalog', roles: admin, summary: 'Revoke a webhook secret',
    ok: { 204: { description: 'Revoked.' } }, errors: ['not_found'],
  },

  {
    method: 'post', path: '/v1/publishers', operationId: 'createPublisher', tag: 'Catalog', roles: admin, summary: 'Create a publisher',
    description: 'A `postbackUrl` on a loopback, private or link-local address (literal or resolved) is refused unless ALLOW_PRIVATE_DESTINATIONS is set.',
    body: { content: { 'application/json': publisher.create } },
    ok: { 201: { description: 'The publisher with its signing `secret`, shown this once.', content: json } },
    errors: ['unsupported_media_type'],
  },
  { method: 'get', path: '/v1/publishers', operationId: 'listPublishers', tag: 'Catalog', roles: admin, summary: 'List publishers', ok: { 200: { description: '`{items}`, newest first.', content: json } } },
  { method: 'get', path: '/v1/publishers/:id', operationId: 'getPublisher', tag: 'Catalog', roles: admin, summary: 'Get a publisher', ok: { 200: { description: 'The publisher.', content: json } }, errors: ['not_found'] },
  {
    method: 'patch', path: '/v1/publishers/:id', operationId: 'updatePublisher', tag: 'Catalog', roles: admin, summary: 'Change a publisher',
    body: { content: { 'application/json': publisher.patch } },
    ok: { 200: { description: 'The publisher as it now stands.', content: json } },
    errors: ['not_found', 'unsupported_media_type'],
  },

  {
    method: 'post', path: '/v1/offers', operationId: 'createOffer', tag: 'Catalog', roles: admin, summary: 'Create an offer',
    description: 'Money is a decimal string in the offer currency; goals, caps and per-offer fraud rule overrides are checked with the rest.',
    body: { content: { 'application/json': offerCreate } },
    ok: { 201: { description: 'The offer.', content: json } },
    errors: ['unsupported_media_type'],
  },
  { method: 'get', path: '/v1/offers', operationId: 'listOffers', tag: 'Catalog', roles: admin, summary: 'List offers', ok: { 200: { description: '`{items}`, newest first.', content: json } } },
  { method: 'get', path: '/v1/offers/:id', operationId: 'getOffer', tag: 'Catalog', roles: admin, summary: 'Get an offer', ok: { 200: { description: 'The offer.', content: json } }, errors: ['not_found'] },
  {
    method: 'patch', path: '/v1/offers/:id', operationId: 'updateOffer', tag: 'Catalog', roles: admin, summary: 'Change an offer',
    body: { content: { 'application/json': offerPatch } },
    ok: { 200: { description: 'The offer as it now stands.', content: json } },
    errors: ['not_found', 'unsupported_media_type'],
  },

  {
    method: 'get', path: '/v1/audit', operationId: 'listAudit', tag: 'Audit', roles: admin, summary: 'Read the audit log',
    query: auditQuery,
    ok: { 200: { description: '`{items: [{at, actor: {tokenId, name}, action, entity, entityId, before, after}], nextCursor}`, newest first.', content: json } },
  },
];
