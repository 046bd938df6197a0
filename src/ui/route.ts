import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Engine } from '../engine.js';

/**
 * CONTRACT §8: the web UI for analysts and finance. The HTML, CSS and ES modules beside this file are
 * read once at start-up and served from memory; the page signs in with the same bearer tokens as the API
 * and calls only this origin's `/v1` routes. No inline script or style anywhere, so the policy is strict.
 */

/** Nothing but this origin: scripts, styles and API calls; no frames, no plugins, no `<base>` tricks. */
export const UI_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** The only files served, by extension; route.ts itself and anything else in the folder never are. */
export const UI_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

export const UI_DIR = path.dirname(fileURLToPath(import.meta.url));

type Asset = { body: Buffer; type: string; etag: string };

let assets: ReadonlyMap<string, Asset> | undefined;

/** Read on the first registration and kept for the life of the process (tests build many apps). */
export function loadUiAssets(): ReadonlyMap<string, Asset> {
  if (assets) return assets;
  const loaded = new Map<string, Asset>();
  for (const name of readdirSync(UI_DIR).sort()) {
    const type = UI_TYPES[path.extname(name)];
    // route.js is this module compiled into dist/ (npm run build): server code, never a page asset.
    if (!type || !/^[a-z0-9-]+\.[a-z]+$/.test(name) || name === 'route.js') continue;
    const body = readFileSync(path.join(UI_DIR, name));
    loaded.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` });
  }
  if (!loaded.has('index.html')) throw new Error(`web UI: ${UI_DIR}/index.html is missing`);
  assets = loaded;
  return loaded;
}

export function registerUiRoutes(app: FastifyInstance, _engine: Engine): void {
  const files = loadUiAssets();

  const serve = (asset: Asset) => async (request: FastifyRequest, reply: FastifyReply) => {
    reply
      .header('content-security-policy', UI_CSP)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      .header('etag', asset.etag);
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.type(asset.type).send(asset.body);
  };

  const index = serve(files.get('index.html') as Asset);
  // The router ignores trailing slashes, so `/ui` reaches this route too: send it to `/ui/`, where the
  // page's relative URLs resolve under /ui/.
  app.get('/ui/', async (request, reply) => {
    const at = request.url.indexOf('?');
    const [pathname, query] = at === -1 ? [request.url, ''] : [request.url.slice(0, at), request.url.slice(at)];
    if (pathname === '/ui') return reply.redirect(`/ui/${query}`, 301);
    return index(request, reply);
  });
  for (const [name, asset] of files) app.get(`/ui/${name}`, serve(asset));
}
