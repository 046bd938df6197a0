import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { testConfig, type Config } from '../../src/config.js';
import { connect, type Sql } from '../../src/db/database.js';
import { createEngine, type Engine } from '../../src/engine.js';
import { createLogger } from '../../src/logger.js';
import { freshDatabase, type TestDatabase } from './db.js';
import { ADMIN } from './engine.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

/**
 * An engine whose every PostgreSQL connection goes through a TCP proxy the test can cut (refuse,
 * black-hole, lose replies) and restore, over a fresh database the test can still read directly
 * (`db.sql` does not go through the proxy).
 */
export type ProxiedEngine = { db: TestDatabase; proxy: TcpProxy; engine: Engine; app: FastifyInstance; close(): Promise<void> };

export async function startProxiedEngine(overrides: Partial<Config> = {}): Promise<ProxiedEngine> {
  const db = await freshDatabase();
  const target = new URL(db.url);
  const proxy = await startTcpProxy(target.hostname, Number(target.port));
  const proxied = new URL(db.url);
  proxied.port = String(proxy.port);
  const engineSql: Sql = connect(proxied.toString());
  const engine = await createEngine(testConfig({ adminToken: ADMIN, databaseUrl: proxied.toString(), ...overrides }), engineSql, createLogger('silent'));
  const app = await buildApp(engine);
  await app.ready();
  return {
    db,
    proxy,
    engine,
    app,
    async close() {
      await proxy.restore();
      await app.close();
      await engine.close();
      await engineSql.end({ timeout: 1 });
      await proxy.close();
      await db.drop();
    },
  };
}
