import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The body bytes exactly as received: signatures are computed over these, never a re-serialisation. */
    rawBody?: Buffer;
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
    try {
      done(null, JSON.parse(body.toString('utf8')));
    } catch {
      done(new ApiError('invalid_request', 'The body is not valid JSON.'), undefined);
    }
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    request.rawBody = body;
    const form: Record<string, string | string[]> = {};
    for (const [key, value] of new URLSearchParams(body.toString('utf8'))) {
      const existing = form[key];
      form[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
    }
    done(null, form);
  });
  app.addContentTypeParser(['text/csv', 'application/csv'], { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    request.rawBody = body;
    done(null, body);
  });
}
