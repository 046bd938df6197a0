import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { renderCapsCostMarkdown, type CapsCostResult, type OfferFigures, type RoundFigures } from './caps-cost-report.js';
import { OfferStream, SALE_AMOUNT, type ExpectedPrices } from './caps-cost-stream.js';
import { CpuProbe } from './cpu-usage.js';
import { startDatabaseServer } from './database.js';
import { writeIndexHtml } from './html-report.js';
import { LatencyRecorder, runLoad } from './load.js';
import { REPO_ROOT, sleep, startServer } from './processes.js';
import { fmtInt, note, phase } from './progress.js';
import { DEFAULT_CONNECTIONS, machineInfo, RESULTS_DIR, type Check } from './results.js';
import { mintClicks } from './seed.js';
import { webhookKey } from './signing.js';
import { ADMIN_TOKEN, waitForQuiet } from './targets.js';

/**
 * `npx tsx reports/bench/caps-cost.ts [--postbacks 3000] [--concurrency 10] [--rounds 6] [--warmup 300]`
 *
 * What goals and caps cost the intake (CONTRACT §10): one engine (src/main.ts), one database, one
 * advertiser with three offers that take the same signed GET postbacks (a new txid on its own click,
 * alternately a registration and a sale with an amount, no payout sent):
 *   (a) plain: the offer's own payout and revenue;
 *   (b) goals: registration a flat goal, sale a percent-of-amount goal;
 *   (c) the same goals plus caps that are never reached (a daily conversion cap per offer and a
 *       monthly payout cap per publisher), so each postback takes the capped path: its own
 *       transaction under the row locks of offer_cap_usage (src/postback/caps.ts) instead of the
 *       group commit;
 *   (d) two offers with (c)'s terms loaded at the same time, each at full concurrency: if capped
 *       offers shared a lock, the two together would go no faster than (c) alone.
 * `--postbacks` per offer, sent in `--rounds` interleaved rounds (a b c, a b c...) so that a neighbour
 * on the machine lands on all three alike. Writes results/caps-cost.{json,md} and redraws index.html.
 */

const { values } = parseArgs({
  options: {
    postbacks: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: String(DEFAULT_CONNECTIONS) },
    rounds: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '300' },
  },
  strict: true,
});
const whole = (name: string, raw: string, min: number) => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number ≥ ${min}, got "${raw}"`);
  return n;
};
const POSTBACKS = whole('postbacks', values.postbacks, 1);
const CONCURRENCY = whole('concurrency', values.concurrency, 1);
const ROUNDS = whole('rounds', values.rounds, 1);
const WARMUP = whole('warmup', values.warmup, 0);
const PER_ROUND = Math.ceil(POSTBACKS / ROUNDS);
/** Clicks are written in batches within ~20 ms; a postback normally follows its click by far more. */
const CLICK_FLUSH_WAIT_MS = 500;
const QUIET_WAIT_S = 15;

const GOALS = { registration: { payout: '1.00', revenue: '1.50' }, sale: { payout: { percent: '30' }, revenue: { percent: '40' } } };
/** Far above anything the run sends (warm-up included), so no postback is ever over a cap. */
const capsNeverReached = (postbacks: number) => [
  { period: 'day', conversions: 100 * postbacks, action: 'reject' },
  { period: 'month', per: 'publisher', payout: String(100 * postbacks * 12), action: 'reject' },
];
const OFFER_PRICES: ExpectedPrices = { registration: [250n, 250n], sale: [250n, 250n] };
/** 30 % and 40 % of 40.00 for a sale; the flat goal for a registration. */
const GOAL_PRICES: ExpectedPrices = { registration: [100n, 150n], sale: [1200n, 1600n] };

/** `offers`: how many offers with these terms take their postbacks at the same time, each at full concurrency. */
type Variant = { key: 'plain' | 'goals' | 'caps' | 'pair'; name: string; terms: Record<string, unknown>; prices: ExpectedPrices; capped: boolean; offers: number };
const CAPPED_TERMS = { goals: GOALS, caps: capsNeverReached(POSTBACKS + WARMUP) };
const VARIANTS: Variant[] = [
  { key: 'plain', name: '(a) plain offer', terms: {}, prices: OFFER_PRICES, capped: false, offers: 1 },
  { key: 'goals', name: '(b) goals (flat + percent)', terms: { goals: GOALS }, prices: GOAL_PRICES, capped: false, offers: 1 },
  { key: 'caps', name: '(c) goals + caps never reached', terms: CAPPED_TERMS, prices: GOAL_PRICES, capped: true, offers: 1 },
  // If capped offers shared a lock, two at once would go no faster than one.
  { key: 'pair', name: '(d) two offers as (c), at once', terms: CAPPED_TERMS, prices: GOAL_PRICES, capped: true, offers: 2 },
];

async function admin(url: string, p: string, body: object): Promise<Record<string, any>> {
  const res = await fetch(url + p, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`POST ${p} -> ${res.status} ${text}`);
  return JSON.parse(text) as Record<string, any>;
}

async function seed(url: string): Promise<Map<Variant['key'], OfferStream[]>> {
  const adv = await admin(url, '/v1/advertisers', { name: 'Caps bench', ipAllowlist: [], auth: ['hmac'], rateLimit: { perS: 1_000_000 } });
  const pub = await admin(url, '/v1/publishers', { name: 'Caps bench', postbackUrl: 'https://pub.example/pb?c={clickid}' });
  const key = webhookKey(String(adv.secrets[0].secret));
  const tag = Date.now().toString(36);
  const clicksPerOffer = POSTBACKS + WARMUP + CONCURRENCY * (ROUNDS + 1);
  const streams = new Map<Variant['key'], OfferStream[]>();
  for (const v of VARIANTS) {
    const group: OfferStream[] = [];
    for (let i = 1; i <= v.offers; i++) {
      // Thresholds at 100: every fraud rule runs and every postback is accepted, so each takes a cap
      // slot on a capped offer (a rejected postback would skip the locks) and all queue the same deliveries.
      const offer = await admin(url, '/v1/offers', {
        advertiserId: adv.id, name: `${v.name} #${i}`, url: 'https://adv.example/?cid={clickid}', payout: '2.50', currency: 'USD',
        fraud: { flagAt: 100, rejectAt: 100 }, ...v.terms,
      });
      const stream = new OfferStream(String(offer.id), String(adv.id), key, `${tag}-${v.key}${i}`);
      phase(`${v.name} #${i}: minting ${clicksPerOffer.toLocaleString('en-US')} click IDs (not measured)`);
      stream.addClicks(await mintClicks(url, { advertiserId: String(adv.id), secret: '', publisherId: String(pub.id), offerId: String(offer.id) }, clicksPerOffer, CONCURRENCY));
      group.push(stream);
    }
    streams.set(v.key, group);
  }
  await sleep(CLICK_FLUSH_WAIT_MS);
  return streams;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** Group-commit batches so far (each batch of plain postbacks is one statement; a capped postback is its own transaction). */
