import os from 'node:os';
import { parseArgs } from 'node:util';
import type { Offer } from '../../src/catalog/catalog.js';
import { bundledHostingNetworks } from '../../src/fraud/datacenter.js';
import { Scorer } from '../../src/fraud/scorer.js';
import { parseAddress } from '../../src/net/cidr.js';
import { createFraudState, type FraudState } from '../../src/fraud/state.js';
import type { ScoreInput } from '../../src/postback/types.js';
import { connectRedis } from '../../src/state/redis.js';
import { startRedis } from './processes.js';

/**
 * `npx tsx reports/bench/fraud-scoring.ts [--postbacks 20000] [--concurrency 32]`
 *
 * The fraud scorer's cost per postback, to hold against the intake's own time per postback (the
 * budget: scoring adds at most 15 %). Measured in-process, no HTTP: memory state, then Redis (a
 * redis-server on a free port, or REDIS_URL). For each: wall and CPU time per postback one at a
 * time (the latency a postback waits; its CPU cost), and CPU time per postback with `concurrency`
 * in flight (what scoring costs a busy node). The state is warmed first with clicks and
 * conversions, so sorted sets and counters have realistic sizes. The load average is printed: on a
 * busy machine every figure is inflated.
 */

const { values } = parseArgs({ options: { postbacks: { type: 'string', default: '20000' }, concurrency: { type: 'string', default: '32' } } });
const N = Number(values.postbacks);
const CONCURRENCY = Number(values.concurrency);

const offer: Offer = {
  id: 'off_bench',
  seq: 1,
  advertiserId: 'adv_bench',
  name: 'bench',
  url: 'https://adv.example/?c={clickid}',
  payoutMinor: 250n,
  revenueMinor: 250n,
  currency: 'USD',
  goalsInput: {},
  goals: Object.create(null),
  capsInput: [],
  caps: [],
  clickTtlS: 2_592_000,
  dailyCap: 1_000_000,
  fraud: {},
  createdAt: new Date(),
  updatedAt: new Date(),
};
const UA = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36';
const address = (i: number) => `81.${(i >> 8) & 255}.${i & 255}.${(i * 7) & 255}`;

let seq = 0;
function postback(now: Date): ScoreInput {
  const i = ++seq;
  return {
    advertiserId: 'adv_bench',
    offer,
    publisherId: `pub_${i % 20}`,
    clickId: `clk_${i}`,
    clickCreatedAt: new Date(now.getTime() - 300_000),
    click: { ip: address(i % 5000), userAgent: UA, subs: [`s${i % 5}`, null, null, null, null] },
    userIp: address((i + 1) % 5000),
    userAgent: UA,
    txid: `tx_${i}`,
    event: 'conversion',
    status: 'approved',
    payoutMinor: 250n,
    currency: 'USD',
    payoutSent: true,
    now,
  };
}

async function warm(state: FraudState, scorer: Scorer): Promise<void> {
  const now = Date.now();
  for (let i = 0; i < 50_000; i++) {
    state.recordClick({ offerId: offer.id, publisherId: `pub_${i % 20}`, sub1: `s${i % 5}`, address: parseAddress(address(i % 5000)) ?? null, at: new Date(now - (i % 3600) * 1000) });
  }
  await state.flush();
  for (let i = 0; i < 2000; i++) await scorer.score(postback(new Date()));
}

type Figures = { sequentialUs: number; sequentialCpuUs: number; cpuUsPerPostback: number; throughput: number };

/** Best of REPEATS: on a shared machine the minimum is the figure least disturbed by other processes. */
const REPEATS = 3;

async function measure(state: FraudState): Promise<Figures> {
  const scorer = new Scorer({ state });
  await warm(state, scorer);
  const best: Figures = { sequentialUs: Infinity, sequentialCpuUs: Infinity, cpuUsPerPostback: Infinity, throughput: 0 };
  for (let r = 0; r < REPEATS; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await scorer.score(postback(new Date()));
    const c1 = process.cpuUsage(c0);
    best.sequentialUs = Math.min(best.sequentialUs, ((performance.now() - t0) * 1000) / N);
    best.sequentialCpuUs = Math.min(best.sequentialCpuUs, (c1.user + c1.system) / N);

    const c2 = process.cpuUsage();
    const t1 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next++ < N) await scorer.score(postback(new Date()));
      }),
    );
    const wallMs = performance.now() - t1;
    const c3 = process.cpuUsage(c2);
    best.cpuUsPerPostback = Math.min(best.cpuUsPerPostback, (c3.user + c3.system) / N);
    best.throughput = Math.max(best.throughput, (N / wallMs) * 1000);
  }
  return best;
}

const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
// The IP-to-AS table loads on first use; load it here, alone, so its time and memory are its own.
const before = process.memoryUsage();
const loadStart = performance.now();
const networks = bundledHostingNetworks();
const loadMs = performance.now() - loadStart;
const loaded = process.memoryUsage();
const tableLine = `IP-to-AS table (${networks.version}): loaded in ${loadMs.toFixed(0)} ms; RSS +${mib(loaded.rss - before.rss)} MiB, heap +${mib(loaded.heapUsed - before.heapUsed)} MiB, typed arrays +${mib(loaded.arrayBuffers - before.arrayBuffers)} MiB (budget 64 MiB)`;

const rows: [string, Figures][] = [];
const memory = createFraudState(undefined, () => undefined, 'bench:');
rows.push(['memory', await measure(memory)]);
const memoryStateRss = process.memoryUsage().rss;
await memory.close();
let redisLine = 'Redis not measured';

const server = process.env.REDIS_URL ? undefined : await startRedis();
const url = process.env.REDIS_URL ?? server?.url;
if (url) {
  const redis = connectRedis(url);
  const state = createFraudState(redis, (op, err) => process.stderr.write(`redis ${op} error: ${String(err)}\n`), `bench:${Date.now()}:`);
  rows.push(['redis', await measure(state)]);
  await state.flush();
  const info = await redis.info('memory');
  const used = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN);
  redisLine = `Redis after the run: used_memory ${mib(used)} MiB, ${await redis.dbsize()} keys (${(2 * N * REPEATS + 2000).toLocaleString('en')} postbacks scored, 50,000 clicks)`;
  await state.close();
  await redis.quit();
  await server?.stop();
} else {
  process.stdout.write('redis-server not found and REDIS_URL unset: Redis not measured\n');
}

const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
process.stdout.write(
  [
    `fraud scoring, best of ${REPEATS} × ${N} postbacks; ${os.cpus()[0]?.model ?? 'cpu'}, ${os.cpus().length} cores, Node ${process.version}, load average ${load}`,
    '',
    `| state | one at a time: wall µs / postback | one at a time: CPU µs / postback | ${CONCURRENCY} in flight: CPU µs / postback | ${CONCURRENCY} in flight: postbacks/s |`,
    '|---|---:|---:|---:|---:|',
    ...rows.map(
      ([name, f]) =>
        `| ${name} | ${f.sequentialUs.toFixed(1)} | ${f.sequentialCpuUs.toFixed(1)} | ${f.cpuUsPerPostback.toFixed(1)} | ${Math.round(f.throughput).toLocaleString('en')} |`,
    ),
    '',
    tableLine,
    `node RSS after the memory-state run: ${mib(memoryStateRss)} MiB; at the end: ${mib(process.memoryUsage().rss)} MiB`,
    redisLine,
    '',
  ].join('\n'),
);
