import { latestProfile, summarizeProfile, type ProfileSummary } from './cpu-profile.js';
import { runLoad, type Measurement } from './load.js';
import { PostbackLedger } from './postback-ledger.js';
import { sleep } from './processes.js';
import { note, phase } from './progress.js';
import { atMostGoal, baselineOf, check, machineInfo, quietMachineCheck, ratioGoal, type Check, type Goal, type ScenarioResult, type TargetRun } from './results.js';
import { withCosts } from './costs.js';
import { measureDuplicateFloor } from './floor.js';
import { DISTINCT_FLOOR_GOAL, DUPLICATE_FLOOR_GOAL, PG_CPU_GOAL_US } from './goals.js';
import { readIndexUsage, type TableIndexUsage } from './index-usage.js';
import { withPgCost, type PgCost } from './pg-cost.js';
import { mintClicks, seedCatalog } from './seed.js';
import { webhookKey } from './signing.js';
import { ADMIN_TOKEN, measureBaseline, startEngine, stopEngine, waitForQuiet, type BenchContext, type RunningEngine, type Variant } from './targets.js';

/**
 * Postback intake: signed GET postbacks (CONTRACT §4, `&ts=..&sig=..`) from an advertiser with no
 * allowlist and a rate limit high enough never to bite, against the hello-world baseline and the
 * postback floor (signature and click ID checked, a fixed answer) of the same run.
 * - distinct: every request a new txid on a real click ID, freshly signed: the commit path.
 * - duplicates: the accepted txids replayed byte for byte: the idempotency path.
 * Goals (issue 15): distinct ≥ 0.3× and duplicates ≥ 0.8× the floor's req/s; PostgreSQL CPU per
 * durable conversion ≤ 80 µs (pg-cost.ts, with the write amplification).
 * Afterwards PostgreSQL must hold exactly one conversion per txid that got a 200.
 */

/**
 * Bench traffic converts milliseconds after its click, from one address, with autocannon's user
 * agent: the rules that rightly reject that are evaluated in monitor mode (their cost is paid, their
 * points are not counted), so conversions are accepted and take the whole durable path, their
 * delivery included, as most real postbacks do.
 */
const BENCH_TRAFFIC_FRAUD = {
  rules: Object.fromEntries(['ctit_too_short', 'multiple_conversions_per_click', 'ip_burst', 'bot_user_agent'].map((code) => [code, { mode: 'monitor' }])),
};
const INITIAL_CLICK_POOL = 5_000;
const MAX_CLICK_POOL = 300_000;
/** Click IDs minted for the measured run: its expected requests times this (a warm-up runs slower). */
const CLICK_HEADROOM = 3;
/** ...and at least this many per second of the run: minting is cheap, a reused click skews scoring. */
const MIN_CLICKS_PER_S = 1_000;
/** Clicks are written in batches within ~20 ms; a postback normally follows its click by far more. */
const CLICK_FLUSH_WAIT_MS = 500;

class IntakeUnavailable extends Error {}

