import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type Sql } from '../db/database.js';
import { startEmbeddedPostgres } from '../db/embedded.js';
import { startReceiver, type Receiver } from './receiver.js';
import { freePort } from '../net/free-port.js';

/**
 * The engine under simulation. By default the simulator starts its own: a PostgreSQL (embedded, in a
 * temporary directory; or a fresh database on the server DATABASE_URL names), optionally its own
 * redis-server, and one engine process (`src/main.ts`, exactly as `npm start` runs it) configured to
 * believe X-Forwarded-For from 127.0.0.1, so each simulated user and the advertiser's server have
 * their own address. With `--url` it drives an engine that is already running instead.
 */

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const READY_TIMEOUT_MS = 90_000;

export type TargetOptions = { url?: string; adminToken?: string; databaseUrl?: string; redisUrl?: string; ownRedis: boolean; log: (line: string) => void };

export type Target = {
  baseUrl: string;
  adminToken: string;
  /** The simulator's own connection, for the twin clicks and the final read of scores. */
  sql: Sql;
  receiver: Receiver | undefined;
  description: string;
  fraudState: 'memory' | 'redis' | 'unknown';
  close: () => Promise<void>;
};

export async function startTarget(o: TargetOptions): Promise<Target> {
  if (o.url) {
    if (!o.adminToken) throw new Error('--url needs the engine admin token (--admin-token or ADMIN_TOKEN)');
    if (!o.databaseUrl) throw new Error("--url needs the engine's database (--database-url or DATABASE_URL) to write the twin clicks");
    const sql = connect(o.databaseUrl, { max: 8 });
    return { baseUrl: o.url.replace(/\/+$/, ''), adminToken: o.adminToken, sql, receiver: undefined, description: `engine at ${o.url}`, fraudState: 'unknown', close: () => sql.end({ timeout: 5 }) };
  }

  const cleanups: (() => Promise<void>)[] = [];
  const close = async () => {
    while (cleanups.length) await cleanups.pop()?.().catch((err: unknown) => o.log(`cleanup: ${String(err)}`));
  };
  try {
    const db = await database(o, cleanups);
    const redisUrl = o.redisUrl ?? (o.ownRedis ? await ownRedis(cleanups) : undefined);
    const receiver = await startReceiver();
    cleanups.push(receiver.close);
    const adminToken = `sim_${randomBytes(24).toString('base64url')}`;
    const engine = await spawnEngine({
      DATABASE_URL: db.url,
      ADMIN_TOKEN: adminToken,
      TRUST_PROXY: '127.0.0.1',
      ALLOW_PRIVATE_DESTINATIONS: 'true',
      RECONCILE_CRON: 'off',
      LOG_LEVEL: 'warn',
      // The simulator is one client address; the per-address limit is not what is measured.
      ADDRESS_RATE_LIMIT_PER_S: '1000000',
      ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
    });
    cleanups.push(engine.stop);
    const sql = connect(db.url, { max: 8 });
    cleanups.push(() => sql.end({ timeout: 5 }));
    return {
      baseUrl: engine.url,
      adminToken,
      sql,
      receiver,
      description: `own engine process (${db.what}${redisUrl ? ', Redis' : ', fraud state in memory'})`,
      fraudState: redisUrl ? 'redis' : 'memory',
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

async function database(o: TargetOptions, cleanups: (() => Promise<void>)[]): Promise<{ url: string; what: string }> {
  if (o.databaseUrl) {
    // A database of its own on that server, dropped afterwards: a run must not mix with other data.
    const name = `pbe_sim_${randomBytes(5).toString('hex')}`;
    const admin = connect(o.databaseUrl, { max: 1 });
    await admin.unsafe(`create database ${name}`);
    cleanups.push(async () => {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end({ timeout: 5 });
    });
    const url = new URL(o.databaseUrl);
    url.pathname = `/${name}`;
    return { url: url.toString(), what: `database ${name} on DATABASE_URL's server` };
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'pbe-sim-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  // mkdtemp makes it 0700; run as root, PostgreSQL runs as its own user and must reach its data dir inside.
  await chmod(dir, 0o755);
  o.log(`starting an embedded PostgreSQL in ${dir}`);
  const pg = await startEmbeddedPostgres(dir, o.log, { persistent: false });
  cleanups.push(pg.stop);
  return { url: pg.url, what: 'embedded PostgreSQL in a temporary directory' };
}

async function ownRedis(cleanups: (() => Promise<void>)[]): Promise<string> {
  if (spawnSync('redis-server', ['--version']).status !== 0) throw new Error('--redis needs redis-server on the PATH');
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  cleanups.push(() => stopChild(child));
  const deadline = Date.now() + 10_000;
  while (spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout?.trim() !== 'PONG') {
    if (Date.now() > deadline) throw new Error('redis-server did not start within 10 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return `redis://127.0.0.1:${port}`;
}

async function spawnEngine(env: Record<string, string>): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await freePort();
  // Only what the simulator sets: a DATABASE_URL or REDIS_URL in the shell must not leak in.
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const keep = (d: Buffer) => {
    lines.push(...d.toString('utf8').split('\n').filter(Boolean));
    lines.splice(0, Math.max(0, lines.length - 40));
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the engine exited during start-up:\n${lines.slice(-20).join('\n')}`);
    try {
      if ((await fetch(`${url}/readyz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`the engine was not ready within ${READY_TIMEOUT_MS / 1000} s:\n${lines.slice(-20).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, stop: () => stopChild(child) };
}

/** SIGTERM (the engine drains and exits), SIGKILL if it has not after 20 s. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

