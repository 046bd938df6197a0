import { SingleBar } from 'cli-progress';
import { adminClient, createCatalog } from './catalog.js';
import { Driver, type Attempt } from './driver.js';
import { evaluate } from './evaluate.js';
import { fraudSessions } from './fraud-patterns.js';
import { addressSource, honestNetworks } from './honest-hard.js';
import { backgroundClicks, honestPublishers, honestSessions } from './honest.js';
import { SimClient } from './http.js';
import { requestCount, type Session } from './plan.js';
import { Population } from './population.js';
import { deliveryCheck, METHOD, type QueueItem, type SimReport } from './report.js';
import { startTarget, type TargetOptions } from './target.js';
import { TwinClicks } from './twin-clicks.js';

/** One seeded run: its own engine and database (or the `--url` one), the traffic, the evaluation. */

/** How long to wait at the end for the engine to deliver the outbound postbacks it queued. */
const DELIVERY_DRAIN_MS = 15_000;

export type RunOptions = { seed: number; clicks: number; concurrency: number; target: Omit<TargetOptions, 'log'>; log: (line: string) => void };

/** Background clicks (honest.ts, backgroundClicks) as a share of the run's clicks. */
const BACKGROUND_SHARE = 0.1;

/**
 * The run's sessions, shuffled, and the background clicks sent before them: the same seed gives the
 * same traffic. The background is drawn last, so it leaves the measured sessions as they were.
 */
export function planSessions(seed: number, clicks: number): { background: Session[]; sessions: Session[] } {
  const addresses = addressSource();
  const pop = new Population(seed, { addresses });
  const publishers = honestPublishers(pop);
  const nets = honestNetworks(pop, addresses);
  const fraud = fraudSessions(pop, clicks, publishers);
  const honest = honestSessions(pop, Math.max(0, clicks - fraud.clicks), publishers, nets);
  fraud.attachTo(honest);
  const sessions = shuffle(pop, [...honest, ...fraud.sessions]);
  return { background: backgroundClicks(pop, Math.round(clicks * BACKGROUND_SHARE), publishers, nets), sessions };
}

export async function runSeed(o: RunOptions): Promise<SimReport> {
  const target = await startTarget({ ...o.target, log: o.log });
  try {
    o.log(`seed ${o.seed}: engine ready: ${target.description}`);
    const catalog = await createCatalog(adminClient(target.baseUrl, target.adminToken), target.sql, target.receiver?.url, `sim ${o.seed}`);
    const { background, sessions } = planSessions(o.seed, o.clicks);

    const client = new SimClient(target.baseUrl, o.concurrency * 2);
    const bar = new SingleBar({ format: `[simulate] seed ${o.seed} {bar} {percentage}% | {value}/{total} requests | {eta_formatted} left`, hideCursor: true, stream: process.stderr });
    bar.start(requestCount(background) + requestCount(sessions), 0);
    const twins = new TwinClicks(target.sql, catalog);
    const backgroundRun = await new Driver(client, catalog, twins, () => bar.increment()).run(background, o.concurrency);
    const started = performance.now();
    const driver = new Driver(client, catalog, twins, () => bar.increment());
    const result = await driver.run(sessions, o.concurrency);
    const durationS = (performance.now() - started) / 1000;
    bar.stop();
    await client.close();

    const ids = result.attempts.filter((a) => a.conversionId).map((a) => a.conversionId as string);
    const rows = await target.sql<{ id: string; score: number }[]>`select id, score from conversions where id = any(${ids}::text[])`;
    const evaluation = evaluate(result.attempts, new Map(rows.map((r) => [r.id, r.score])));
    if (target.receiver) await drainDeliveries(target.receiver.deliveries, result.attempts.filter((a) => a.status === 200 && a.decision === 'accepted' && !a.duplicate).length);

    return {
      seed: o.seed,
      requestedClicks: o.clicks,
      startedAt: new Date(Date.now() - durationS * 1000).toISOString(),
      durationS,
      target: target.description,
      fraudState: target.fraudState,
      method: METHOD,
      traffic: { clicks: result.clicks, backgroundClicks: backgroundRun.clicks, postbacks: result.attempts.length, sessions: sessions.length },
      evaluation,
      deliveries: target.receiver ? deliveryCheck(result.attempts, target.receiver) : undefined,
      reviewQueueTop: await reviewQueueTop(target.baseUrl, target.adminToken, result.attempts),
      errors: [...backgroundRun.errors, ...result.errors],
    };
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
