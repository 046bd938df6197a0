import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { buildApp } from '../../src/app.js';
import { testConfig, type Config } from '../../src/config.js';
import { connect, type Sql } from '../../src/db/database.js';
import { createEngine, type Engine, type EngineOptions } from '../../src/engine.js';
import { createLogger } from '../../src/logger.js';
import { ADMIN, auth } from './engine.js';

/** Helpers shared by the admin API tests: contract-shaped error checks, table snapshots, a second node. */

/** Every table an admin write can touch; a refused request must leave all of them exactly as they were. */
const ADMIN_TABLES = ['advertisers', 'advertiser_secrets', 'publishers', 'offers', 'api_tokens', 'catalog_version'] as const;

export async function adminTablesSnapshot(sql: Sql): Promise<Record<string, unknown[]>> {
  const snapshot: Record<string, unknown[]> = {};
  for (const table of ADMIN_TABLES) snapshot[table] = [...(await sql`select * from ${sql(table)} order by 1`)];
  return snapshot;
}

export async function countRows(sql: Sql, table: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from ${sql(table)}`;
  return row?.n ?? 0;
}

/**
 * Asserts the contract's error shape: `{"error": {"code", "message", "details"?}}`. With `paths`, the
 * body must be a validation error naming exactly those fields (order-free), each with a message.
 */
export function expectApiError(res: LightMyRequestResponse, status: number, code: string, paths?: string[]): void {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json();
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(body.error.message.length).toBeGreaterThan(0);
  // The ID a caller quotes to support is the one the response header carried.
  expect(body.error.requestId).toBe(res.headers['x-request-id']);
  if (paths) {
    expect(Array.isArray(body.error.details), res.body).toBe(true);
    for (const detail of body.error.details) {
      expect(Object.keys(detail).sort()).toEqual(['message', 'path']);
      expect(typeof detail.message).toBe('string');
    }
    const got = [...new Set(body.error.details.map((d: { path: string }) => d.path))].sort();
    expect(got, res.body).toEqual([...new Set(paths)].sort());
  }
}

export async function post(app: FastifyInstance, url: string, payload: unknown, token = ADMIN) {
  return app.inject({ method: 'POST', url, headers: auth(token), payload: payload as object });
}

export async function patch(app: FastifyInstance, url: string, payload: unknown, token = ADMIN) {
  return app.inject({ method: 'PATCH', url, headers: auth(token), payload: payload as object });
}

export async function get(app: FastifyInstance, url: string, token = ADMIN) {
  return app.inject({ method: 'GET', url, headers: auth(token) });
}

export async function createToken(app: FastifyInstance, role: 'admin' | 'analyst' | 'finance'): Promise<{ id: string; token: string }> {
  const res = await post(app, '/v1/tokens', { role, name: `${role} token` });
  if (res.statusCode !== 201) throw new Error(`POST /v1/tokens -> ${res.statusCode} ${res.body}`);
  return res.json();
}

export type SecondNode = { app: FastifyInstance; engine: Engine; close: () => Promise<void> };

/**
 * Another engine process in miniature: its own pool, catalog and poller over the same database, so a
 * change made through the first node is only visible here the way it would be on another machine.
 */
export async function startSecondNode(url: string, overrides: Partial<Config> = {}, opts: EngineOptions = {}): Promise<SecondNode> {
  const sql = connect(url, { max: 5 });
  const engine = await createEngine(testConfig({ adminToken: ADMIN, databaseUrl: url, ...overrides }), sql, createLogger('silent'), opts);
  const app = await buildApp(engine);
  await app.ready();
  return {
    app,
    engine,
    close: async () => {
      await app.close();
      await engine.close();
      await sql.end({ timeout: 1 });
    },
  };
}

/** Polls `probe` until `accept` holds or the deadline passes; the failure names the last value seen. */
export async function eventually<T>(
  probe: () => T | Promise<T>,
  accept: (value: T) => boolean,
  { timeoutMs = 5000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value)) return value;
    if (Date.now() >= deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value, bigintSafe)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function bigintSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** The raw key bytes behind a `whsec_` secret, after checking its exact shape. */
export function decodeWebhookSecret(text: string): Buffer {
  expect(text).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
  const key = Buffer.from(text.slice('whsec_'.length), 'base64');
  expect(key.length).toBe(32);
  return key;
}
