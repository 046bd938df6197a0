import { randomBytes } from 'node:crypto';
import { connect, type Sql } from '../../src/db/database.js';
import { postmasterOfBackend } from './cpu-usage.js';
import { startTunedPostgres } from './tuned-postgres.js';

/**
 * The PostgreSQL the bench measures against: the one in DATABASE_URL when set, else an embedded
 * server in a temporary directory that is deleted afterwards. Each measured engine gets a fresh,
 * empty database on it (the engine migrates it on start), so runs never see each other's rows.
 *
 * The embedded server loads pg_stat_statements (what each statement cost PostgreSQL, for the CPU
 * per conversion) and allows enough connections for four engine processes (about 35 each).
 */

export type FreshDatabase = {
  name: string;
  url: string;
  sql: Sql;
  postmasterPid: number | undefined;
  /** false when the server does not load pg_stat_statements (a DATABASE_URL without it). */
  statements: boolean;
  drop(): Promise<void>;
};

const EMBEDDED_SETTINGS = { shared_preload_libraries: 'pg_stat_statements', max_connections: '300' };
export type DatabaseServer = { description: string; fresh(): Promise<FreshDatabase>; stop(): Promise<void> };

export async function startDatabaseServer(log: (line: string) => void): Promise<DatabaseServer> {
  const external = process.env.DATABASE_URL;
  if (external) {
    return { description: `DATABASE_URL (${redact(external)})`, fresh: () => freshDatabase(external), stop: async () => undefined };
  }
  const server = await startTunedPostgres(EMBEDDED_SETTINGS, log);
  return { description: server.description, fresh: () => freshDatabase(server.url), stop: () => server.stop() };
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
  const statements = await sql`create extension if not exists pg_stat_statements`.then(
    () => sql`select 1 from pg_stat_statements limit 1`.then(() => true),
    () => false,
  );
  return {
    name,
    url,
    sql,
    postmasterPid: backend ? postmasterOfBackend(backend.pid) : undefined,
    statements,
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

