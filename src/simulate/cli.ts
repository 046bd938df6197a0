import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { SimReport } from './report.js';
import { htmlReport } from './report-html.js';
import { seedsHtml } from './report-seeds-html.js';
import { seedsText } from './report-seeds-text.js';
import { textReport } from './report-text.js';
import { runSeed } from './run.js';
import { parseSeeds, poolSeeds } from './seeds.js';

/**
 * `npm run simulate -- [--seed N | --seeds N | --seeds a,b,c] [--clicks N] [--concurrency N] [--out DIR]
 *                      [--redis | --redis-url URL] [--url URL --admin-token T --database-url URL]`
 *
 * Drives the engine's real HTTP endpoints with labelled honest and fraudulent traffic, then prints
 * what happened to each pattern, precision and recall per reason code and overall, and writes
 * DIR/fraud-eval.json and DIR/fraud-eval.html. `--seeds` runs several seeds one after the other, each
 * on a fresh engine and database, and reports the pooled rates with 95 % intervals instead (`--seeds
 * 5` is the five seeds from `--seed` on). Exits 1 when a target of the issue is missed, 2 on a crash.
 */

const DEFAULTS = { seed: 20261122, clicks: 40_000, concurrency: 24, out: 'reports' };

const USAGE = `npm run simulate -- [options]

Drives a fresh engine (or --url) with labelled honest and fraudulent traffic and reports each
pattern's rate, precision and recall per reason code; writes DIR/fraud-eval.json and .html.
Exit status: 0 every target met, 1 a target missed, 2 a crash.

  --seed N             the traffic's seed (default ${DEFAULTS.seed})
  --seeds N | a,b,c    N seeds from --seed on (or the seeds listed), each on a fresh engine; pooled
                       rates with 95 % Wilson intervals (five seeds take about 2.5 minutes)
  --clicks N           clicks per seed (default ${DEFAULTS.clicks}); every volume scales with it
  --concurrency N      sessions at a time (default ${DEFAULTS.concurrency})
  --out DIR            where the reports go (default ${DEFAULTS.out})
  --redis              the fraud state in a redis-server of its own
  --redis-url URL      the fraud state in this Redis (counters left within 24 h count too)
  --url URL --admin-token T --database-url URL
                       an engine already running, its admin token and database
  -h, --help           this text
`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      seeds: { type: 'string' },
      clicks: { type: 'string' },
      concurrency: { type: 'string' },
      out: { type: 'string' },
      url: { type: 'string' },
      'admin-token': { type: 'string' },
      'database-url': { type: 'string' },
      'redis-url': { type: 'string' },
      redis: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const int = (v: string | undefined, fallback: number, name: string) => {
    if (v === undefined) return fallback;
    if (!/^\d+$/.test(v)) throw new Error(`--${name} must be a whole number, got "${v}"`);
    return Number(v);
  };
  const seeds = parseSeeds(values.seeds, int(values.seed, DEFAULTS.seed, 'seed'));
  const clicks = int(values.clicks, DEFAULTS.clicks, 'clicks');
  const concurrency = Math.max(1, int(values.concurrency, DEFAULTS.concurrency, 'concurrency'));
  const outDir = path.resolve(values.out ?? DEFAULTS.out);
  const log = (line: string) => process.stderr.write(`[simulate] ${line}\n`);
  const target = {
    url: values.url,
    adminToken: values['admin-token'] ?? process.env.ADMIN_TOKEN,
    databaseUrl: values['database-url'] ?? process.env.DATABASE_URL,
    redisUrl: values['redis-url'],
    ownRedis: values.redis === true,
  };

  const reports: SimReport[] = [];
  for (const seed of seeds) reports.push(await runSeed({ seed, clicks, concurrency, target, log }));

  await mkdir(outDir, { recursive: true });
  const json = path.join(outDir, 'fraud-eval.json');
  if (values.seeds === undefined) {
    const report = reports[0] as SimReport;
    await writeFile(json, `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(path.join(outDir, 'fraud-eval.html'), htmlReport(report));
    process.stdout.write(`${textReport(report)}\n\nwrote ${json} and fraud-eval.html\n`);
    return report.evaluation.thresholds.every((t) => t.pass) && report.errors.length === 0 ? 0 : 1;
  }
  const pooled = poolSeeds(reports);
  await writeFile(json, `${JSON.stringify(pooled, null, 2)}\n`);
  await writeFile(path.join(outDir, 'fraud-eval.html'), seedsHtml(pooled));
  process.stdout.write(`${seedsText(pooled)}\n\nwrote ${json} and fraud-eval.html\n`);
  return pooled.thresholds.every((t) => t.pass) && pooled.errors === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`simulate failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
