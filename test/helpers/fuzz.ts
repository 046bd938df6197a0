import fc from 'fast-check';
import type { LightMyRequestResponse, RouteOptions } from 'fastify';
import { expect } from 'vitest';
import { buildApp } from '../../src/app.js';
import { testConfig, type Config } from '../../src/config.js';
import type { Sql } from '../../src/db/database.js';
import { createEngine, type Engine } from '../../src/engine.js';
import { createLogger } from '../../src/logger.js';
import { ADMIN, type TestEngine } from './engine.js';
import { freshDatabase } from './db.js';

/** /v1 routes are fuzzed by fuzz-admin.test.ts, every other route by fuzz-intake.test.ts: together, all of them. */
export const isAdminRoute = (route: { url: string }) => route.url.startsWith('/v1/');

/**
 * The route-fuzzing campaign's shared parts: an engine that reports its routes as it registers them,
 * the row counter behind the "a refusal writes nothing" oracle, hostile-input generators and the oracle.
 */

export type FuzzRoute = { method: string; url: string; params: string[] };
export type FuzzEngine = TestEngine & { routes: FuzzRoute[] };

/** Outbound deliveries never leave the machine: every destination fails to resolve, at once. */
const unresolvable = async (hostname: string): Promise<never> => {
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
};

export async function startFuzzEngine(overrides: Partial<Config> = {}): Promise<FuzzEngine> {
  const db = await freshDatabase();
  const config = testConfig({ adminToken: ADMIN, databaseUrl: db.url, addressRateLimitPerS: 1_000_000, deliveryBackoffS: [86_400], ...overrides });
  const engine = await createEngine(config, db.sql, createLogger('silent'), { resolve: unresolvable });
  const routes: FuzzRoute[] = [];
  const app = await buildApp(engine, {
    onRoute: (route: RouteOptions) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const params = [...route.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1] as string);
      for (const method of methods) routes.push({ method, url: route.url, params });
    },
  });
  await app.ready();
  return {
    app,
    engine,
    sql: db.sql,
    url: db.url,
    routes,
    close: async () => {
      await app.close();
      await engine.close();
      await db.drop();
    },
  };
}

/** Writes that land after the answer (click, pixel and attempt batches) are made visible before counting. */
export async function settle(engine: Engine): Promise<void> {
  await Promise.all([engine.clickWriter.flush(), engine.pixelWriter.flush(), engine.intake.attempts.flush()]);
}

export type RowCounts = Map<string, number>;

/**
 * Row counts of every application table: each base table of the public schema per information_schema,
 * partitions counted through their parent (so a day partition created mid-run is no new table), in one query.
 * Counting takes milliseconds and the campaign counts after nearly every case, so a case after which the
 * write-ahead log has not moved reuses the last counts: no row can have been written without WAL, and the
 * campaign refuses to start if any table is unlogged (the one kind whose writes skip it).
 */
export async function rowCounter(sql: Sql): Promise<() => Promise<RowCounts>> {
  const tables = await sql<{ name: string; persistence: string }[]>`
    select t.table_name as name, c.relpersistence as persistence from information_schema.tables t
    join pg_namespace n on n.nspname = t.table_schema
    join pg_class c on c.relnamespace = n.oid and c.relname = t.table_name
    where t.table_schema = 'public' and t.table_type = 'BASE TABLE' and not c.relispartition
    order by 1`;
  if (tables.length < 10) throw new Error(`expected the engine's tables, found ${tables.map((t) => t.name).join(', ')}`);
  const unlogged = tables.filter((t) => t.persistence !== 'p');
  if (unlogged.length > 0) throw new Error(`unlogged tables defeat the WAL shortcut: ${unlogged.map((t) => t.name).join(', ')}`);
  const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
  const literal = (name: string) => `'${name.replaceAll("'", "''")}'`;
  const query = tables.map(({ name }) => `select ${literal(name)} as name, count(*)::int as n from public.${ident(name)}`).join(' union all ');
  let lastLsn: string | undefined;
  let lastCounts: RowCounts | undefined;
  return async () => {
    const [{ lsn } = { lsn: '' }] = await sql<{ lsn: string }[]>`select pg_current_wal_insert_lsn()::text as lsn`;
    if (lastCounts && lsn === lastLsn) return lastCounts;
    lastCounts = new Map((await sql.unsafe<{ name: string; n: number }[]>(query, [], { prepare: true })).map((r) => [r.name, r.n]));
    lastLsn = lsn;
    return lastCounts;
  };
}

export function changedTables(before: RowCounts, after: RowCounts): Record<string, number> {
  const changed: Record<string, number> = {};
  for (const [name, n] of after) if (n !== (before.get(name) ?? 0)) changed[name] = n - (before.get(name) ?? 0);
  return changed;
}

