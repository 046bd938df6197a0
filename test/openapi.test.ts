import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiDocument } from '../src/openapi/document.js';
import { errorBody } from '../src/openapi/operation.js';
import { DOCS_CSP, REDOC_REMOTE_LOGO } from '../src/openapi/route.js';
import { health, postbackResult, readiness } from '../src/openapi/responses.js';
import { loadUiAssets } from '../src/ui/route.js';
import { auth, seedCatalog } from './helpers/engine.js';
import { changedTables, rowCounter, settle, startFuzzEngine, type FuzzEngine, type RowCounts } from './helpers/fuzz.js';
import { cases, type Case, type Seed } from './helpers/openapi-cases.js';
import { documentJudge, requestShape, type Document } from './helpers/openapi.js';
import { mintClick, signedGetUrl, webhookHeaders } from './helpers/postback.js';

/**
 * The OpenAPI document (GET /openapi.json) against the engine itself: every registered route is in
 * it, its request schemas judge real calls as the routes do, it passes Redocly's lint, and /docs renders
 * it with nothing but same-origin scripts.
 */

let t: FuzzEngine;
let doc: Document;
let seed: Seed;
let counts: () => Promise<RowCounts>;

/** Static files of the web UI (one route per file in src/ui/): they have no API to describe; /ui/ itself is documented. */
const uiAssets = () => [...loadUiAssets().keys()].map((name) => `/ui/${name}`);

const operationsOf = (d: Document) =>
  Object.entries(d.paths).flatMap(([p, item]) => Object.entries(item).map(([method, op]) => ({ method, path: p, op })));

beforeAll(async () => {
  t = await startFuzzEngine();
  counts = await rowCounter(t.sql);
  const res = await t.app.inject({ method: 'GET', url: '/openapi.json' });
  expect(res.statusCode).toBe(200);
  doc = res.json() as Document;
  const { advertiser, publisher, offer } = await seedCatalog(t.app);
  // As fuzz-intake does: deliveries queue and wait, so no delivery attempt lands in the middle of a case's row count.
  await t.sql`update publishers set disabled_at = now(), disabled_reason = 'openapi test' where id = ${publisher.id}`;
  await t.engine.catalog.load();
  const clickId = await mintClick(t.app, offer.id, publisher.id);
  const first = await t.app.inject({ method: 'GET', url: signedGetUrl(advertiser.id, `clickid=${clickId}&txid=seed-1`, advertiser.secrets[0].secret) });
  expect(first.statusCode, first.body).toBe(200);
  seed = { advertiserId: advertiser.id, whsec: advertiser.secrets[0].secret, publisherId: publisher.id, offerId: offer.id, clickId, conversionId: first.json().conversionId };
});

afterAll(async () => t?.close());

