import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { connect } from '../src/db/database.js';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { migrate } from '../src/db/migrate.js';
import { freePort } from '../src/net/free-port.js';
import { startRedisCluster } from './helpers/redis-cluster.js';

/**
 * One real PostgreSQL (embedded) for the whole run, with a template database migrated once; each test
 * file clones it. One real redis-server on a free port when the machine has one, and a three-master
 * Redis Cluster (test/helpers/redis-cluster.ts); without redis-server the Redis
 * tests skip and say how to install it (CI installs it, so CI never skips them).
 */

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    templateDatabase: string;
    redisUrl: string | null;
    /** Seed URLs (comma-separated) of a three-master Redis Cluster; null where there is no redis-server. */
    redisClusterUrl: string | null;
  }
}

export const TEMPLATE_DB = 'pbe_template';

export default async function setup(project: TestProject) {
  const dataDir = path.resolve('.test-data', `run-${process.pid}`);
  const db = await startEmbeddedPostgres(dataDir, (line) => process.stderr.write(`${line}\n`), { persistent: false });
  const admin = connect(db.url, { max: 1 });
  await admin.unsafe(`drop database if exists ${TEMPLATE_DB}`);
  await admin.unsafe(`create database ${TEMPLATE_DB}`);
  await admin.end();
  const templateUrl = db.url.replace(/\/postgres$/, `/${TEMPLATE_DB}`);
  const template = connect(templateUrl, { max: 1 });
  await migrate(template);
  await template.end();

  const redis = await startRedis();
  // A cluster that cannot start fails the run (as a missing redis-server does in CI), leaving nothing running.
  const redisCluster = redis
    ? await startRedisCluster().catch(async (err) => {
        redis.process.kill('SIGTERM');
        await db.stop();
        throw err;
      })
    : undefined;
  project.provide('databaseUrl', db.url);
  project.provide('templateDatabase', TEMPLATE_DB);
  project.provide('redisUrl', redis?.url ?? null);
  project.provide('redisClusterUrl', redisCluster?.url ?? null);

  return async () => {
    redis?.process.kill('SIGTERM');
    await redisCluster?.stop();
    await db.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
}

async function startRedis(): Promise<{ url: string; process: ChildProcess } | undefined> {
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    const message = 'redis-server not found: Redis tests will be skipped. Install it with `apt-get install -y redis-server`.';
    if (process.env.CI) throw new Error(`${message} CI must not skip them.`);
    process.stderr.write(`\n${message}\n\n`);
    return undefined;
  }
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const ping = spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' });
    if (ping.stdout?.trim() === 'PONG') return { url: `redis://127.0.0.1:${port}`, process: child };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('redis-server did not start within 10 s');
}

