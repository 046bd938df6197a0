import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startEmbeddedPostgres } from '../db/embedded.js';

/**
 * Where `npm run reconcile` finds PostgreSQL: DATABASE_URL when set; else the embedded server under
 * DATA_DIR, as `npm start` uses it. When an engine is running on that data directory its server is
 * already up, and starting another would stop it (embedded.ts stops a server it finds there, taking
 * it for an orphan), so the CLI connects to the running one instead and starts one only when none runs.
 */

export type CliDatabase = { url: string; description: string; stop(): Promise<void> };

export async function openCliDatabase(databaseUrl: string | undefined, dataDir: string, log: (line: string) => void): Promise<CliDatabase> {
  if (databaseUrl) return { url: databaseUrl, description: 'DATABASE_URL', stop: async () => undefined };
  const running = await runningEmbedded(dataDir);
  if (running) return { url: running, description: `the engine's embedded PostgreSQL in ${dataDir}`, stop: async () => undefined };
  const embedded = await startEmbeddedPostgres(dataDir, log);
  return { url: embedded.url, description: `embedded PostgreSQL in ${dataDir} (started for this run)`, stop: () => embedded.stop() };
}

/** The URL of a live server on this data directory, from its postmaster.pid (line 4 is the port). */
async function runningEmbedded(dataDir: string): Promise<string | undefined> {
  const root = path.resolve(dataDir);
  let lines: string[];
  let password: string;
  try {
    lines = (await readFile(path.join(root, 'pg', 'postmaster.pid'), 'utf8')).split('\n');
    password = (await readFile(path.join(root, 'pg-password'), 'utf8')).trim();
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0 || !isAlive(pid)) return undefined;
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
