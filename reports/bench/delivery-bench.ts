import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { connect, type Sql } from '../../src/db/database.js';
import { enqueueDeliveries } from '../../src/delivery/outbox.js';
import { CpuProbe, type CpuSplit } from './cpu-usage.js';
import { startDatabaseServer } from './database.js';
import { startServer, type ServerProcess } from './processes.js';
import { machineInfo, RESULTS_DIR } from './results.js';

/**
 * `npx tsx reports/bench/delivery-bench.ts [--backlog 20000] [--rate 200] [--seconds 10]`
 *
 * Outbound delivery, measured against a real engine process (production delivery defaults) and a
 * local receiver in this process that answers 200 at once:
 * - throughput: a parked backlog of deliveries released at once (by re-enabling the publishers),
 *   drained to 1 publisher (bounded by the per-publisher cap) and to 16 publishers;
 * - latency: conversions committed at a steady rate, delay from COMMIT returning to the request
 *   arriving at the receiver (p50, p99, max).
 * Results: reports/bench/results/delivery.{json,md}.
 */

const ADMIN = 'bench-admin-token-0123456789';

type Receiver = { url: string; arrivals: Map<string, number>; count: () => number; close: () => Promise<void> };

async function startReceiver(): Promise<Receiver> {
  const arrivals = new Map<string, number>();
  let count = 0;
  const server: Server = createServer((req, res) => {
    const at = performance.now();
    const id = String(req.headers['webhook-id'] ?? '');
    count++;
    if (!arrivals.has(id)) arrivals.set(id, at);
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-length': '0' }).end());
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrivals,
    count: () => count,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

async function api<T>(engine: ServerProcess, method: string, url: string, body?: object): Promise<T> {
  const res = await fetch(`${engine.baseUrl}${url}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (res.status >= 300) throw new Error(`${method} ${url} -> ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

type Ids = { advertiserId: string; offerId: string };

let seq = 0;
/** Conversions and their deliveries, in one transaction as the intake does. */
async function commitConversions(txSql: Sql, ids: Ids, publisherId: string, count: number): Promise<string[]> {
  return txSql.begin(async (tx) => {
    const rows = Array.from({ length: count }, () => `b${(seq++).toString(36)}`);
    const created = await tx<{ id: string; created_at: Date }[]>`
      insert into conversions (id, advertiser_id, offer_id, publisher_id, click_id, click_created_at, txid, event, status,
                               payout_minor, revenue_minor, currency, decision, score, source)
      select 'cv_' || u.n, ${ids.advertiserId}, ${ids.offerId}, ${publisherId}, 'ck_' || u.n, now(), 'tx_' || u.n, 'conversion',
             'approved', 250, 250, 'USD', 'accepted', 0, 's2s'
      from unnest(${rows}::text[]) as u(n)
      returning id, created_at`;
    return enqueueDeliveries(tx, created.map((c) => ({ conversionId: c.id, publisherId, conversionCreatedAt: c.created_at })), 259200);
  });
}

async function waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function throughput(engine: ServerProcess, cpu: CpuProbe, sql: Sql, txSql: Sql, rx: Receiver, ids: Ids, publishers: number, backlog: number) {
  const pubIds: string[] = [];
  for (let i = 0; i < publishers; i++) {
    const p = await api<{ id: string }>(engine, 'POST', '/v1/publishers', { name: `tp${i}`, postbackUrl: `${rx.url}/t${i}?c={clickid}`, method: 'POST' });
    pubIds.push(p.id);
  }
  // Parked: the outbox writes a disabled endpoint's deliveries at their deadline, so nothing is sent yet.
  await sql`update publishers set disabled_at = now(), disabled_reason = 'bench' where id = any(${pubIds}::text[])`;
  const before = rx.count();
  for (let done = 0; done < backlog; done += 1000) {
    const n = Math.min(1000, backlog - done);
    await commitConversions(txSql, ids, pubIds[(done / 1000) % publishers] as string, n);
  }
  const t0 = performance.now();
  cpu.begin();
  await Promise.all(pubIds.map((id) => api(engine, 'POST', `/v1/publishers/${id}/enable`)));
  await waitFor(() => rx.count() - before >= backlog, 300_000, 'the backlog to drain');
  const seconds = (performance.now() - t0) / 1000;
  const split = cpu.end();
  // The last outcomes are written a few milliseconds after their requests arrive.
  let left = -1;
  for (let i = 0; i < 100 && left !== 0; i++) {
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from deliveries where state <> 'delivered'`;
    left = row?.n ?? -1;
    if (left !== 0) await new Promise((r) => setTimeout(r, 50));
  }
  const perSecond = backlog / seconds;
  // Per engine CPU-second: the figure a busy neighbour disturbs least.
  const perEngineCore = split && split.serverCores > 0 ? perSecond / split.serverCores : undefined;
  return { publishers, backlog, seconds, perSecond, perEngineCore, cpu: split, notDelivered: left, sent: rx.count() - before };
}

async function latency(engine: ServerProcess, txSql: Sql, rx: Receiver, ids: Ids, rate: number, seconds: number) {
  const pub = await api<{ id: string }>(engine, 'POST', '/v1/publishers', { name: 'lat', postbackUrl: `${rx.url}/l?c={clickid}`, method: 'POST' });
  const committedAt = new Map<string, number>();
  const perTick = Math.max(1, Math.round(rate / 100));
  const ticks = Math.round((rate * seconds) / perTick);
  const start = performance.now();
  for (let i = 0; i < ticks; i++) {
    const due = start + (i * perTick * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const deliveryIds = await commitConversions(txSql, ids, pub.id, perTick);
    const at = performance.now();
    for (const id of deliveryIds) committedAt.set(id, at);
  }
  await waitFor(() => [...committedAt.keys()].every((id) => rx.arrivals.has(id)), 60_000, 'every latency delivery');
  const delays = [...committedAt].map(([id, at]) => (rx.arrivals.get(id) as number) - at).sort((a, b) => a - b);
  const pct = (p: number) => delays[Math.min(delays.length - 1, Math.floor((p / 100) * delays.length))] as number;
  return { rate, seconds, deliveries: delays.length, p50Ms: pct(50), p99Ms: pct(99), maxMs: delays[delays.length - 1] as number };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { backlog: { type: 'string', default: '20000' }, rate: { type: 'string', default: '200' }, seconds: { type: 'string', default: '10' } },
  });
  const backlog = Number(values.backlog);
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const server = await startDatabaseServer(() => undefined);
  const db = await server.fresh();
  const rx = await startReceiver();
  let engine: ServerProcess | undefined;
  const sql = connect(db.url, { max: 4 });
  const txSql = connect(db.url, { max: 2 });
  try {
    engine = await startServer({
      name: 'engine',
      nodeArgs: ['--import', 'tsx', 'src/main.ts'],
      env: { DATABASE_URL: db.url, ADMIN_TOKEN: ADMIN, ALLOW_PRIVATE_DESTINATIONS: 'true', LOG_LEVEL: 'warn', RECONCILE_CRON: 'off' },
      readyPath: '/readyz',
    });
    const advertiser = await api<{ id: string }>(engine, 'POST', '/v1/advertisers', { name: 'b', ipAllowlist: [], auth: ['hmac'] });
    const offer = await api<{ id: string }>(engine, 'POST', '/v1/offers', { advertiserId: advertiser.id, name: 'o', url: 'https://a.example/?c={clickid}', payout: '2.50', currency: 'USD' });
    const ids = { advertiserId: advertiser.id, offerId: offer.id };
    const cpu = new CpuProbe(engine.pid, db.postmasterPid);

    const loadBefore = os.loadavg()[0] as number;
    log('warm-up');
    await throughput(engine, cpu, sql, txSql, rx, ids, 4, 2000);
    log(`throughput: ${backlog} to 1 publisher`);
    const one = await throughput(engine, cpu, sql, txSql, rx, ids, 1, backlog);
    log(`throughput: ${backlog} to 16 publishers`);
    const many = await throughput(engine, cpu, sql, txSql, rx, ids, 16, backlog);
    log(`latency: ${rate}/s for ${seconds} s`);
    const lat = await latency(engine, txSql, rx, ids, rate, seconds);

    const load = { before: loadBefore, after: os.loadavg()[0] as number };
    const result = { date: new Date().toISOString(), machine: machineInfo(), database: server.description, load, throughput: [one, many], latency: lat };
    await mkdir(RESULTS_DIR, { recursive: true });
    await writeFile(path.join(RESULTS_DIR, 'delivery.json'), `${JSON.stringify(result, null, 2)}\n`);
    await writeFile(path.join(RESULTS_DIR, 'delivery.md'), render(result));
    process.stdout.write(render(result));
  } catch (err) {
    if (engine) log(engine.tail());
    throw err;
  } finally {
    await engine?.stop();
    await rx.close();
    await sql.end();
    await txSql.end();
    await db.drop();
    await server.stop();
  }
}

type Result = {
  date: string;
  machine: ReturnType<typeof machineInfo>;
  database: string;
  /** 1-minute load average when the run started and ended: above the core count, other work was competing. */
  load: { before: number; after: number };
  throughput: {
    publishers: number;
    backlog: number;
    seconds: number;
    perSecond: number;
    perEngineCore: number | undefined;
    cpu: CpuSplit | undefined;
    notDelivered: number;
    sent: number;
  }[];
  latency: { rate: number; seconds: number; deliveries: number; p50Ms: number; p99Ms: number; maxMs: number };
};

function render(r: Result): string {
  const m = r.machine;
  const lines = [
    '# Benchmark: outbound deliveries',
    '',
    `${r.date}. ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}; ${r.database}.`,
    `Load average (1 min) ${r.load.before.toFixed(1)} at the start, ${r.load.after.toFixed(1)} at the end${r.load.before > m.cores || r.load.after > m.cores ? ': other work shared the cores, so these figures are low' : ''}.`,
    'One engine process with production delivery settings (64 in flight, 8 per publisher, 5 s poll backstop);',
    'the receiver runs in the bench process and answers 200 at once. Run: `npx tsx reports/bench/delivery-bench.ts`.',
    '',
    '## Throughput (a released backlog)',
    '',
    '| publishers | deliveries | seconds | deliveries/s | per engine CPU-second | cores: engine / postgres / bench / other | requests sent | not recorded delivered |',
    '|---:|---:|---:|---:|---:|---|---:|---:|',
    ...r.throughput.map(
      (t) =>
        `| ${t.publishers} | ${t.backlog} | ${t.seconds.toFixed(2)} | ${Math.round(t.perSecond)} | ${t.perEngineCore ? Math.round(t.perEngineCore) : 'n/a'} | ` +
        `${t.cpu ? `${t.cpu.serverCores} / ${t.cpu.postgresCores} / ${t.cpu.clientCores} / ${t.cpu.otherCores}` : 'n/a'} | ${t.sent} | ${t.notDelivered} |`,
    ),
    '',
    '## Commit to first attempt',
    '',
    `${r.latency.deliveries} conversions committed at ${r.latency.rate}/s for ${r.latency.seconds} s, each delivery timed from its COMMIT returning to its request arriving.`,
    '',
    '| p50 ms | p99 ms | max ms |',
    '|---:|---:|---:|',
    `| ${r.latency.p50Ms.toFixed(1)} | ${r.latency.p99Ms.toFixed(1)} | ${r.latency.maxMs.toFixed(1)} |`,
    '',
  ];
  return lines.join('\n');
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