describe('GET /openapi.json', () => {
  it('is the document the engine generates, served without a token', async () => {
    expect(doc).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
    expect(doc).toMatchObject({ openapi: '3.1.0' });
  });

  it('lists every route the app registers, with its method, and nothing the app does not serve', () => {
    const registered = t.routes
      .filter((r) => r.method !== 'HEAD' && !uiAssets().includes(r.url))
      .map((r) => `${r.method.toLowerCase()} ${r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`);
    const documented = operationsOf(doc).map((o) => `${o.method} ${o.path}`);
    expect(registered.length).toBeGreaterThan(40);
    expect(registered.filter((r) => !documented.includes(r)), 'registered routes missing from the document').toEqual([]);
    expect(documented.filter((d) => !registered.includes(d)), 'documented operations no route serves').toEqual([]);
  });

  it('gives every operation a success and, but for the pixel, the contract error shape for its 4XX', () => {
    for (const { method, path: p, op } of operationsOf(doc)) {
      const statuses = Object.keys(op.responses);
      expect(statuses.some((s) => /^[23]/.test(s)), `${method} ${p}`).toBe(true);
      if (p === '/pixel.gif') {
        expect(statuses).toEqual(['200']);
        continue;
      }
      expect(statuses, `${method} ${p}`).toContain('400');
      for (const s of statuses.filter((s) => /^[45]/.test(s))) {
        expect((op.responses[s] as { content: unknown }).content, `${method} ${p} ${s}`).toEqual({ 'application/json': { schema: { $ref: '#/components/schemas/Error' } } });
      }
    }
  });

  it('passes the Redocly lint (redocly.yaml) with no error and no warning', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'openapi-'));
    try {
      const file = path.join(dir, 'openapi.json');
      writeFileSync(file, JSON.stringify(doc));
      const cli = fileURLToPath(import.meta.resolve('@redocly/cli/bin/cli.js'));
      const run = spawnSync(process.execPath, [cli, 'lint', '--config', path.resolve('redocly.yaml'), '--format', 'json', file], {
        encoding: 'utf8',
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
        timeout: 60_000,
      });
      const report = JSON.parse(run.stdout.slice(run.stdout.indexOf('{'))) as { totals: { errors: number; warnings: number }; problems: unknown[] };
      expect(report.problems, run.stderr).toEqual([]);
      expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
      expect(run.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('request schemas in the document', () => {
  let all: Case[];
  beforeAll(() => {
    all = cases(
      seed,
      (query) => signedGetUrl(seed.advertiserId, query, seed.whsec),
      (body) => webhookHeaders(seed.whsec, body),
    );
  });

  it('have, for every operation with a query or body, a call the document accepts and, where it can, one it refuses', () => {
    const judge = documentJudge(doc);
    for (const { op } of operationsOf(doc)) {
      const { takesInput, canRefuse } = requestShape(op);
      if (!takesInput) continue;
      const mine = all.filter((c) => c.op === op.operationId);
      expect(mine.some((c) => judge(op.operationId, c).length === 0), `${op.operationId}: no accepted call`).toBe(true);
      if (canRefuse) expect(mine.some((c) => judge(op.operationId, c).length > 0), `${op.operationId}: no refused call`).toBe(true);
    }
  });

  it('accept and refuse what the routes accept and refuse, and a refusal writes nothing', async () => {
    const judge = documentJudge(doc);
    const located = new Map(operationsOf(doc).map((o) => [o.op.operationId, o]));
    for (const c of all) {
      const { method, path: p } = located.get(c.op) as { method: string; path: string };
      const url =
        c.url ??
        p.replace(/\{([A-Za-z0-9_]+)\}/g, (_, name: string) => encodeURIComponent(c.params?.[name] ?? '')) +
          (c.query && Object.keys(c.query).length > 0 ? `?${new URLSearchParams(c.query)}` : '');
      await settle(t.engine);
      const before = await counts();
      const res = await t.app.inject({
        method: method.toUpperCase() as 'GET',
        url,
        headers: { ...(c.op.startsWith('postback') ? {} : auth()), ...(c.body !== undefined ? { 'content-type': c.contentType ?? 'application/json' } : {}), ...c.headers },
        ...(c.body !== undefined ? { payload: c.payload ?? JSON.stringify(c.body) } : {}),
      });
      const label = `${c.op} ${url} ${JSON.stringify(c.body ?? null)} -> ${res.statusCode} ${res.body.slice(0, 300)}`;
      expect(res.statusCode, label).toBe(c.expect);
      const documentRefuses = judge(c.op, c).length > 0;
      if (c.op === 'pixel') {
        expect(res.headers['content-type'], label).toBe('image/gif');
        continue;
      }
      expect(documentRefuses, `${label}: the document says ${judge(c.op, c).join('; ') || 'valid'}`).toBe(c.expect === 400);
      if (c.expect === 400) {
        expect(errorBody.safeParse(res.json()).success, label).toBe(true);
        expect(res.json().error.code, label).toBe('invalid_request');
        await settle(t.engine);
        const changed = changedTables(before, await counts());
        // CONTRACT §4: a refused postback leaves one attempt-log row, and nothing else.
        expect(changed, label).toEqual(c.op.startsWith('postback') ? { postback_attempts: 1 } : {});
      }
      if (c.op.startsWith('postback') && c.expect === 200) expect(postbackResult.parse(res.json()), label).toMatchObject({ duplicate: false });
    }
  });

  it('describe the answers they give a schema for', async () => {
    expect(health.parse((await t.app.inject({ method: 'GET', url: '/healthz' })).json())).toEqual({ status: 'ok' });
    expect(readiness.parse((await t.app.inject({ method: 'GET', url: '/readyz' })).json())).toEqual({ status: 'ready' });
    const refused = await t.app.inject({ method: 'GET', url: '/v1/offers' });
    expect(refused.statusCode).toBe(401);
    expect(errorBody.parse(refused.json()).error.code).toBe('unauthorized');
  });
});

describe('GET /docs', () => {
  it('serves a page whose only script is the engine\'s own Redoc bundle, under a same-origin policy', async () => {
    const page = await t.app.inject({ method: 'GET', url: '/docs' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe(DOCS_CSP);
    expect(DOCS_CSP).toContain("script-src 'self';");
    const scripts = [...page.body.matchAll(/<script\b([^>]*)>/g)].map((m) => /\bsrc="([^"]+)"/.exec(m[1] as string)?.[1]);
    expect(scripts).toEqual(['/docs/redoc.js']);
    expect(page.body).toContain('<redoc spec-url="/openapi.json">');
    expect(page.body).not.toMatch(/(src|href)="(https?:)?\/\//);
    const bundle = await t.app.inject({ method: 'GET', url: '/docs/redoc.js' });
    expect(bundle.statusCode).toBe(200);
    expect(bundle.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(bundle.body).toContain('Redoc');
    expect(bundle.body).not.toContain(REDOC_REMOTE_LOGO);
    const again = await t.app.inject({ method: 'GET', url: '/docs/redoc.js', headers: { 'if-none-match': String(bundle.headers.etag) } });
    expect(again.statusCode).toBe(304);
  });
});
