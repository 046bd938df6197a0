import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { DatabaseServer, FreshDatabase } from './database.js';
import { runLoad, type Measurement } from './load.js';
import { phase } from './progress.js';
import { REPO_ROOT, startServer, type RedisServer, type ServerProcess } from './processes.js';

/**
 * The measured servers: the bare fastify baseline, and the real engine (`src/main.ts`) as an
 * operator would start it, each in its own process over a fresh database.
 */

export const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';
export const PROFILE_DIR = path.join(REPO_ROOT, 'reports', 'bench', 'results', 'profiles');

export type BenchOptions = {
  durationS: number;
  connections: number;
  warmupS: number;
  redis: boolean;
  cpuProf: boolean;
  clickPool: number | undefined;
};

export type BenchContext = {
  options: BenchOptions;
  db: DatabaseServer;
  redis: RedisServer | undefined;
};

export type Variant = 'memory' | 'redis';

export async function measureBaseline(ctx: BenchContext): Promise<Measurement> {
  phase('baseline: starting the bare fastify hello-world server (reports/bench/hello-server.ts)');
  const hello = await startServer({
    name: 'hello-world',
    nodeArgs: ['--import', 'tsx', 'reports/bench/hello-server.ts'],
    env: {},
    readyPath: '/',
  });
  try {
    const { connections, durationS, warmupS } = ctx.options;
    if (warmupS > 0) await runLoad({ label: 'warm-up hello-world', url: hello.baseUrl + '/', connections, durationS: warmupS, expectedStatus: 200 });
    return await runLoad({ label: 'measure hello-world', url: hello.baseUrl + '/', connections, durationS, expectedStatus: 200 });
  } finally {
    await hello.stop();
  }
}

export type RunningEngine = { server: ServerProcess; database: FreshDatabase; variant: Variant; profile?: { dir: string; startedAt: number } };

export async function startEngine(ctx: BenchContext, variant: Variant, tag: string): Promise<RunningEngine> {
  const database = await ctx.db.fresh();
  const env: Record<string, string> = {
    DATABASE_URL: database.url,
    ADMIN_TOKEN,
    RECONCILE_CRON: 'off',
    LOG_LEVEL: 'warn',
  };
  if (variant === 'redis') {
    if (!ctx.redis) throw new Error('redis variant requested without a redis-server');
    env.REDIS_URL = ctx.redis.url;
  }
  const nodeArgs = ['--import', 'tsx'];
  let profile: RunningEngine['profile'];
  if (ctx.options.cpuProf) {
    const dir = path.join(PROFILE_DIR, tag);
    await mkdir(dir, { recursive: true });
    nodeArgs.push('--cpu-prof', '--cpu-prof-dir', dir);
    profile = { dir, startedAt: Date.now() };
  }
  nodeArgs.push('src/main.ts');
  phase(`engine (${variant}${variant === 'redis' ? ` at ${ctx.redis?.url}` : ''}): starting node --import tsx src/main.ts on database ${database.name}`);
  try {
    const server = await startServer({ name: `engine (${variant})`, nodeArgs, env, readyPath: '/readyz' });
    return { server, database, variant, ...(profile ? { profile } : {}) };
  } catch (err) {
    await database.drop().catch(() => undefined);
    throw err;
  }
}

/** SIGTERM (the engine drains and flushes its batches), then the exit code. The database stays for checks. */
export async function stopEngine(engine: RunningEngine): Promise<void> {
  phase(`engine (${engine.variant}): stopping (SIGTERM, drain)`);
  const code = await engine.server.stop();
  if (code !== 0) phase(`engine (${engine.variant}) exited with code ${code}; last output:\n${engine.server.tail()}`);
}
