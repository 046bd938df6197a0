import type { FastifyInstance } from 'fastify';
import type { Engine } from '../engine.js';
import { resolveSourceAddress } from '../net/source-address.js';

/**
 * ACCESS_LOG=true: one JSON line per request. Off by default, and registered only when on, because
 * a log line costs more than a click redirect. Query strings carry signatures and tokens (a signed
 * GET postback's `sig`, a JWT in `token`), so their values are redacted by key before logging.
 */

const SECRET_KEY = /sig|signature|token|secret|password|passwd|key|auth|jwt|whsec/i;

export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const redacted = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const rawKey = eq < 0 ? pair : pair.slice(0, eq);
      let key = rawKey;
      try {
        key = decodeURIComponent(rawKey.replace(/\+/g, ' '));
      } catch {
        // a key that is not valid percent-encoding is tested as written
      }
      return eq >= 0 && SECRET_KEY.test(key) ? `${rawKey}=[redacted]` : pair;
    });
  return `${url.slice(0, q)}?${redacted.join('&')}`;
}

export function registerAccessLog(app: FastifyInstance, engine: Engine): void {
  if (!engine.config.accessLog) return;
  // Its own level: asking for an access log means wanting it even with LOG_LEVEL=warn.
  const log = engine.log.child({ log: 'access' }, { level: engine.config.logLevel === 'silent' ? 'silent' : 'info' });
  app.addHook('onResponse', (request, reply, done) => {
    const source = resolveSourceAddress(request.socket.remoteAddress, request.headers['x-forwarded-for'], engine.config.trustProxy);
    log.info(
      {
        requestId: request.id,
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        url: redactUrl(request.url),
        status: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime * 1000) / 1000,
        sourceAddress: source.ok ? source.text : null,
      },
      'request',
    );
    done();
  });
}
