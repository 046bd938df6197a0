import { latestProfile, summarizeProfile, type ProfileSummary } from './cpu-profile.js';
import { runLoad, type Measurement } from './load.js';
import { PostbackLedger } from './postback-ledger.js';
import { sleep } from './processes.js';
import { note, phase } from './progress.js';
import { baselineOf, check, machineInfo, quietMachineCheck, ratioGoal, type Check, type ScenarioResult, type TargetRun } from './results.js';
import { withCosts } from './costs.js';
import { measureDuplicateFloor } from './floor.js';
import { mintClicks, seedCatalog } from './seed.js';
import { webhookKey } from './signing.js';
import { ADMIN_TOKEN, measureBaseline, startEngine, stopEngine, waitForQuiet, type BenchContext, type RunningEngine, type Variant } from './targets.js';

/**
 * Postback intake: signed GET postbacks (CONTRACT §4, `&ts=..&sig=..`) from an advertiser with no
 * allowlist and a rate limit high enough never to bite, against the hello-world baseline.
 * - distinct: every request a new txid on a real click ID, freshly signed: the commit path.
 * - duplicates: the accepted txids replayed byte for byte: the idempotency path.
 * Goals (the issue's): distinct ≥ 0.33× and duplicates ≥ 0.5× the baseline's req/s.
 * Afterwards PostgreSQL must hold exactly one conversion per txid that got a 200.
 */

export const DISTINCT_RATIO_GOAL = 0.33;
export const DUPLICATE_RATIO_GOAL = 0.5;
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

  for (const variant of variants) {
    const engine = await startEngine(ctx, variant, `postbacks-${variant}`);
    let out: VariantRuns | undefined;
    try {
      out = await measureVariant(ctx, engine, baseline);
      measured.push(out);
      checks.push(...out.checks);
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
  const runs: TargetRun[] = measured.flatMap((v) => [
    {
      name: 'postback, distinct txids',
      variant: v.variant,
      workload: 'signed GET /postback/:advertiserId, a new txid per request',
      measurement: v.distinct,
      ratio: ratio(v.distinct),
      goals: [ratioGoal(`req/s ≥ ${DISTINCT_RATIO_GOAL}× hello-world`, ratio(v.distinct), DISTINCT_RATIO_GOAL)],
      details: v.distinctDetails,
    },
    {
      name: 'postback, duplicates',
      variant: v.variant,
      workload: 'the accepted signed postbacks replayed byte for byte',
      measurement: v.duplicates,
      ratio: ratio(v.duplicates),
      goals: [ratioGoal(`req/s ≥ ${DUPLICATE_RATIO_GOAL}× hello-world`, ratio(v.duplicates), DUPLICATE_RATIO_GOAL)],
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
  };
}

type VariantRuns = {
  variant: Variant;
  distinct: Measurement;
  duplicates: Measurement;
  distinctDetails: Record<string, number>;
  duplicateDetails: Record<string, number>;
  checks: Check[];
};

async function measureVariant(ctx: BenchContext, engine: RunningEngine, baseline: Measurement): Promise<VariantRuns> {
  const { connections, durationS, warmupS } = ctx.options;
  const { variant } = engine;
  const url = engine.server.baseUrl;
  const sql = engine.database.sql;

  phase(`engine (${variant}): seeding advertiser (hmac, any address, rateLimit 1,000,000/s), publisher and offer`);
  const catalog = await seedCatalog(url, ADMIN_TOKEN, { auth: ['hmac'], ipAllowlist: [], rateLimit: { perS: 1_000_000 } });

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
  let expectedRps = baseline.rps * DISTINCT_RATIO_GOAL;
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
  const [distinctRun, distinctCost] = await withCosts(sql, url, async () => {
    await waitForQuiet(ctx.options.quietWaitS, engine.cpu);
    const label = `measure postbacks, distinct (${variant})`;
    return runLoad({ label, url, connections, durationS, requests: distinct, expectedStatus: 200, cpu: engine.cpu });
  });
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

  const details = {
    'click IDs minted': clicks.length,
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
  return { variant, distinct: distinctRun, duplicates: duplicatesRun, distinctDetails: details, duplicateDetails: replayDetails, checks };
}

async function settle(ledger: PostbackLedger, url: string): Promise<void> {
  if (ledger.pending.size === 0) return;
  const n = ledger.pending.size;
  const sent = await ledger.settle(url);
  note(`retried ${n} postbacks cut off when the run ended (${sent} requests); ${ledger.pending.size} still without an answer`);
}