export async function runPostbacksScenario(ctx: BenchContext, variants: Variant[], database: string): Promise<ScenarioResult> {
  const baseline = await measureBaseline(ctx, 'before');
  const floor = await measureDuplicateFloor(ctx);
  const measured: VariantRuns[] = [];
  const checks: Check[] = [];
  const profiles: ProfileSummary[] = [];
  const notes: string[] = [];
  let status: ScenarioResult['status'] = 'ok';
  let indexUsage: TableIndexUsage[] | undefined;

  for (const variant of variants) {
    const engine = await startEngine(ctx, variant, `postbacks-${variant}`);
    let out: VariantRuns | undefined;
    try {
      out = await measureVariant(ctx, engine, floor.rps * DISTINCT_FLOOR_GOAL);
      measured.push(out);
      checks.push(...out.checks);
      // Scans over the whole scenario on this engine's own database: clicks minted, postbacks, replays.
      if (variant === 'memory') indexUsage = await readIndexUsage(engine.database.sql);
    } catch (err) {
      if (!(err instanceof IntakeUnavailable)) {
        process.stdout.write(`engine output:\n${engine.server.tail()}\n`);
        throw err;
      }
      status = 'unavailable';
      notes.push(`engine (${variant}): ${err.message}`);
      phase(`engine (${variant}): ${err.message}; skipping the postback runs`);
    } finally {
      await stopEngine(engine);
      await engine.database.drop();
    }
    const file = engine.profile && out ? await latestProfile(engine.profile.dir, engine.profile.startedAt) : undefined;
    if (file && out) {
      profiles.push(
        await summarizeProfile(`engine (${variant}) during the measured distinct run`, file, out.distinct.window),
        await summarizeProfile(`engine (${variant}) during the measured duplicates run`, file, out.duplicates.window),
      );
    }
  }

  const baselineAfter = await measureBaseline(ctx, 'after');
  const { baselineRps, drift } = baselineOf(baseline, baselineAfter);
  checks.unshift(drift, ...quietMachineCheck([baseline, baselineAfter, floor, ...measured.flatMap((v) => [v.distinct, v.duplicates])]));
  const ratio = (m: Measurement) => (baselineRps > 0 ? m.rps / baselineRps : 0);
  const overFloor = (m: Measurement) => (floor.rps > 0 ? m.rps / floor.rps : 0);
  const reference = { name: 'postback floor', rps: floor.rps };
  const runs: TargetRun[] = measured.flatMap((v) => [
    {
      name: 'postback, distinct txids',
      variant: v.variant,
      workload: 'signed GET /postback/:advertiserId, a new txid per request',
      measurement: v.distinct,
      ratio: ratio(v.distinct),
      goals: [ratioGoal(`req/s ≥ ${DISTINCT_FLOOR_GOAL}× the postback floor`, overFloor(v.distinct), DISTINCT_FLOOR_GOAL, reference), ...pgCpuGoal(v.pgCost)],
      details: v.distinctDetails,
      pgCost: v.pgCost,
    },
    {
      name: 'postback, duplicates',
      variant: v.variant,
      workload: 'the accepted signed postbacks replayed byte for byte',
      measurement: v.duplicates,
      ratio: ratio(v.duplicates),
      goals: [ratioGoal(`req/s ≥ ${DUPLICATE_FLOOR_GOAL}× the postback floor`, overFloor(v.duplicates), DUPLICATE_FLOOR_GOAL, reference)],
      details: v.duplicateDetails,
    },
  ]);
  runs.unshift({
    name: 'postback, duplicates',
    variant: 'floor',
    workload: 'the GET signature and the click ID checked (two HMACs) and a fixed answer, nothing else',
    measurement: floor,
    ratio: ratio(floor),
    goals: [],
  });

  return {
    scenario: 'postbacks',
    status,
    ...(notes.length > 0 ? { note: notes.join(' ') } : {}),
    date: new Date().toISOString(),
    machine: machineInfo(),
    options: ctx.options,
    database,
    baseline,
    baselineAfter,
    baselineRps,
    runs,
    checks,
    profiles,
    ...(indexUsage ? { indexUsage } : {}),
  };
}

/** Judged on the processes' CPU (commit, WAL writer and all); without it (a remote server), not judged. */
function pgCpuGoal(cost: PgCost): Goal[] {
  if (cost.processCpuUs === undefined) return [];
  return [atMostGoal(`PostgreSQL CPU ≤ ${PG_CPU_GOAL_US} µs per durable conversion`, cost.processCpuUs, PG_CPU_GOAL_US)];
}

export type VariantRuns = {
  variant: Variant;
  /** The variant, and how many engine processes when more than one. */
  label: string;
  distinct: Measurement;
  duplicates: Measurement;
  distinctDetails: Record<string, number>;
  duplicateDetails: Record<string, number>;
  pgCost: PgCost;
  checks: Check[];
};

/**
 * Seeds, mints clicks, then measures distinct postbacks (with their PostgreSQL cost) and their
 * replays on a running engine, with the no-loss checks. `guessRps` sizes the click pool when there
 * is no warm-up to measure the rate.
 */
