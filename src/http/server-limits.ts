import type { FastifyServerOptions } from 'fastify';
import type { Config } from '../config.js';

/**
 * Limits for slow and abusive clients. Node answers each socket on its own, so a slow client costs a
 * socket, not a thread; what must be bounded is how long and how many:
 * - headers timeout: the request line and headers must arrive within it (a client sending a byte a
 *   second is cut off), absolute, so trickling bytes does not reset it;
 * - request timeout: the same for the whole request, body included;
 * - idle timeout: a socket with no traffic either way (a client that stopped reading its answer). It
 *   must exceed the longest a handler may stay silent, the database deadline among them;
 * - keep-alive timeout: an idle connection between requests; above the 60 s idle timeout of common
 *   load balancers so that they, not the engine, close first (no race on a reused connection);
 * - max connections: sockets beyond it are closed at once, so a flood cannot run the process out of
 *   file descriptors; keep it below `ulimit -n` minus the database and Redis connections.
 */
export function serverLimits(config: Config): Pick<FastifyServerOptions, 'connectionTimeout' | 'keepAliveTimeout' | 'requestTimeout' | 'maxRequestsPerSocket'> & {
  http: { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number };
} {
  return {
    connectionTimeout: config.httpIdleTimeoutMs,
    keepAliveTimeout: config.httpKeepAliveTimeoutMs,
    requestTimeout: config.httpRequestTimeoutMs,
    maxRequestsPerSocket: config.httpMaxRequestsPerSocket,
    http: {
      headersTimeout: config.httpHeadersTimeoutMs,
      requestTimeout: config.httpRequestTimeoutMs,
      // Node checks both timeouts on this interval (30 s by default), so a 10 s limit could take 40 s.
      connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(config.httpHeadersTimeoutMs / 4))),
    },
  };
}