// ---- generators -------------------------------------------------------------------------------

export const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'isPrototypeOf'];

/** Text a sender may put anywhere: unicode, lone surrogates, NUL and controls, huge numbers, long runs. */
export const hostileText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_KEYS) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '', ' ', '\u0000', 'a\u0000b', '\ud800', '\udfff', '\u202e', '💩', 'null', 'undefined', 'true', '[]', '{}', '-0', 'NaN', 'Infinity',
      '1e400', '-1e400', '123456789012345678901234567890', '0x10', '2.50', '2,50', '-2.50', '{clickid}', '%', '%zz', '%E2%82', '%00', '../..', '<script>',
    ),
  },
  { weight: 1, arbitrary: fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map(String) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('x', '9', 'é', '💩', '%'), fc.integer({ min: 256, max: 5000 })).map(([c, n]) => c.repeat(n)) },
);

/**
 * Percent-encodes the UTF-8 of a string; lone surrogates, which encodeURIComponent throws on, become
 * the raw bytes a broken client would send (ED A0 80...), so invalid UTF-8 reaches the engine too.
 */
export function percentEncode(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0) as number;
    if (/^[A-Za-z0-9_.~-]$/.test(ch)) out += ch;
    else if (code >= 0xd800 && code <= 0xdfff) out += [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)].map(hex).join('');
    else out += [...Buffer.from(ch, 'utf8')].map(hex).join('');
  }
  return out;
}
const hex = (b: number) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`;

/** How a key or value travels in a query or form: encoded, raw (URL-safe parts only), or broken. */
function onTheWire(text: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 5, arbitrary: text.map(percentEncode) },
    { weight: 2, arbitrary: text.map((s) => s.replace(/[^\x21-\x7e]|[#&=]/g, '')) },
    { weight: 1, arbitrary: fc.tuple(text.map(percentEncode), fc.constantFrom('%', '%z', '%G0', '%E2%82', '%FF%FE', '%C0%AF', '%ED%A0%80', '+', '%2'), fc.boolean()).map(([s, junk, front]) => (front ? junk + s : s + junk)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }).map((bytes) => [...bytes].map(hex).join('')) },
  );
}

/** A raw query string (without `?`) over the route's known keys and hostile ones, duplicates included. */
export function rawQuery(keys: readonly string[], values: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const key = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...keys) }, { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_KEYS) }, { weight: 1, arbitrary: hostileText });
  const value = fc.oneof({ weight: 3, arbitrary: values }, { weight: 1, arbitrary: hostileText });
  const pair = fc.oneof(
    { weight: 8, arbitrary: fc.tuple(onTheWire(key), onTheWire(value)).map(([k, v]) => `${k}=${v}`) },
    { weight: 1, arbitrary: onTheWire(key) },
    { weight: 1, arbitrary: fc.tuple(onTheWire(key), onTheWire(value), onTheWire(value)).map(([k, a, b]) => `${k}=${a}=${b}`) },
    { weight: 1, arbitrary: fc.tuple(onTheWire(key), onTheWire(value)).map(([k, v]) => `${k}[]=${v}&${k}[0]=${v}&${k}[a][b]=${v}`) },
  );
  return fc
    .tuple(fc.array(pair, { maxLength: 8 }), fc.constantFrom('&', '&', '&', ';', '&&'))
    .map(([pairs, sep]) => pairs.join(sep));
}

/** A URL-encoded form body from key/value pairs, duplicates and hostile keys included. */
export function formBody(keys: readonly string[], values: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return rawQuery(keys, values);
}

/** JSON values whose object keys include the hostile names, nested in objects and arrays. */
export function hostileJson(keys: readonly string[], values: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  const key = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...keys) }, { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_KEYS) }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }) });
  const { tree } = fc.letrec<{ tree: unknown; leaf: unknown }>((tie) => ({
    leaf: fc.oneof(values, hostileText, fc.double(), fc.integer(), fc.boolean(), fc.constant(null)),
    tree: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      tie('leaf'),
      fc.array(tie('tree'), { maxLength: 4 }),
      fc.array(fc.tuple(key, tie('tree')), { maxLength: 6 }).map(objectWithOwnKeys),
    ),
  }));
  return fc.oneof(fc.array(fc.tuple(key, tree), { maxLength: 8 }).map(objectWithOwnKeys), tree);
}

/** Builds an object whose keys are own data properties, `__proto__` included (as JSON.parse would). */
function objectWithOwnKeys(entries: [string, unknown][]): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(object, k, { value: v, enumerable: true, configurable: true, writable: true });
  return object;
}

export type Body = { contentType: string | undefined; payload: string | Buffer | undefined };

/** JSON, form and raw bodies, with the content type that goes with them or a wrong one. */
export function bodies(jsonish: fc.Arbitrary<unknown>, form: fc.Arbitrary<string>): fc.Arbitrary<Body> {
  const contentType = fc.oneof(
    fc.constantFrom(
      'application/json', 'application/json; charset=utf-8', 'Application/JSON', 'application/json; charset=latin1', 'application/x-www-form-urlencoded',
      'application/x-www-form-urlencoded; charset=utf-8', 'text/csv', 'application/csv', 'text/plain', 'multipart/form-data; boundary=x',
      'application/octet-stream', 'application/xml', '', ';', 'application/json;;', '*/*',
    ),
    fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 30 }),
  );
  const jsonText = fc.oneof(
    { weight: 6, arbitrary: jsonish.map((v) => JSON.stringify(v) ?? 'null') },
    { weight: 1, arbitrary: fc.constantFrom('{"a":1,"a":2}', '{"payout":1e400}', '[1e999]', '{"__proto__":{"admin":true}}', '{', '"\\ud800"', '{"a":"\\u0000"}', 'nul', '') },
  );
  const raw = fc.oneof(fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)), fc.constantFrom(Buffer.from([0xff, 0xfe, 0x00]), Buffer.from('txid,clickid\n"a\n')));
  const oversized = fc.constantFrom(17 * 1024, 64 * 1024).map((n) => `{"name":"${'x'.repeat(n)}"}`);
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant<Body>({ contentType: undefined, payload: undefined }) },
    { weight: 5, arbitrary: jsonText.map((payload): Body => ({ contentType: 'application/json', payload })) },
    { weight: 3, arbitrary: form.map((payload): Body => ({ contentType: 'application/x-www-form-urlencoded', payload })) },
    { weight: 3, arbitrary: fc.tuple(fc.oneof(jsonText, form, raw), contentType).map(([payload, ct]): Body => ({ contentType: ct, payload })) },
    { weight: 2, arbitrary: raw.map((payload): Body => ({ contentType: undefined, payload })) },
    { weight: 1, arbitrary: fc.tuple(oversized, fc.constantFrom('application/json', 'text/csv')).map(([payload, ct]): Body => ({ contentType: ct, payload })) },
  );
}

/** Header values as HTTP can carry them: visible ASCII and obs-text, no CR/LF. */
export const headerText: fc.Arbitrary<string> = hostileText.map((s) => s.replace(/[^\x20-\x7e\x80-\xff]/g, '').slice(0, 2000));

export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** The route's own method most of the time, otherwise any other. */
export function methodFor(route: FuzzRoute): fc.Arbitrary<string> {
  return fc.oneof({ weight: 4, arbitrary: fc.constant(route.method) }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) });
}

/** A path parameter: one that exists, one that looks like it could, random text, encoded junk. */
export function pathParam(existing: readonly string[], existingWeight = 4): fc.Arbitrary<string> {
  const looksValid = fc.tuple(fc.constantFrom('adv', 'pub', 'off', 'tok', 'sec', 'cv', 'dlv', 'rec'), fc.base64String({ minLength: 16, maxLength: 16 }))
    .map(([prefix, tail]) => `${prefix}_${tail.replace(/\+/g, '-').replace(/\//g, '_').replace(/=/g, '')}`);
  return fc.oneof(
    { weight: existing.length > 0 ? existingWeight : 0, arbitrary: existing.length > 0 ? fc.constantFrom(...existing).map(percentEncode) : fc.constant('x') },
    { weight: 2, arbitrary: looksValid },
    { weight: 3, arbitrary: onTheWire(hostileText).filter((s) => s.length > 0) },
    { weight: 1, arbitrary: fc.constantFrom('%2F', '%2e%2e', '..', '%00', '%', '%zz', '%ED%A0%80', 'x'.repeat(201), 'x'.repeat(199)) },
  );
}

// ---- the oracle -------------------------------------------------------------------------------

/**
 * No answer is a 5xx except the contract's 503 `unavailable`, and every refusal carries the error
 * shape `{"error": {"code", "message"}}` (HEAD answers carry headers only).
 */
export function expectContractAnswer(res: LightMyRequestResponse, method: string, what: string): void {
  const { statusCode } = res;
  if (statusCode >= 500) {
    expect(statusCode, `${what} -> ${statusCode} ${res.body.slice(0, 500)}`).toBe(503);
  }
  if (statusCode >= 400 && method !== 'HEAD') {
    expect(res.headers['content-type'], `${what} -> ${statusCode}`).toMatch(/^application\/json/);
    const body = res.json() as { error?: { code?: unknown; message?: unknown } };
    expect(Object.keys(body), `${what} -> ${res.body.slice(0, 500)}`).toEqual(['error']);
    expect(body.error?.code, what).toMatch(/^[a-z]+(?:_[a-z]+)*$/);
    expect(typeof body.error?.message === 'string' && body.error.message.length > 0, `${what} -> ${res.body.slice(0, 500)}`).toBe(true);
    if (statusCode === 503) expect(body.error?.code).toBe('unavailable');
    expect((body.error as { requestId?: unknown } | undefined)?.requestId, what).toBe(res.headers['x-request-id']);
  }
}

/** FUZZ_SEED pins every property of the campaign; otherwise fast-check draws one (and prints it on failure). */
export function fuzzParameters(numRuns: number): fc.Parameters<unknown> {
  const seed = process.env.FUZZ_SEED;
  if (seed !== undefined && !/^-?\d+$/.test(seed)) throw new Error(`FUZZ_SEED must be an integer, got ${seed}`);
  return { numRuns, ...(seed === undefined ? {} : { seed: Number(seed) }), endOnFailure: false };
}

/** `METHOD url` for failure messages: the request fast-check shrank to, readable. */
export function describeRequest(method: string, url: string, headers: Record<string, string>, body: Body): string {
  const shown = body.payload === undefined ? '' : ` body(${body.contentType ?? 'none'})=${JSON.stringify(String(body.payload).slice(0, 300))}`;
  return `${method} ${url.slice(0, 500)} headers=${JSON.stringify(headers).slice(0, 400)}${shown}`;
}

// ---- the campaign runner ----------------------------------------------------------------------

export type FuzzRequest = { method: string; url: string; headers: Record<string, string>; body: Body; remoteAddress: string };

export type Campaign = {
  t: FuzzEngine;
  counts: () => Promise<RowCounts>;
  /**
   * What a refusal of this route may write, beyond nothing: the postback route's attempt log (contract §4).
   * Returns the tables allowed to change and by how many rows.
   */
  refusalWrites?: (route: FuzzRoute, req: FuzzRequest, res: LightMyRequestResponse) => Record<string, number>;
  /** Route-specific promises on top of the shared oracle (the pixel's image, say). */
  extraCheck?: (route: FuzzRoute, req: FuzzRequest, res: LightMyRequestResponse, what: string) => void;
};

/** Cases run per route; CI gets the full count, a local run can lower it with FUZZ_RUNS. */
export function runsPerRoute(fallback: number): number {
  const runs = process.env.FUZZ_RUNS;
  if (runs === undefined) return fallback;
  if (!/^\d+$/.test(runs)) throw new Error(`FUZZ_RUNS must be a positive integer, got ${runs}`);
  return Number(runs);
}

/**
 * One property per route: the request is sent, the answer judged, and a refusal (any 4xx) must leave
 * every table as it was, apart from what `refusalWrites` names. Returns how many cases ran.
 */
export async function fuzzRoute<R>(
  campaign: Campaign,
  route: FuzzRoute,
  recipe: fc.Arbitrary<R>,
  build: (recipe: R) => FuzzRequest | Promise<FuzzRequest>,
  numRuns: number,
): Promise<number> {
  const { t } = campaign;
  let cases = 0;
  const statuses = new Map<number, number>();
  const startedAt = performance.now();
  await settle(t.engine);
  let last = await campaign.counts();
  await fc.assert(
    fc.asyncProperty(recipe, async (r) => {
      cases++;
      const req = await build(r);
      const what = describeRequest(req.method, req.url, req.headers, req.body);
      const res = await t.app.inject({
        method: req.method as 'GET',
        url: req.url,
        headers: { ...req.headers, ...(req.body.contentType === undefined ? {} : { 'content-type': req.body.contentType }) },
        ...(req.body.payload === undefined ? {} : { payload: req.body.payload }),
        remoteAddress: req.remoteAddress,
      });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      await settle(t.engine);
      const before = last;
      last = await campaign.counts();
      expectContractAnswer(res, req.method, what);
      campaign.extraCheck?.(route, req, res, what);
      if (res.statusCode >= 400 && res.statusCode < 500) {
        const allowed = campaign.refusalWrites?.(route, req, res) ?? {};
        const changed = changedTables(before, last);
        for (const [table, delta] of Object.entries(changed)) {
          expect(table in allowed && delta > 0 && delta <= (allowed[table] as number), `${what} -> ${res.statusCode} ${res.body.slice(0, 300)} wrote ${JSON.stringify(changed)}`).toBe(true);
        }
      }
    }),
    fuzzParameters(numRuns),
  );
  // FUZZ_STATS=1 shows what the generators reach per route: a campaign answered 401 throughout tests little.
  if (process.env.FUZZ_STATS) console.log(`${route.method} ${route.url} (${Math.round(performance.now() - startedAt)} ms): ${[...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(' ')}`);
  return cases;
}
