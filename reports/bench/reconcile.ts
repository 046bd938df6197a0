import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { CpuProbe, type CpuSplit } from './cpu-usage.js';
import { startDatabaseServer, type FreshDatabase } from './database.js';
import { runLoad, type Measurement } from './load.js';
import { PostbackLedger } from './postback-ledger.js';
import { sleep, startServer, type ServerProcess } from './processes.js';
import { note, phase } from './progress.js';
import { generateData, WINDOW_H, type CatalogIds, type DataShape } from './reconcile-data.js';
import { writeReconcileResults, type ScaleResult } from './reconcile-results.js';
import { mintClicks } from './seed.js';
import { webhookKey } from './signing.js';
import { ADMIN_TOKEN, waitForQuiet } from './targets.js';
import { startTunedPostgres, type TunedPostgres } from './tuned-postgres.js';

/**
 * `npx tsx reports/bench/reconcile.ts [--clicks 1000000] [--scales 1,10] [--duration 15] [--connections 10] [--quiet-wait 120]
 *   [--pairs 2] [--shared-buffers 1GB] [--label name]`
 *
 * The reconciler over a 72-hour window at 1× (1,000,000 clicks, 100,000 conversions, 100,000 pixel
 * events) and 10×, each in a fresh database behind a real engine process:
 * - time per run: the first run (root causes, recovery of every pixel-only conversion, re-fire,
 *   expiry, comparison) and a repeat over the same window (same scans, nothing left to change; the
 *   median of three); goal: 10× data takes ≤ 11× the time of 1× (linear);
 * - intake while a run is in progress: signed distinct postbacks (the intake benchmark's load) with
 *   no run, then with runs back to back for the whole measurement, alternating (--pairs); goal: the
 *   busy runs' req/s ≥ 0.8× the idle runs'.
 * Before each measured step it waits (up to --quiet-wait s) for other processes to leave the machine.
 * --shared-buffers runs on an embedded PostgreSQL with that setting (tuned-postgres.ts), --label
 * names the results: reports/bench/results/reconcile[-label].{json,md}.
 */

const LINEAR_GOAL = 11;
const INTAKE_GOAL = 0.8;
const OFFERS = 10;
const PUBLISHERS = 5;

type Api = <T = Record<string, unknown>>(method: string, path: string, body?: object) => Promise<T>;

function apiOf(engine: ServerProcess): Api {
  return async (method, path, body) => {
    const res = await fetch(engine.baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(900_000),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path} -> ${res.status} ${text}`);
    return JSON.parse(text);
  };
}

/** Publishers' endpoints: answers 200 at once, so re-fired deliveries finish instead of retrying. */
async function startReceiver(): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-length': '0' }).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

async function seed(api: Api, receiverUrl: string): Promise<CatalogIds & { secret: string }> {
  const adv = await api<{ id: string; secrets: { secret: string }[] }>('POST', '/v1/advertisers', { name: 'Bench', ipAllowlist: [], auth: ['hmac'], rateLimit: { perS: 1_000_000 } });
  const publisherIds: string[] = [];
  for (let i = 0; i < PUBLISHERS; i++) publisherIds.push((await api<{ id: string }>('POST', '/v1/publishers', { name: `P${i}`, postbackUrl: `${receiverUrl}/pb?c={clickid}` })).id);
  const offerIds: string[] = [];
  for (let i = 0; i < OFFERS; i++) {
    offerIds.push((await api<{ id: string }>('POST', '/v1/offers', { advertiserId: adv.id, name: `O${i}`, url: 'https://adv.example/?cid={clickid}', payout: '2.50', currency: 'USD' })).id);
  }
  return { advertiserId: adv.id, secret: adv.secrets[0]?.secret as string, offerIds, publisherIds };
}

type Run = { id: string; totals: Record<string, number>; stepMs: Record<string, number>; ms: number; cpu?: CpuSplit };

async function timedRun(api: Api, window: { from: string; to: string }, cpu?: CpuProbe): Promise<Run> {
  cpu?.begin();
  const t0 = performance.now();
  const body = await api<Omit<Run, 'ms'>>('POST', '/v1/reconciliations', window);
  const ms = Math.round(performance.now() - t0);
  const split = cpu?.end();
  return { ...body, ms, ...(split ? { cpu: split } : {}) };
}

async function waitForDeliveries(sql: FreshDatabase['sql']): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from deliveries where state in ('pending', 'failed') and next_attempt_at <= now()`;
    if (!row || row.n === 0) return;
    await sleep(250);
  }
}

type Opts = { durationS: number; connections: number; quietWaitS: number; pairs: number };
const REPEATS = 3;

