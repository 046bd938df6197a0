import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiError } from '../errors.js';
import type { Engine } from '../engine.js';
import { requestIdGenerator } from '../http/request-id.js';

/**
 * Who may read /metrics. METRICS_TOKEN makes it a bearer-token route (compared in constant time, over
 * hashes so the length leaks nothing either); METRICS_PORT moves it to a listener of its own, which
 * can be bound to an internal interface with METRICS_HOST. Unset, it stays open on the main port, as
 * CONTRACT §9 lists it beside /healthz.
 */

const digest = (text: string) => createHash('sha256').update(text).digest();

export function metricsGate(token: string | undefined): (authorization: string | undefined) => boolean {
  if (token === undefined) return () => true;
  const expected = digest(token);
  return (authorization) => {
    const presented = /^Bearer (\S+)$/i.exec(authorization ?? '')?.[1];
    // Compared even when absent, so a request without a token takes the same path as a wrong one.
    return timingSafeEqual(digest(presented ?? ''), expected) && presented !== undefined;
  };
}

export const METRICS_CHALLENGE = { 'www-authenticate': 'Bearer realm="metrics"' };

export function unauthorizedBody(requestId: string) {
  return new ApiError('unauthorized', 'GET /metrics needs the METRICS_TOKEN bearer token.').toBody(requestId);
}

export type MetricsListener = { url: string; close(): Promise<void> };

/** What the listener serves: an engine, or under WORKERS > 1 the cluster primary with the box's aggregate. */
export type MetricsSource = {
  config: Pick<Engine['config'], 'metricsToken'>;
  metrics: { scrape(): Promise<string>; registry: { contentType: string } };
  log: Pick<Engine['log'], 'error'>;
};

/** The METRICS_PORT listener: GET /metrics only, without the API's routes, hooks or body parsing. */
export async function startMetricsListener(engine: MetricsSource, port: number, host: string): Promise<MetricsListener> {
  const allowed = metricsGate(engine.config.metricsToken);
  const nextId = requestIdGenerator();
  const send = (res: ServerResponse, status: number, body: string, headers: Record<string, string>) => {
    res.writeHead(status, headers);
    res.end(body);
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const requestId = nextId(req);
    const json = { 'content-type': 'application/json; charset=utf-8', 'x-request-id': requestId };
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      return send(res, 404, JSON.stringify(new ApiError('not_found', 'This listener serves GET /metrics only.').toBody(requestId)), json);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, JSON.stringify(new ApiError('method_not_allowed').toBody(requestId)), { ...json, allow: 'GET, HEAD' });
    }
    if (!allowed(req.headers.authorization)) return send(res, 401, JSON.stringify(unauthorizedBody(requestId)), { ...json, ...METRICS_CHALLENGE });
    const text = await engine.metrics.scrape();
    send(res, 200, req.method === 'HEAD' ? '' : text, { 'content-type': engine.metrics.registry.contentType, 'x-request-id': requestId });
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      engine.log.error({ err }, 'metrics listener failed');
      if (!res.headersSent) send(res, 500, JSON.stringify(new ApiError('internal_error').toBody()), { 'content-type': 'application/json; charset=utf-8' });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
