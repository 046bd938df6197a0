import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import { hasRole, type Principal, type Role, type TokenVerifier } from './tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

const BEARER = /^Bearer ([A-Za-z0-9._~+/=-]{1,512})$/;

/**
 * Hook for /v1 routes: 401 without a valid token, 403 with one that lacks every listed role. Register it
 * as `onRequest` so it runs before the body is read: an anonymous caller gets 401, never a parse error.
 */
export function requireRole(verifier: TokenVerifier, ...roles: Role[]) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const match = BEARER.exec(request.headers.authorization ?? '');
    if (!match) throw new ApiError('unauthorized');
    const principal = await verifier.verify(match[1] as string);
    if (!principal) throw new ApiError('unauthorized', 'The bearer token is unknown or revoked.');
    if (!hasRole(principal, roles)) {
      throw new ApiError('forbidden', `This route needs the ${roles.join(' or ')} role; the token has ${principal.role}.`);
    }
    request.principal = principal;
  };
}