async function measureScale(db: FreshDatabase, scale: number, clicks: number, opts: Opts): Promise<ScaleResult> {
  const receiver = await startReceiver();
  const env = { DATABASE_URL: db.url, ADMIN_TOKEN, RECONCILE_CRON: 'off', LOG_LEVEL: 'warn', ADDRESS_RATE_LIMIT_PER_S: '1000000', ALLOW_PRIVATE_DESTINATIONS: 'true' };
  phase(`${scale}×: starting the engine (node --import tsx src/main.ts) on ${db.name}`);
  const engine = await startServer({ name: `engine ${scale}×`, nodeArgs: ['--import', 'tsx', 'src/main.ts'], env, readyPath: '/readyz' });
  try {
    const api = apiOf(engine);
    const ids = await seed(api, receiver.url);
    const to = new Date();
    phase(`${scale}×: generating ${clicks.toLocaleString('en-US')} clicks and their conversions, pixels and deliveries in PostgreSQL`);
    const t0 = performance.now();
    const shape: DataShape = await generateData(db.sql, ids, clicks, to, note);
    const generateS = (performance.now() - t0) / 1000;
    const window = { from: new Date(to.getTime() - WINDOW_H * 3600_000).toISOString(), to: to.toISOString() };

    const cpu = new CpuProbe(engine.pid, db.postmasterPid);
    await waitForQuiet(opts.quietWaitS, cpu);
    phase(`${scale}×: first run over ${WINDOW_H} h`);
    const first = await timedRun(api, window, cpu);
    note(`first run ${first.ms} ms ${JSON.stringify(first.stepMs)} totals ${JSON.stringify(first.totals)}`);
    await waitForDeliveries(db.sql);
    // The repeat can be measured again and again (it changes nothing): the median of three resists neighbours.
    const repeats: Run[] = [];
    for (let i = 0; i < REPEATS; i++) {
      await waitForQuiet(opts.quietWaitS, cpu);
      phase(`${scale}×: repeat run ${i + 1}/${REPEATS} over the same window`);
      repeats.push(await timedRun(api, window, cpu));
      note(`repeat run ${repeats[i]?.ms} ms ${JSON.stringify(repeats[i]?.stepMs)}`);
    }
    const repeat = [...repeats].sort((a, b) => a.ms - b.ms)[Math.floor(REPEATS / 2)] as Run;

    // The intake's load: distinct signed postbacks on fresh click IDs minted by the engine.
    const clickCatalog = { advertiserId: ids.advertiserId, secret: ids.secret, offerId: ids.offerIds[0] as string, publisherId: ids.publisherIds[0] as string };
    phase(`${scale}×: minting click IDs for the intake load`);
    const minted = await mintClicks(engine.baseUrl, clickCatalog, 40_000 * opts.pairs, opts.connections);
    await sleep(500);
    const ledger = new PostbackLedger(ids.advertiserId, webhookKey(ids.secret), minted);
    const load = (label: string) =>
      runLoad({ label, url: engine.baseUrl, connections: opts.connections, durationS: opts.durationS, requests: ledger.distinctRequests(), expectedStatus: 200, cpu });
    await runLoad({ label: `warm-up intake (${scale}×)`, url: engine.baseUrl, connections: opts.connections, durationS: 3, requests: ledger.distinctRequests(), expectedStatus: 200 });
    // Idle and busy alternate, so a neighbour that comes and goes disturbs both sides alike.
    const idle: Measurement[] = [];
    const busy: Measurement[] = [];
    const during: number[] = [];
    for (let pair = 1; pair <= opts.pairs; pair++) {
      await waitForQuiet(opts.quietWaitS, cpu);
      idle.push(await load(`measure intake, idle ${pair}/${opts.pairs} (${scale}×)`));
      await waitForQuiet(opts.quietWaitS, cpu);
      let stop = false;
      const loop = (async () => {
        while (!stop) during.push((await timedRun(api, window)).ms);
      })();
      await sleep(200);
      busy.push(await load(`measure intake, runs in progress ${pair}/${opts.pairs} (${scale}×)`));
      stop = true;
      await loop;
    }
    return { scale, shape, generateS, window, first, repeat, repeats, idle, busy, runsDuringLoad: during };
  } finally {
    phase(`${scale}×: stopping the engine`);
    await engine.stop();
    await receiver.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      clicks: { type: 'string', default: '1000000' },
      scales: { type: 'string', default: '1,10' },
      duration: { type: 'string', default: '15' },
      connections: { type: 'string', default: '10' },
      'quiet-wait': { type: 'string', default: '120' },
      pairs: { type: 'string', default: '2' },
      'shared-buffers': { type: 'string' },
      label: { type: 'string' },
    },
    strict: true,
  });
  const scales = values.scales.split(',').map(Number);
  const opts: Opts = {
    durationS: Number(values.duration),
    connections: Number(values.connections),
    quietWaitS: Number(values['quiet-wait']),
    pairs: Number(values.pairs),
  };
  // The harness's database server honours DATABASE_URL: point it at a tuned server when asked.
  let tuned: TunedPostgres | undefined;
  if (values['shared-buffers'] && !process.env.DATABASE_URL) {
    phase(`starting an embedded PostgreSQL with shared_buffers=${values['shared-buffers']}`);
    tuned = await startTunedPostgres({ shared_buffers: values['shared-buffers'] }, note);
    process.env.DATABASE_URL = tuned.url;
  }
  const db = await startDatabaseServer(note);
  const results: ScaleResult[] = [];
  try {
    for (const scale of scales) {
      const fresh = await db.fresh();
      try {
        results.push(await measureScale(fresh, scale, Number(values.clicks) * scale, opts));
      } finally {
        await fresh.drop();
      }
    }
  } finally {
    await db.stop();
    await tuned?.stop();
  }
  const database = tuned?.description ?? db.description;
  const files = await writeReconcileResults(results, { linearGoal: LINEAR_GOAL, intakeGoal: INTAKE_GOAL, database, label: values.label, ...opts });
  for (const f of files) note(`wrote ${f}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

