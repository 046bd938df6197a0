import cluster, { type Worker } from 'node:cluster';
import { Registry } from 'prom-client';
import { ensureBootstrapToken } from '../auth/tokens.js';
import type { Config } from '../config.js';
import { connect } from '../db/database.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../db/embedded.js';
import { migrate } from '../db/migrate.js';
import type { Logger } from '../logger.js';
import { ClusterMetrics } from './cluster-metrics.js';
import { startMetricsListener, type MetricsListener } from './metrics-access.js';

/**
 * WORKERS > 1: this process is the box's supervisor and serves no API itself. It does once what
 * belongs to the box: starts the embedded PostgreSQL when DATABASE_URL is unset, applies the
 * migrations, prints a generated admin token, serves METRICS_PORT with the box's aggregate. Then it
 * forks the workers, each a full engine node (src/main.ts) sharing PORT through node:cluster, which
 * on Linux accepts in the primary and hands connections round-robin to the workers. A worker that
 * dies is replaced; SIGTERM (or SIGINT) is passed to every worker, each drains as a single engine
 * does, and the primary exits 0 once all have exited 0.
 *
 * Everything else is already per node and shared through PostgreSQL and Redis (CONTRACT §9):
 * migrations and the reconciler's schedule take advisory locks, click key 1 and the bootstrap
 * token are inserted with ON CONFLICT, catalog changes are NOTIFYed to every node.
 */

/** A worker that crashes more often than this is a broken build or configuration, not bad luck. */
const CRASH_LIMIT = 5;
const CRASH_WINDOW_MS = 60_000;
const RESTART_DELAY_MS = 1_000;
/** Beyond the workers' own drain deadline (30 s) and SHUTDOWN_DELAY_S. */
const STOP_GRACE_MS = 40_000;

export async function runPrimary(config: Config, log: Logger): Promise<void> {
  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres(config.dataDir, (line) => log.info(line));
    databaseUrl = embedded.url;
    log.info({ dataDir: config.dataDir }, 'embedded PostgreSQL started (one for the box, shared by the workers)');
  }
  const sql = connect(databaseUrl, { max: 1 });
  try {
    const applied = await migrate(sql, (line) => log.info(line));
    if (applied.length > 0) log.info({ applied }, 'migrations applied');
    const bootstrapToken = await ensureBootstrapToken(sql, config.adminToken);
    if (bootstrapToken) process.stdout.write(`\nGenerated admin token (shown once, store it now):\n  ${bootstrapToken}\n\n`);
  } finally {
    await sql.end({ timeout: 5 });
  }

  const metrics = new ClusterMetrics();
  let metricsListener: MetricsListener | undefined;
  const slots = new Map<number, Worker>();
  const crashes: number[] = [];
  let stopping = false;
  let started = false;

  const fork = (slot: number) => {
    // Workers inherit the environment; the embedded server's URL is the one thing they could not know.
    const worker = cluster.fork({ DATABASE_URL: databaseUrl });
    slots.set(slot, worker);
    worker.once('exit', (code, signal) => {
      if (slots.get(slot) === worker) slots.delete(slot);
      if (stopping) return;
      if (!started) {
        log.fatal({ slot, workerPid: worker.process.pid, code, signal }, 'engine worker exited during start-up; stopping');
        void stop('start-up failure', 1);
        return;
      }
      const now = Date.now();
      crashes.push(now);
      while (crashes.length > 0 && (crashes[0] as number) < now - CRASH_WINDOW_MS) crashes.shift();
      if (crashes.length > CRASH_LIMIT) {
        log.fatal({ crashes: crashes.length, windowS: CRASH_WINDOW_MS / 1000 }, 'engine workers keep exiting; stopping the box');
        void stop('crash loop', 1);
        return;
      }
      log.error({ slot, workerPid: worker.process.pid, code, signal }, 'engine worker exited; starting a replacement');
      setTimeout(() => {
        if (!stopping) fork(slot);
      }, RESTART_DELAY_MS).unref();
    });
    return worker;
  };

  const stop = async (reason: string, failure?: number) => {
    if (stopping) {
      // A second signal: every worker skips what is left of its shutdown delay, as a single engine does.
      for (const w of slots.values()) w.process.kill('SIGTERM');
      return;
    }
    stopping = true;
    log.info({ reason, workers: slots.size }, 'stopping the engine workers');
    const forceExit = setTimeout(() => {
      log.error('workers took too long to drain; killing them');
      for (const w of slots.values()) w.process.kill('SIGKILL');
      process.exit(1);
    }, config.shutdownDelayS * 1000 + STOP_GRACE_MS);
    forceExit.unref();
    const codes = await Promise.all(
      [...slots.values()].map(
        (w) =>
          new Promise<number | null>((resolve) => {
            if (w.process.exitCode !== null || w.process.signalCode !== null) return resolve(w.process.exitCode);
            w.once('exit', (code) => resolve(code));
            w.process.kill('SIGTERM');
          }),
      ),
    );
    await metricsListener?.close();
    await embedded?.stop();
    const clean = failure === undefined && codes.every((c) => c === 0);
    log.info({ exitCodes: codes }, clean ? 'stopped' : 'stopped; a worker did not exit cleanly');
    process.exit(failure ?? (clean ? 0 : 1));
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  // Before the workers, so a METRICS_PORT already taken stops the box before it serves anything.
  if (config.metricsPort !== undefined) {
    const source = { config, log, metrics: { scrape: () => metrics.scrape(), registry: { contentType: Registry.PROMETHEUS_CONTENT_TYPE } } };
    metricsListener = await startMetricsListener(source, config.metricsPort, config.metricsHost);
    log.info({ url: `${metricsListener.url}/metrics` }, 'metrics listening (all workers together)');
  }
  const listening = [...Array(config.workers).keys()].map(
    (slot) => new Promise<void>((resolve) => fork(slot).once('listening', () => resolve())),
  );
  await Promise.all(listening);
  started = true;
  log.info({ url: config.publicUrl, workers: config.workers }, 'postback engine listening');
}
