import type { FastifyInstance } from 'fastify';
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import { forbiddenKeyError, forbiddenKeyIn, parseUrlEncoded } from './safe-parse.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The body bytes exactly as received: signatures are computed over these, never a re-serialisation. */
    rawBody?: Buffer;
    /** A `__proto__`/`constructor` key in the body, left for a route that refuses it itself (config.ownsFieldChecks). */
    forbiddenKey?: string;
  }
  interface FastifyContextConfig {
    /** The route refuses forbidden keys itself, so that the refusal is logged with its context (postbacks). */
    ownsFieldChecks?: boolean;
  }
}

/** Largest body any route accepts by default (postbacks, admin JSON). */
export const BODY_LIMIT = 16 * 1024;

/**
 * JSON, form and CSV bodies are kept raw and parsed here, so signature checks see the exact bytes.
 * Any other content type is refused by fastify with 415, mapped to the contract shape.
 */
export function registerBodyParsers(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    request.rawBody = body;
    if (body.length === 0) return done(null, undefined);
    let value: unknown;
    try {
      value = JSON.parse(body.toString('utf8'));
    } catch {
      return done(new ApiError('invalid_request', 'The body is not valid JSON.'), undefined);
    }
    done(refuseForbiddenKey(request, forbiddenKeyIn(value)), value);
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    request.rawBody = body;
    const form = parseUrlEncoded(body.toString('utf8'));
    done(refuseForbiddenKey(request, forbiddenKeyIn(form)), form);
  });
  app.addContentTypeParser(['text/csv', 'application/csv'], { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    request.rawBody = body;
    done(null, body);
  });
}

/** null: parsing goes on (no forbidden key, or the route refuses it itself and logs why). */
function refuseForbiddenKey(request: FastifyRequest, key: string | undefined): ApiError | null {
  if (key === undefined) return null;
  if (request.routeOptions.config.ownsFieldChecks) {
    request.forbiddenKey = key;
    return null;
  }
  return forbiddenKeyError(key);
}
