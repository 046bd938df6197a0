import type { FastifyRequest } from 'fastify';
import type { JWTPayload } from 'jose';
import type { Advertiser } from '../catalog/catalog.js';
import { ApiError } from '../errors.js';
import { verifyQuerySignature, verifyStandardWebhook, type HmacOutcome } from './hmac.js';
import { verifyPostbackJwt, type JwksCache, type JwtOutcome } from './jwt.js';

/**
 * Runs every authentication method the advertiser accepts and the request carries; one pass is
 * enough (contract §4). The result says where the signed postback fields are: JWT claims, or the
 * query/body that the HMAC covered. A replay id comes along: `webhook-id` or `jti`.
 */

export type Authenticated = {
  method: 'hmac' | 'jwt';
  fields: Record<string, unknown>;
  message: { kind: 'webhook' | 'jti'; id: string } | undefined;
};

const BEARER = /^Bearer\s+(\S+)$/i;

export async function authenticate(
  request: FastifyRequest,
  advertiser: Advertiser,
  jwks: JwksCache,
  toleranceS: number,
  nowS: number,
): Promise<Authenticated> {
  const isGet = request.method === 'GET';
  const query = request.query as Record<string, unknown>;
  const token = postbackToken(request);
  const hasHmac = isGet ? /[?&]sig=/.test(request.url) : request.headers['webhook-signature'] !== undefined;

  let failure: ApiError | undefined;

  if (advertiser.auth.includes('jwt') && token !== undefined) {
    const outcome: JwtOutcome = await verifyPostbackJwt(token, advertiser, jwks, nowS, toleranceS);
    if (outcome.ok) return { method: 'jwt', fields: claimsToFields(outcome.claims), message: { kind: 'jti', id: outcome.jti } };
    failure = new ApiError(outcome.code, outcome.message);
  }

  if (advertiser.auth.includes('hmac') && hasHmac) {
    const outcome: HmacOutcome = isGet
      ? verifyQuerySignature(request.url, advertiser.secrets, nowS, toleranceS)
      : verifyStandardWebhook(
          {
            id: single(request.headers['webhook-id']),
            timestamp: single(request.headers['webhook-timestamp']),
            signature: single(request.headers['webhook-signature']),
          },
          request.rawBody ?? Buffer.alloc(0),
          advertiser.secrets,
          nowS,
          toleranceS,
        );
    if (outcome.ok) {
      const fields = isGet ? query : bodyFields(request.body);
      const webhookId = single(request.headers['webhook-id']);
      return { method: 'hmac', fields, message: !isGet && webhookId ? { kind: 'webhook', id: webhookId } : undefined };
    }
    failure ??= new ApiError(outcome.code, outcome.message);
  }

  if (failure) throw failure;
  if (advertiser.auth.includes('hmac')) throw new ApiError('bad_signature', 'The request carries no signature.');
  throw new ApiError('bad_token', 'The request carries no token.');
}

/** The JWT a postback carries: `Authorization: Bearer`, or `?token=` on GET (contract §4). */
export function postbackToken(request: FastifyRequest): string | undefined {
  const bearer = BEARER.exec(request.headers.authorization ?? '')?.[1];
  if (bearer !== undefined) return bearer;
  const query = request.query as Record<string, unknown>;
  return request.method === 'GET' && typeof query.token === 'string' ? query.token : undefined;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(' ') : value;
}

function bodyFields(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body) || Buffer.isBuffer(body)) {
    throw new ApiError('invalid_request', 'The body must be a JSON object or a form.', { details: [{ path: '', message: 'must be an object' }] });
  }
  return body as Record<string, unknown>;
}

const REGISTERED_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti']);

function claimsToFields(claims: JWTPayload): Record<string, unknown> {
  return Object.fromEntries(Object.entries(claims).filter(([k]) => !REGISTERED_CLAIMS.has(k)));
}
