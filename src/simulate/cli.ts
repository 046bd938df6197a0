import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import { adminClient, createCatalog } from './catalog.js';
import { Driver, type Attempt } from './driver.js';
import { evaluate } from './evaluate.js';
import { fraudSessions } from './fraud-patterns.js';
import { honestPublishers, honestSessions } from './honest.js';
import { SimClient } from './http.js';
import { requestCount, type Session } from './plan.js';
import { Population } from './population.js';
import { deliveryCheck, METHOD, type QueueItem, type SimReport } from './report.js';
import { htmlReport } from './report-html.js';
import { textReport } from './report-text.js';
import { startTarget } from './target.js';
import { TwinClicks } from './twin-clicks.js';

/**
 * `npm run simulate -- [--seed N] [--clicks N] [--concurrency N] [--out DIR] [--redis | --redis-url URL]
 *                      [--url URL --admin-token T --database-url URL]`
 *
 * Drives the engine's real HTTP endpoints with labelled honest and fraudulent traffic, then prints
 * precision and recall per reason code and overall, and writes DIR/fraud-eval.json and
 * DIR/fraud-eval.html. Exits 1 when a target of the issue is missed.
 */

const DEFAULTS = { seed: 20261122, clicks: 40_000, concurrency: 24, out: 'reports' };
/** How long to wait at the end for the engine to deliver the outbound postbacks it queued. */
const DELIVERY_DRAIN_MS = 15_000;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      clicks: { type: 'string' },
      concurrency: { type: 'string' },
      out: { type: 'string' },
      url: { type: 'string' },
      'admin-token': { type: 'string' },
      'database-url': { type: 'string' },
      'redis-url': { type: 'string' },
      redis: { type: 'boolean' },
    },
  });
  const int = (v: string | undefined, fallback: number, name: string) => {
    if (v === undefined) return fallback;
    if (!/^\d+$/.test(v)) throw new Error(`--${name} must be a whole number, got "${v}"`);
    return Number(v);
  };
  const seed = int(values.seed, DEFAULTS.seed, 'seed');
  const clicks = int(values.clicks, DEFAULTS.clicks, 'clicks');
  const concurrency = Math.max(1, int(values.concurrency, DEFAULTS.concurrency, 'concurrency'));
  const outDir = path.resolve(values.out ?? DEFAULTS.out);
  const log = (line: string) => process.stderr.write(`[simulate] ${line}\n`);

  const target = await startTarget({
    url: values.url,
    adminToken: values['admin-token'] ?? process.env.ADMIN_TOKEN,
    databaseUrl: values['database-url'] ?? process.env.DATABASE_URL,
    redisUrl: values['redis-url'],
    ownRedis: values.redis === true,
    log,
  });
  try {
    log(`engine ready: ${target.description}`);
    const catalog = await createCatalog(adminClient(target.baseUrl, target.adminToken), target.sql, target.receiver?.url, `sim ${seed}`);
    const pop = new Population(seed);
    const publishers = honestPublishers(pop);
    const fraud = fraudSessions(pop, clicks);
    const honest = honestSessions(pop, Math.max(0, clicks - fraud.clicks), publishers);
    fraud.attachTo(honest);
    const sessions = shuffle(pop, [...honest, ...fraud.sessions]);

    const client = new SimClient(target.baseUrl, concurrency * 2);
    const bar = new SingleBar({ format: '[simulate] {bar} {percentage}% | {value}/{total} requests | {eta_formatted} left', hideCursor: true, stream: process.stderr });
    bar.start(requestCount(sessions), 0);
    const started = performance.now();
    const driver = new Driver(client, catalog, new TwinClicks(target.sql, catalog), () => bar.increment());
    const result = await driver.run(sessions, concurrency);
    const durationS = (performance.now() - started) / 1000;
    bar.stop();
    await client.close();

    const ids = result.attempts.filter((a) => a.conversionId).map((a) => a.conversionId as string);
    const rows = await target.sql<{ id: string; score: number }[]>`select id, score from conversions where id = any(${ids}::text[])`;
    const evaluation = evaluate(result.attempts, new Map(rows.map((r) => [r.id, r.score])));
    if (target.receiver) await drainDeliveries(target.receiver.deliveries, result.attempts.filter((a) => a.status === 200 && a.decision === 'accepted' && !a.duplicate).length);

    const report: SimReport = {
      seed,
      requestedClicks: clicks,
      startedAt: new Date(Date.now() - durationS * 1000).toISOString(),
      durationS,
      target: target.description,
      fraudState: target.fraudState,
      method: METHOD,
      traffic: { clicks: result.clicks, postbacks: result.attempts.length, sessions: sessions.length },
      evaluation,
      deliveries: target.receiver ? deliveryCheck(result.attempts, target.receiver) : undefined,
      reviewQueueTop: await reviewQueueTop(target.baseUrl, target.adminToken, result.attempts),
      errors: result.errors,
    };
    await mkdir(outDir, { recursive: true });
    await writeFile(path.join(outDir, 'fraud-eval.json'), `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(path.join(outDir, 'fraud-eval.html'), htmlReport(report));
    process.stdout.write(`${textReport(report)}\n\nwrote ${path.join(outDir, 'fraud-eval.json')} and fraud-eval.html\n`);
    return evaluation.thresholds.every((t) => t.pass) && result.errors.length === 0 ? 0 : 1;
  } finally {
    await target.close();
  }
}

/** Fisher-Yates with the run's generator: aggregate patterns spread over the whole run, as in real traffic. */
function shuffle(pop: Population, sessions: Session[]): Session[] {
  for (let i = sessions.length - 1; i > 0; i--) {
    const j = pop.int(0, i);
    [sessions[i], sessions[j]] = [sessions[j] as Session, sessions[i] as Session];
  }
  return sessions;
}

async function drainDeliveries(received: ReadonlyMap<string, number>, expected: number): Promise<void> {
  const deadline = Date.now() + DELIVERY_DRAIN_MS;
  while (received.size < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

/** The first page an analyst would see, with what each conversion really was. */
async function reviewQueueTop(baseUrl: string, token: string, attempts: Attempt[]): Promise<QueueItem[]> {
  const res = await fetch(`${baseUrl}/v1/reviews/queue?limit=10`, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) return [];
  const labels = new Map(attempts.filter((a) => a.conversionId).map((a) => [a.conversionId as string, `${a.label.pattern} (${a.label.variant})`]));
  const body = (await res.json()) as { items: { id: string; priority: string; score: number; payout: string; currency: string; reasons: string[] }[] };
  return body.items.map((i) => ({ id: i.id, priority: i.priority, score: i.score, payout: `${i.payout} ${i.currency}`, reasons: i.reasons, label: labels.get(i.id) ?? 'unknown' }));
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`simulate failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