export async function measureVariant(ctx: BenchContext, engine: RunningEngine, guessRps: number): Promise<VariantRuns> {
  const { connections, durationS, warmupS } = ctx.options;
  const variant = engine.label;
  const base = engine.variant;
  const url = engine.server.baseUrl;
  const sql = engine.database.sql;

  phase(`engine (${variant}): seeding advertiser (hmac, any address, rateLimit 1,000,000/s), publisher and offer (traffic-shape fraud rules in monitor mode)`);
  const catalog = await seedCatalog(url, ADMIN_TOKEN, { auth: ['hmac'], ipAllowlist: [], rateLimit: { perS: 1_000_000 } }, { fraud: BENCH_TRAFFIC_FRAUD });

  // Each conversion gets its own click. A first pool covers the warm-up; the warm-up's rate then
  // sizes the rest, so minting does not take longer than the run it feeds.
  const fixedPool = ctx.options.clickPool;
  const firstPool = fixedPool ?? INITIAL_CLICK_POOL;
  phase(`engine (${variant}): minting ${firstPool.toLocaleString('en-US')} click IDs through GET /c/:offerId (not measured)`);
  const clicks = await mintClicks(url, catalog, firstPool, connections);
  await sleep(CLICK_FLUSH_WAIT_MS);
  const ledger = new PostbackLedger(catalog.advertiserId, webhookKey(catalog.secret), clicks);

  phase(`engine (${variant}): pre-flight, one signed GET /postback/${catalog.advertiserId}`);
  const first = await ledger.sendOne(url, ledger.newTxid('preflight'), clicks[0] as string);
  if (first.status === 404 && !first.body.includes('unknown_advertiser')) {
    throw new IntakeUnavailable(`the postback intake is not there yet (404 from /postback: ${first.body.trim()})`);
  }
  if (first.status !== 200) throw new Error(`pre-flight postback answered ${first.status}: ${first.body}`);
  note(`pre-flight answer: ${first.body.trim()}`);

  const distinct = ledger.distinctRequests();
  let expectedRps = guessRps;
  if (warmupS > 0) {
    const warm = await runLoad({ label: `warm-up postbacks, distinct (${variant})`, url, connections, durationS: warmupS, requests: distinct, expectedStatus: 200 });
    expectedRps = warm.rpsAll;
    await settle(ledger, url);
  }
  if (fixedPool === undefined) {
    const perS = Math.max(MIN_CLICKS_PER_S, expectedRps * CLICK_HEADROOM);
    const wanted = Math.min(MAX_CLICK_POOL, Math.ceil(perS * durationS) + connections);
    const more = wanted - ledger.clicksLeft;
    if (more > 0) {
      phase(`engine (${variant}): minting ${more.toLocaleString('en-US')} more click IDs for the measured run (not measured)`);
      ledger.addClicks(await mintClicks(url, catalog, more, connections));
      await sleep(CLICK_FLUSH_WAIT_MS);
    }
  }
  await waitForQuiet(ctx.options.quietWaitS, engine.cpu);
  phase(`engine (${variant}): counting rows, index entries and statements before the measured run`);
  const label = `measure postbacks, distinct (${variant})`;
  const [[distinctRun, distinctCost], pgCost] = await withPgCost(
    sql,
    engine.database.statements,
    () => withCosts(sql, url, () => runLoad({ label, url, connections, durationS, requests: distinct, expectedStatus: 200, cpu: engine.cpu })),
    ([run]) => run.cpu,
  );
  await settle(ledger, url);
  const checks = await ledger.verify(sql, `postbacks (${variant}), after distinct`);
  const afterDistinct = await ledger.conversionsInDatabase(sql);
  const unexpectedDistinct = { ...ledger.unexpected };

  const replays = ledger.replayRequests();
  if (warmupS > 0) {
    await runLoad({ label: `warm-up postbacks, duplicates (${variant})`, url, connections, durationS: warmupS, requests: replays, expectedStatus: 200 });
  }
  const dupBefore = ledger.duplicateAnswers;
  const [duplicatesRun, duplicatesCost] = await withCosts(sql, url, async () => {
    await waitForQuiet(ctx.options.quietWaitS, engine.cpu);
    const label = `measure postbacks, duplicates (${variant})`;
    return runLoad({ label, url, connections, durationS, requests: replays, expectedStatus: 200, cpu: engine.cpu });
  });
  const afterDuplicates = await ledger.conversionsInDatabase(sql);
  checks.push(
    check(`postbacks (${variant}): conversions after replays = before`, afterDistinct, afterDuplicates, afterDistinct === afterDuplicates),
    check(`postbacks (${variant}): replays answered other than duplicate of the original`, 0, ledger.replayMismatches, ledger.replayMismatches === 0),
  );
  note(`conversions in PostgreSQL: ${afterDuplicates}; distinct 200 answers: ${ledger.accepted.size}; retried after runs: ${ledger.retried}`);

  const perConversion = (cores: number | undefined) =>
    cores === undefined || pgCost.conversions <= 0 ? undefined : Math.round(((cores * (distinctRun.cpu?.wallS ?? 0) * 1e6) / pgCost.conversions) * 10) / 10;
  const engineUs = perConversion(distinctRun.cpu?.serverCores);
  const details = {
    'click IDs minted': clicks.length,
    ...(engineUs === undefined ? {} : { 'engine CPU µs per conversion': engineUs }),
    'conversions on a reused click': ledger.clicksReused,
    ...Object.fromEntries(Object.entries(ledger.decisions).map(([d, n]) => [`decision ${d}`, n])),
    'retried after a run (cut off or 503)': ledger.retried,
    ...Object.fromEntries(Object.entries(unexpectedDistinct).map(([k, n]) => [`answer ${k}`, n])),
    ...distinctCost,
  };
  const replayDetails = {
    'accepted txids replayed': ledger.accepted.size,
    'duplicate answers (measured run)': ledger.duplicateAnswers - dupBefore,
    ...duplicatesCost,
  };
  return { variant: base, label: variant, distinct: distinctRun, duplicates: duplicatesRun, distinctDetails: details, duplicateDetails: replayDetails, pgCost, checks };
}

async function settle(ledger: PostbackLedger, url: string): Promise<void> {
  if (ledger.pending.size === 0) return;
  const n = ledger.pending.size;
  const sent = await ledger.settle(url);
  note(`retried ${n} postbacks cut off when the run ended (${sent} requests); ${ledger.pending.size} still without an answer`);
}
