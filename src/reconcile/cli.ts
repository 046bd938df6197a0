import { hostname, userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { ConfigError, loadConfig } from '../config.js';
import { connect } from '../db/database.js';
import { migrate } from '../db/migrate.js';
import { createLogger } from '../logger.js';
import { parseTime } from '../reports/advertiser-csv.js';
import { openCliDatabase } from './cli-database.js';
import { Reconciler, REPORTS_DIR, RunFailed, type Progress } from './reconciler.js';
import { loadRun } from './runs-store.js';
import { cronWindow } from './schedule.js';
import { COUNT_KEYS, runView } from './views.js';
import { MAX_WINDOW_DAYS } from './window.js';

/**
 * `npm run reconcile -- --from <ISO> --to <ISO> [--json]`: one reconciliation run from the command
 * line, the same run as POST /v1/reconciliations, with a progress bar on stderr. Without --from and
 * --to it reconciles the scheduled window (REFIRE_WINDOW_S back from now). Exit codes: 0 done,
 * 1 failed, 2 bad usage or configuration, 3 another run kept the lock for CLI_LOCK_WAIT_MS.
 */

const USAGE = `usage: npm run reconcile -- [--from <ISO 8601>] [--to <ISO 8601>] [--json]
  --from, --to   the window, e.g. 2026-01-01T00:00:00Z (default: REFIRE_WINDOW_S back from now)
  --json         print the run as the API returns it instead of a summary
environment: as for npm start (DATABASE_URL, DATA_DIR, PIXEL_GRACE_S, REFIRE_WINDOW_S, LOG_LEVEL)`;

/** A terminal user waits longer than an HTTP client for a run in progress on another node. */
const CLI_LOCK_WAIT_MS = 10 * 60_000;

function usage(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

function progressReporter(): { update(p: Progress): void; stop(): void } {
  if (!process.stderr.isTTY) {
    return { update: (p) => process.stderr.write(`[${p.step}/${p.steps}] ${p.label}\n`), stop: () => undefined };
  }
  const bar = new cliProgress.SingleBar(
    { format: 'reconciling [{bar}] {value}/{total} {label} ({duration_formatted})', hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(p) {
      if (!started) bar.start(p.steps, 0, { label: '' });
      started = true;
      bar.update(p.step - 1, { label: p.label });
    },
    stop() {
      if (!started) return;
      bar.update(bar.getTotal(), { label: 'done' });
      bar.stop();
    },
  };
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: { from: { type: 'string' }, to: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (err) {
    usage((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) usage(err.message);
    throw err;
  }
  const fallback = cronWindow(new Date(), config.refireWindowS);
  const from = values.from === undefined ? fallback.from : parseTime(values.from);
  const to = values.to === undefined ? fallback.to : parseTime(values.to);
  if (!from) usage(`--from "${values.from}" is not an ISO 8601 time`);
  if (!to) usage(`--to "${values.to}" is not an ISO 8601 time`);
  if (from.getTime() >= to.getTime()) usage('--from must be before --to');
  if (to.getTime() - from.getTime() > MAX_WINDOW_DAYS * 86_400_000) usage(`the window may span at most ${MAX_WINDOW_DAYS} days`);

  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  const database = await openCliDatabase(config.databaseUrl, config.dataDir, (line) => process.stderr.write(`${line}\n`));
  const sql = connect(database.url, { max: 4 });
  const progress = progressReporter();
  try {
    await migrate(sql, (line) => process.stderr.write(`${line}\n`));
    // A person at a terminal gets files to archive or mail; engine nodes serve the same from the database.
    const reconciler = new Reconciler({ sql, config, log, reportsDir: config.reportsDir ?? REPORTS_DIR });
    process.stderr.write(`reconciling ${from.toISOString()} to ${to.toISOString()} on ${database.description}\n`);
    const outcome = await reconciler.run({
      from,
      to,
      trigger: 'cli',
      requestedBy: `cli (${userInfo().username}@${hostname()})`,
      waitMs: CLI_LOCK_WAIT_MS,
      onProgress: (p) => progress.update(p),
    });
    progress.stop();
    if (outcome.kind !== 'done') {
      process.stderr.write(`another reconciliation run${outcome.kind === 'busy' && outcome.runningId ? ` (${outcome.runningId})` : ''} held the lock for ${CLI_LOCK_WAIT_MS / 60_000} minutes; try again later\n`);
      process.exitCode = 3;
      return;
    }
    const loaded = await loadRun(sql, outcome.id);
    if (!loaded) throw new Error(`run ${outcome.id} vanished`);
    const view = runView(loaded.run, loaded.rows);
    if (values.json) {
      process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
    } else {
      process.stdout.write(`run ${view.id}: ${view.from} to ${view.to}, ${view.rows.length} rows\n`);
      for (const k of COUNT_KEYS) process.stdout.write(`  ${k.padEnd(10)} ${view.totals[k]}\n`);
      const causes = Object.entries(view.rootCauses);
      if (causes.length > 0) process.stdout.write(`root causes of pixel-only conversions:\n${causes.map(([c, n]) => `  ${c.padEnd(18)} ${n}`).join('\n')}\n`);
      for (const file of outcome.files) process.stdout.write(`wrote ${file}\n`);
    }
  } catch (err) {
    progress.stop();
    process.stderr.write(`${err instanceof RunFailed ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  } finally {
    await sql.end({ timeout: 5 });
    await database.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`reconcile failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