async function commitBatches(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const line = text.split('\n').find((l) => l.startsWith('postback_engine_commit_batch_postbacks_count'));
  return Number(line?.slice(line.lastIndexOf(' ') + 1) ?? Number.NaN);
}

async function main(): Promise<void> {
  phase(`caps cost: ${POSTBACKS.toLocaleString('en-US')} postbacks per offer in ${ROUNDS} interleaved rounds, ${CONCURRENCY} connections`);
  const loadBefore = os.loadavg();
  const db = await startDatabaseServer((line) => note(line));
  const database = await db.fresh();
  const env = { DATABASE_URL: database.url, ADMIN_TOKEN, RECONCILE_CRON: 'off', LOG_LEVEL: 'warn', ADDRESS_RATE_LIMIT_PER_S: '1000000' };
  const rounds: RoundFigures[] = [];
  const pooled = new Map(VARIANTS.map((v) => [v.key, new LatencyRecorder()]));
  const checks: Check[] = [];
  let result: CapsCostResult | undefined;
  try {
    phase('starting the engine (src/main.ts) on a fresh database');
    const server = await startServer({ name: 'engine', nodeArgs: ['--import', 'tsx', 'src/main.ts'], env, readyPath: '/readyz' });
    try {
      const url = server.baseUrl;
      const streams = await seed(url);
      const cpu = new CpuProbe(server.pid, database.postmasterPid);
      for (const stream of [...streams.values()].flat()) {
        if (WARMUP > 0) await runLoad({ label: `warm-up ${stream.offerId}`, url, connections: CONCURRENCY, durationS: 0, amount: WARMUP, requests: stream.requests(), expectedStatus: 200 });
        await stream.settle(url);
      }
      await waitForQuiet(QUIET_WAIT_S, cpu);
      for (let round = 1; round <= ROUNDS; round++) {
        for (const v of VARIANTS) {
          const group = streams.get(v.key) as OfferStream[];
          const amount = Math.min(PER_ROUND, POSTBACKS - (round - 1) * PER_ROUND);
          if (amount <= 0) continue;
          const all = pooled.get(v.key) as LatencyRecorder;
          const inRound = new LatencyRecorder();
          const latencies = {
            add: (ms: number) => {
              all.add(ms);
              inRound.add(ms);
            },
          };
          const batchesBefore = await commitBatches(url);
          const ms = await Promise.all(
            group.map((stream, i) =>
              runLoad({ label: `round ${round}/${ROUNDS} ${v.name}${group.length > 1 ? ` #${i + 1}` : ''}`, url, connections: CONCURRENCY, durationS: 0, amount, requests: stream.requests(), expectedStatus: 200, ...(i === 0 ? { cpu } : {}), latencies }),
            ),
          );
          // autocannon notices a counted run is done only on its once-a-second tick, so both its duration
          // and the run's window are whole seconds: a round is timed from its first request to its last answer.
          const seconds = (Math.max(...group.map((g) => g.lastAnswerAt)) - Math.min(...group.map((g) => g.firstSentAt))) / 1000;
          const served = ms.reduce((n, m) => n + m.served, 0);
          const responses = ms.reduce((n, m) => n + m.responses, 0);
          rounds.push({ round, variant: v.key, served, responses, durationS: seconds, rps: served / seconds, latencyMs: inRound.summary(), cpu: ms[0]?.cpu, loadAverage1m: os.loadavg()[0] ?? 0, commitBatches: (await commitBatches(url)) - batchesBefore });
          note(`${fmtInt(served / seconds)} postbacks/s over ${seconds.toFixed(2)} s (first request to last answer; the line above counts autocannon's whole seconds)`);
          for (const stream of group) await stream.settle(url);
        }
      }
      for (const v of VARIANTS) {
        for (const [i, stream] of (streams.get(v.key) as OfferStream[]).entries()) checks.push(...(await stream.verify(database.sql, `${v.name} #${i + 1}`, v.prices, v.capped)));
      }

      const figures: OfferFigures[] = VARIANTS.map((v) => {
        const mine = rounds.filter((r) => r.variant === v.key);
        const served = mine.reduce((s, r) => s + r.served, 0);
        const seconds = mine.reduce((s, r) => s + r.durationS, 0);
        const group = streams.get(v.key) as OfferStream[];
        const decisions: Record<string, number> = {};
        for (const g of group) for (const [d, n] of Object.entries(g.decisions)) decisions[d] = (decisions[d] ?? 0) + n;
        return {
          variant: v.key,
          name: v.name,
          offers: v.offers,
          terms: v.terms,
          served,
          rps: served / seconds,
          roundRps: mine.map((r) => Math.round(r.rps)),
          commitBatchesPerPostback: mine.reduce((s, r) => s + r.commitBatches, 0) / served,
          latencyMs: (pooled.get(v.key) as LatencyRecorder).summary(),
          decisions,
          retried: group.reduce((n, g) => n + g.retried, 0),
        };
      });
      const plain = figures[0] as OfferFigures;
      const capped = figures[2] as OfferFigures;
      result = {
        bench: 'caps-cost',
        date: new Date().toISOString(),
        machine: machineInfo(),
        loadAverage: { before: loadBefore, after: os.loadavg() },
        options: { postbacksPerOffer: POSTBACKS, concurrency: CONCURRENCY, rounds: ROUNDS, warmupPerOffer: WARMUP, saleAmount: SALE_AMOUNT },
        database: db.description,
        offers: figures.map((f) => ({
          ...f,
          ratioToPlain: f.rps / plain.rps,
          ratioToCapped: f.rps / capped.rps,
          addedUsPerPostback: round1(1e6 / f.rps - 1e6 / plain.rps),
        })),
        rounds,
        checks,
      };
    } catch (err) {
      process.stdout.write(`engine output:\n${server.tail()}\n`);
      throw err;
    } finally {
      await server.stop();
    }
  } finally {
    await database.drop();
    await db.stop();
  }

  if (!result) throw new Error('the bench ended without figures');
  const stem = CONCURRENCY === DEFAULT_CONNECTIONS ? 'caps-cost' : `caps-cost-${CONCURRENCY}-connections`;
  const md = renderCapsCostMarkdown(result, stem);
  await mkdir(RESULTS_DIR, { recursive: true });
  await writeFile(path.join(RESULTS_DIR, `${stem}.json`), `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(path.join(RESULTS_DIR, `${stem}.md`), md);
  const html = await writeIndexHtml();
  process.stdout.write(`\n${md}\n`);
  for (const f of [`${stem}.json`, `${stem}.md`]) note(`wrote ${path.relative(REPO_ROOT, path.join(RESULTS_DIR, f))}`);
  note(`wrote ${path.relative(REPO_ROOT, html)}`);
  if (result.checks.some((c) => !c.pass)) process.exitCode = 1;
}

await main();
