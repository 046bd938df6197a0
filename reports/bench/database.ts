import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, type Sql } from '../../src/db/database.js';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { postmasterOfBackend } from './cpu-usage.js';

/**
 * The PostgreSQL the bench measures against: the one in DATABASE_URL when set, else an embedded
 * server in a temporary directory that is deleted afterwards. Each measured engine gets a fresh,
 * empty database on it (the engine migrates it on start), so runs never see each other's rows.
 */

export type FreshDatabase = { name: string; url: string; sql: Sql; postmasterPid: number | undefined; drop(): Promise<void> };
export type DatabaseServer = { description: string; fresh(): Promise<FreshDatabase>; stop(): Promise<void> };

export async function startDatabaseServer(log: (line: string) => void): Promise<DatabaseServer> {
  const external = process.env.DATABASE_URL;
  if (external) {
    return { description: `DATABASE_URL (${redact(external)})`, fresh: () => freshDatabase(external), stop: async () => undefined };
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pbe-bench-'));
  // When run as root the server runs as a `postgres` user, which must be able to reach its data dir.
  await chmod(dir, 0o755);
  const server = await startEmbeddedPostgres(dir, log, { persistent: false });
  return {
    description: `embedded PostgreSQL in ${dir} (deleted afterwards)`,
    fresh: () => freshDatabase(server.url),
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function freshDatabase(serverUrl: string): Promise<FreshDatabase> {
  const name = `bench_${randomBytes(5).toString('hex')}`;
  const admin = connect(serverUrl, { max: 1 });
  try {
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(serverUrl, name);
  const sql = connect(url, { max: 2 });
  const [backend] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
  return {
    name,
    url,
    sql,
    postmasterPid: backend ? postmasterOfBackend(backend.pid) : undefined,
    async drop() {
      await sql.end({ timeout: 2 });
      const a = connect(serverUrl, { max: 1 });
      try {
        await a.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await a.end();
      }
    },
  };
}

function withDatabase(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'unparseable URL';
  }
}

