import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';

/**
 * The admin API takes JSON only. The app also parses form and CSV bodies (postbacks, advertiser
 * reports); without this a CSV body would reach the admin schemas as a Buffer and come back as one
 * "unknown field" per byte. Runs as an onRequest hook after the role check, before any body is read.
 */
export async function requireJsonBody(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  const type = request.headers['content-type'];
  if (type !== undefined && !/^application\/json\s*(;|$)/i.test(type)) {
    throw new ApiError('unsupported_media_type', 'The admin API accepts application/json bodies only.');
  }
}
