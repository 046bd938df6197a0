import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { openApiDocument } from './document.js';

/**
 * `GET /openapi.json` and the reference page `GET /docs`, both public: the page is Redoc's standalone
 * bundle served from this engine, so it works without internet access and leaks no request elsewhere.
 */

/**
 * Redoc renders with styled-components, which injects <style> elements (hence 'unsafe-inline' for
 * styles only), and runs its search index in a worker made from a blob: URL. Scripts stay same-origin.
 */
export const DOCS_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "worker-src blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const REDOC_SCRIPT_PATH = '/docs/redoc.js';

const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Postback engine API reference</title>
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<script src="${REDOC_SCRIPT_PATH}"></script>
</body>
</html>
`;

/** The compiled build copies the bundle beside this module, because production installs omit dev dependencies (redoc is one). */
export function redocBundlePath(): string {
  const beside = fileURLToPath(new URL('./redoc.standalone.js', import.meta.url));
  return existsSync(beside) ? beside : fileURLToPath(import.meta.resolve('redoc/bundles/redoc.standalone.js'));
}

/**
 * The bundle's one resource on another origin: the footer's Redocly logo. Pointed at an empty data: URL
 * the image fails to load and Redoc hides it, so the page fetches nothing from elsewhere.
 */
export const REDOC_REMOTE_LOGO = 'https://cdn.redoc.ly/redoc/logo-mini.svg';

export function loadRedocBundle(): Buffer {
  return Buffer.from(readFileSync(redocBundlePath(), 'utf8').replaceAll(REDOC_REMOTE_LOGO, 'data:,'));
}

type Asset = { body: Buffer; etag: string };
const asset = (body: Buffer): Asset => ({ body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` });

// Read on first request, not at start-up: a megabyte no node needs until someone opens /docs.
let redoc: Asset | undefined;
let documentJson: Asset | undefined;

export function registerOpenApiRoutes(app: FastifyInstance): void {
  const send = (request: FastifyRequest, reply: FastifyReply, file: Asset, type: string) => {
    reply.header('etag', file.etag).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff');
    if (request.headers['if-none-match'] === file.etag) return reply.code(304).send();
    return reply.type(type).send(file.body);
  };

  app.get('/openapi.json', async (request, reply) => {
    documentJson ??= asset(Buffer.from(JSON.stringify(openApiDocument())));
    return send(request, reply, documentJson, 'application/json; charset=utf-8');
  });

  const page = asset(Buffer.from(DOCS_HTML));
  app.get('/docs', async (request, reply) => {
    reply.header('content-security-policy', DOCS_CSP).header('referrer-policy', 'no-referrer').header('x-frame-options', 'DENY');
    return send(request, reply, page, 'text/html; charset=utf-8');
  });

  app.get(REDOC_SCRIPT_PATH, async (request, reply) => {
    redoc ??= asset(loadRedocBundle());
    return send(request, reply, redoc, 'text/javascript; charset=utf-8');
  });
}
