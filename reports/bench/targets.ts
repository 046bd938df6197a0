import type autocannon from 'autocannon';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { CpuProbe } from './cpu-usage.js';
import type { DatabaseServer, FreshDatabase } from './database.js';
import { runLoad, type Measurement } from './load.js';
import { phase, Ticker } from './progress.js';
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
  /** Longest wait, in seconds, for other processes to leave the machine before a measured run. */
  quietWaitS: number;
};

export type BenchContext = {
  options: BenchOptions;
  db: DatabaseServer;
  redis: RedisServer | undefined;
};

export type Variant = 'memory' | 'redis';

const startHelloWorld = (name: string) =>
  startServer({ name, nodeArgs: ['--import', 'tsx', 'reports/bench/hello-server.ts'], env: {}, readyPath: '/' });

/**
 * The hello-world baseline; a scenario measures it before and after the engine and uses the mean,
 * so a neighbour that loads the machine for part of the run shows as drift instead of a skewed ratio.
 */
export async function measureBaseline(ctx: BenchContext, when: 'before' | 'after'): Promise<Measurement> {
  phase(`baseline (${when}): starting the bare fastify hello-world server (reports/bench/hello-server.ts)`);
  const hello = await startHelloWorld('hello-world');
  try {
    return await warmThenMeasure(ctx, hello, `hello-world (${when})`, hello.baseUrl + '/', 200);
  } finally {
    await hello.stop();
  }
}

/**
 * A bare server's measured run: a warm-up (unless --warmup 0), a wait for a quiet machine, then the
 * run, with the server's CPU probed.
 */
export async function warmThenMeasure(
  ctx: BenchContext,
  server: ServerProcess,
  name: string,
  url: string,
  expectedStatus: number,
  requests?: autocannon.Request[],
): Promise<Measurement> {
  const { connections, durationS, warmupS } = ctx.options;
  if (warmupS > 0) await runLoad({ label: `warm-up ${name}`, url, connections, durationS: warmupS, requests, expectedStatus });
  const cpu = new CpuProbe(server.pid, undefined);
  await waitForQuiet(ctx.options.quietWaitS, cpu);
  return runLoad({ label: `measure ${name}`, url, connections, durationS, requests, expectedStatus, cpu });
}

/** Seconds of load on a throwaway hello-world before the first measured run of an invocation. */
const MACHINE_WARMUP_S = 8;

/**
 * The first hello-world of an invocation often measured 10-25 % below the last one (the drift check
 * flagged it), on a machine otherwise quiet: the VM and the load generator had not reached their
 * steady state yet. A throwaway run first, so that both baselines are measured warm.
 */
export async function warmMachine(ctx: BenchContext): Promise<void> {
  if (ctx.options.warmupS <= 0) return;
  phase(`warming the machine and the load generator: ${MACHINE_WARMUP_S} s on a throwaway hello-world (not measured)`);
  const hello = await startHelloWorld('hello-world (warm-up)');
  try {
    await runLoad({ label: 'warm-up of the machine', url: hello.baseUrl + '/', connections: ctx.options.connections, durationS: MACHINE_WARMUP_S, expectedStatus: 200 });
  } finally {
    await hello.stop();
  }
}

export type RunningEngine = {
  server: ServerProcess;
  database: FreshDatabase;
  variant: Variant;
  /** The variant, and the engine processes when more than one (`redis, 4 processes`). */
  label: string;
  workers: number;
  cpu: CpuProbe;
  profile?: { dir: string; startedAt: number };
};

/** `workers` > 1 starts the engine as an operator would with WORKERS=n: a cluster primary and n engine processes. */
export async function startEngine(ctx: BenchContext, variant: Variant, tag: string, workers = 1): Promise<RunningEngine> {
  const database = await ctx.db.fresh();
  const env: Record<string, string> = {
    DATABASE_URL: database.url,
    ADMIN_TOKEN,
    RECONCILE_CRON: 'off',
    LOG_LEVEL: 'warn',
    // All bench traffic comes from 127.0.0.1; production traffic comes from many addresses. The
    // per-address postback limit (an engine setting beyond the contract) must not be what is measured.
    ADDRESS_RATE_LIMIT_PER_S: '1000000',
  };
  if (variant === 'redis') {
    if (!ctx.redis) throw new Error('redis variant requested without a redis-server');
    env.REDIS_URL = ctx.redis.url;
  }
  if (workers > 1) env.WORKERS = String(workers);
  const label = workers > 1 ? `${variant}, ${workers} processes` : variant;
  const nodeArgs = ['--import', 'tsx'];
  let profile: RunningEngine['profile'];
  if (ctx.options.cpuProf) {
    const dir = path.join(PROFILE_DIR, tag);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    nodeArgs.push('--cpu-prof', '--cpu-prof-dir', dir);
    profile = { dir, startedAt: Date.now() };
  }
  nodeArgs.push('src/main.ts');
  phase(`engine (${label}${variant === 'redis' ? ` at ${ctx.redis?.url}` : ''}): starting ${workers > 1 ? `WORKERS=${workers} ` : ''}node --import tsx src/main.ts on database ${database.name}`);
  try {
    const server = await startServer({ name: `engine (${label})`, nodeArgs, env, readyPath: '/readyz' });
    const cpu = new CpuProbe(server.pid, database.postmasterPid, variant === 'redis' ? ctx.redis?.pid : undefined);
    return { server, database, variant, label, workers, cpu, ...(profile ? { profile } : {}) };
  } catch (err) {
    await database.drop().catch(() => undefined);
    throw err;
  }
}

/** SIGTERM (the engine drains and flushes its batches), then the exit code. The database stays for checks. */
export async function stopEngine(engine: RunningEngine): Promise<number | null> {
  phase(`engine (${engine.label}): stopping (SIGTERM, drain)`);
  const code = await engine.server.stop();
  if (code !== 0) phase(`engine (${engine.label}) exited with code ${code}; last output:\n${engine.server.tail()}`);
  return code;
}

/** Cores used outside the server, its PostgreSQL and the client, above which the machine is not quiet. */
const QUIET_BELOW_CORES = 0.3;

/**
 * On a shared machine, waits (up to `maxS`) until it is quiet before a measured run, so a
 * neighbour's test suite does not land inside the figures. Gives up and measures anyway; the
 * run's CPU split and the scenario's checks then say it was disturbed. After one wait in vain the
 * load is taken as lasting and later runs do not wait again.
 */
let gaveUpWaiting = false;

export async function waitForQuiet(maxS: number, probe: CpuProbe): Promise<void> {
  if (maxS <= 0 || gaveUpWaiting) return;
  const started = performance.now();
  const busyElsewhere = async (ms: number) => (await probe.sample(ms))?.otherCores;
  let busy = await busyElsewhere(500);
  if (busy === undefined || busy < QUIET_BELOW_CORES) return;
  const ticker = new Ticker('waiting for a quiet machine', maxS, 's');
  while (busy !== undefined && busy >= QUIET_BELOW_CORES) {
    const waited = (performance.now() - started) / 1000;
    if (waited >= maxS) {
      ticker.done(`still ${busy.toFixed(2)} cores busy elsewhere after ${maxS} s; measuring anyway, and not waiting again`);
      gaveUpWaiting = true;
      return;
    }
    ticker.update(waited, 0, `${busy.toFixed(2)} cores busy elsewhere`);
    busy = await busyElsewhere(1_000);
  }
  ticker.done(`quiet after ${((performance.now() - started) / 1000).toFixed(0)} s`);
}
