import cluster from 'node:cluster';
import { buildApp } from './app.js';
import { ensureBootstrapToken } from './auth/tokens.js';
import { ConfigError, loadConfig } from './config.js';
import { connect } from './db/database.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded.js';
import { migrate } from './db/migrate.js';
import { createEngine } from './engine.js';
import { createLogger } from './logger.js';
import { renderEnvHelp } from './ops/config-doc.js';
import { startMetricsListener } from './ops/metrics-access.js';
import { workerMetrics } from './ops/cluster-metrics.js';
import { runPrimary } from './ops/cluster-primary.js';
import { absorbStrayDatabaseRejections } from './ops/stray-rejections.js';

/**
 * Process entry: config, database, migrations, engine, HTTP, and a graceful SIGTERM drain. With
 * WORKERS > 1 this process becomes the box's cluster primary (ops/cluster-primary.ts) and each
 * forked worker runs the engine below.
 */

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(renderEnvHelp());
    return;
  }
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config, log);
  absorbStrayDatabaseRejections(log);

  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres(config.dataDir, (line) => log.info(line));
    databaseUrl = embedded.url;
    log.info({ dataDir: config.dataDir }, 'embedded PostgreSQL started');
  }
  const sql = connect(databaseUrl);
  const applied = await migrate(sql, (line) => log.info(line));
  if (applied.length > 0) log.info({ applied }, 'migrations applied');

  const bootstrapToken = await ensureBootstrapToken(sql, config.adminToken);
  if (bootstrapToken) {
    // Printed once, to the terminal only, never through the log pipeline; only its hash is stored.
    process.stdout.write(`\nGenerated admin token (shown once, store it now):\n  ${bootstrapToken}\n\n`);
  }

  // The engine opens a second pool for transactions from config.databaseUrl, which the embedded server only now has.
  const engine = await createEngine({ ...config, databaseUrl }, sql, log);
  // A cluster worker's /metrics answers for the whole box; METRICS_PORT is the primary's.
  if (cluster.isWorker) engine.metrics.scrape = workerMetrics(engine.metrics.registry);
  const app = await buildApp(engine);
  await app.listen({ port: config.port, host: config.host });
  log.info({ url: config.publicUrl }, 'postback engine listening');
  const metricsListener =
    config.metricsPort === undefined || cluster.isWorker ? undefined : await startMetricsListener(engine, config.metricsPort, config.metricsHost);
  if (metricsListener) log.info({ url: `${metricsListener.url}/metrics` }, 'metrics listening');

  let stopping = false;
  let endDelay: (() => void) | undefined;
  const shutdown = async (signal: string) => {
    if (stopping) {
      // A second signal (Ctrl-C twice, an impatient operator) skips what is left of the delay.
      endDelay?.();
      return;
    }
    stopping = true;
    if (config.shutdownDelayS > 0) {
      // Readiness fails first and the node keeps serving, so load balancers stop sending before it stops accepting.
      engine.draining = true;
      log.info({ signal, delayS: config.shutdownDelayS }, '/readyz now 503; still serving until the shutdown delay passes');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, config.shutdownDelayS * 1000);
        endDelay = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      endDelay = undefined;
    }
    log.info({ signal }, 'draining');
    const forceExit = setTimeout(() => {
      log.error('drain took too long; exiting');
      process.exit(1);
    }, 30_000);
    forceExit.unref();
    try {
      await app.close(); // stops accepting, waits for requests in flight
      await metricsListener?.close();
      await engine.close(); // flushes batched writes, stops workers
      await sql.end({ timeout: 5 });
      await embedded?.stop();
      log.info('stopped');
      process.exit(0);
    } catch (err) {
      log.error({ err }, 'error while draining');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  // Ctrl-C reaches a worker from the terminal and again, as SIGTERM, from the primary: the primary's counts.
  process.on('SIGINT', () => (cluster.isWorker ? undefined : void shutdown('SIGINT')));
}

main().catch((err) => {
  process.stderr.write(`postback engine failed to start: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
