import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Advertiser } from '../catalog/catalog.js';
import { DEFAULT_JWT_ALGORITHMS } from '../admin/schemas.js';
import { checkTimestamp } from './hmac.js';

/**
 * JWT authentication of postbacks with jose. Keys come only from the advertiser's configured JWKS
 * (inline or URL): `jku`, `x5u` and embedded `jwk` headers are never consulted, because jose only
 * uses the key resolver given here. Only the configured asymmetric algorithms pass, so neither `none`
 * nor an HMAC algorithm keyed with a public key can verify.
 */

export const JWT_AUDIENCE = 'postback-engine';
/** A JWKS endpoint that hangs must not hold a postback: fail within 5 s (contract §4). */
const JWKS_TIMEOUT_MS = 5000;
/** An unknown kid refetches the remote set at most this often (contract §4). */
const JWKS_COOLDOWN_MS = 30_000;
const JWKS_MAX_AGE_MS = 10 * 60_000;

export type JwtOutcome =
  | { ok: true; claims: JWTPayload; jti: string }
  | { ok: false; code: 'bad_token' | 'stale_signature'; message: string };

type CachedKeys = { version: number; resolver: JWTVerifyGetKey };

/** One key resolver per advertiser (not per request), rebuilt when the advertiser's settings change. */
export class JwksCache {
  private readonly byAdvertiser = new Map<string, CachedKeys>();

  resolverFor(advertiser: Advertiser): JWTVerifyGetKey | undefined {
    const settings = advertiser.jwt;
    if (!settings) return undefined;
    const version = advertiser.updatedAt.getTime();
    const cached = this.byAdvertiser.get(advertiser.id);
    if (cached && cached.version === version) return cached.resolver;
    const resolver = settings.jwks
      ? createLocalJWKSet(settings.jwks as Parameters<typeof createLocalJWKSet>[0])
      : createRemoteJWKSet(new URL(settings.jwksUrl as string), {
          timeoutDuration: JWKS_TIMEOUT_MS,
          cooldownDuration: JWKS_COOLDOWN_MS,
          cacheMaxAge: JWKS_MAX_AGE_MS,
        });
    this.byAdvertiser.set(advertiser.id, { version, resolver });
    return resolver;
  }
}

export async function verifyPostbackJwt(
  token: string,
  advertiser: Advertiser,
  cache: JwksCache,
  nowS: number,
  toleranceS: number,
): Promise<JwtOutcome> {
  const resolver = cache.resolverFor(advertiser);
  if (!resolver || !advertiser.jwt) return { ok: false, code: 'bad_token', message: 'this advertiser has no JWT keys configured' };
  try {
    const { payload } = await jwtVerify(token, resolver, {
      issuer: advertiser.jwt.issuer,
      audience: JWT_AUDIENCE,
      algorithms: advertiser.jwt.algorithms ?? DEFAULT_JWT_ALGORITHMS,
      requiredClaims: ['exp', 'iat', 'jti'],
      clockTolerance: toleranceS,
      currentDate: new Date(nowS * 1000),
    });
    if (typeof payload.iat !== 'number' || !checkTimestamp(payload.iat, nowS, toleranceS)) {
      return { ok: false, code: 'stale_signature', message: 'iat is outside the accepted window' };
    }
    if (typeof payload.jti !== 'string' || !/^[A-Za-z0-9_.:-]{1,128}$/.test(payload.jti)) {
      return { ok: false, code: 'bad_token', message: 'jti must be a string of 1-128 safe characters' };
    }
    return { ok: true, claims: payload, jti: payload.jti };
  } catch (err) {
    return { ok: false, code: 'bad_token', message: describeJoseError(err) };
  }
}

function describeJoseError(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'the token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) return `claim ${err.claim} is invalid: ${err.reason}`;
  if (err instanceof errors.JOSEAlgNotAllowed) return 'the token algorithm is not allowed for this advertiser';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no key in the advertiser JWKS matches the token';
  if (err instanceof errors.JWKSTimeout) return 'the advertiser JWKS did not answer in time';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'the token signature does not verify';
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return 'the token is malformed';
  return 'the token could not be verified';
}
