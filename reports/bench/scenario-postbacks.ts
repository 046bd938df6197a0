import { latestProfile, summarizeProfile, type ProfileSummary } from './cpu-profile.js';
import { runLoad, type Measurement } from './load.js';
import { PostbackLedger } from './postback-ledger.js';
import { note, phase } from './progress.js';
import { check, machineInfo, ratioGoal, type Check, type ScenarioResult, type TargetRun } from './results.js';
import { mintClicks, seedCatalog } from './seed.js';
import { webhookKey } from './signing.js';
import { ADMIN_TOKEN, measureBaseline, startEngine, stopEngine, type BenchContext, type RunningEngine, type Variant } from './targets.js';

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
const MIN_CLICK_POOL = 2_000;
const MAX_CLICK_POOL = 200_000;

class IntakeUnavailable extends Error {}

export async function runPostbacksScenario(ctx: BenchContext, variants: Variant[], database: string): Promise<ScenarioResult> {
  const baseline = await measureBaseline(ctx);
  const runs: TargetRun[] = [];
  const checks: Check[] = [];
  const profiles: ProfileSummary[] = [];
  const notes: string[] = [];
  let status: ScenarioResult['status'] = 'ok';

  for (const variant of variants) {
    const engine = await startEngine(ctx, variant, `postbacks-${variant}`);
    try {
      const out = await measureVariant(ctx, engine, baseline);
      runs.push(...out.runs);
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
    if (engine.profile) {
      const file = await latestProfile(engine.profile.dir, engine.profile.startedAt);
      if (file) profiles.push(await summarizeProfile(`engine (${variant}), postbacks`, file));
    }
  }

  return {
    scenario: 'postbacks',
    status,
    ...(notes.length > 0 ? { note: notes.join(' ') } : {}),
    date: new Date().toISOString(),
    machine: machineInfo(),
    options: ctx.options,
    database,
    baseline,
    runs,
    checks,
    profiles,
  };
}

async function measureVariant(ctx: BenchContext, engine: RunningEngine, baseline: Measurement): Promise<{ runs: TargetRun[]; checks: Check[] }> {
  const { connections, durationS, warmupS } = ctx.options;
  const { variant } = engine;
  const url = engine.server.baseUrl;
  const sql = engine.database.sql;

  phase(`engine (${variant}): seeding advertiser (hmac, any address, rateLimit 1,000,000/s), publisher and offer`);
  const catalog = await seedCatalog(url, ADMIN_TOKEN, { auth: ['hmac'], ipAllowlist: [], rateLimit: { perS: 1_000_000 } });

  // Enough click IDs that, at the goal's rate with headroom, no click is converted twice.
  const pool =
    ctx.options.clickPool ?? Math.min(MAX_CLICK_POOL, Math.max(MIN_CLICK_POOL, Math.ceil(baseline.rps * 0.5 * (warmupS + durationS))));
  phase(`engine (${variant}): minting ${pool.toLocaleString('en-US')} click IDs through GET /c/:offerId (not measured)`);
  const clicks = await mintClicks(url, catalog, pool, connections);
  const ledger = new PostbackLedger(catalog.advertiserId, webhookKey(catalog.secret), clicks);

  phase(`engine (${variant}): pre-flight, one signed GET /postback/${catalog.advertiserId}`);
  const first = await ledger.sendOne(url, ledger.newTxid('preflight'), clicks[0] as string);
  if (first.status === 404 && !first.body.includes('unknown_advertiser')) {
    throw new IntakeUnavailable(`the postback intake is not there yet (404 from /postback: ${first.body.trim()})`);
  }
  if (first.status !== 200) throw new Error(`pre-flight postback answered ${first.status}: ${first.body}`);
  note(`pre-flight answer: ${first.body.trim()}`);

  const distinct = ledger.distinctRequests();
  if (warmupS > 0) {
    await runLoad({ label: `warm-up postbacks, distinct (${variant})`, url, connections, durationS: warmupS, requests: distinct, expectedStatus: 200 });
    await settle(ledger, url);
  }
  const distinctRun = await runLoad({ label: `measure postbacks, distinct (${variant})`, url, connections, durationS, requests: distinct, expectedStatus: 200 });
  await settle(ledger, url);
  const checks = await ledger.verify(sql, `postbacks (${variant}), after distinct`);
  const afterDistinct = await ledger.conversionsInDatabase(sql);
  const unexpectedDistinct = { ...ledger.unexpected };

  const replays = ledger.replayRequests();
  if (warmupS > 0) {
    await runLoad({ label: `warm-up postbacks, duplicates (${variant})`, url, connections, durationS: warmupS, requests: replays, expectedStatus: 200 });
  }
  const dupBefore = ledger.duplicateAnswers;
  const duplicatesRun = await runLoad({ label: `measure postbacks, duplicates (${variant})`, url, connections, durationS, requests: replays, expectedStatus: 200 });
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
  };
  const replayDetails = {
    'accepted txids replayed': ledger.accepted.size,
    'duplicate answers (measured run)': ledger.duplicateAnswers - dupBefore,
  };
  const ratio = (m: Measurement) => (baseline.rps > 0 ? m.rps / baseline.rps : 0);
  return {
    checks,
    runs: [
      {
        name: 'postback, distinct txids',
        variant,
        workload: 'signed GET /postback/:advertiserId, a new txid per request',
        measurement: distinctRun,
        ratio: ratio(distinctRun),
        goals: [ratioGoal(`req/s ≥ ${DISTINCT_RATIO_GOAL}× hello-world`, ratio(distinctRun), DISTINCT_RATIO_GOAL)],
        details,
      },
      {
        name: 'postback, duplicates',
        variant,
        workload: 'the accepted signed postbacks replayed byte for byte',
        measurement: duplicatesRun,
        ratio: ratio(duplicatesRun),
        goals: [ratioGoal(`req/s ≥ ${DUPLICATE_RATIO_GOAL}× hello-world`, ratio(duplicatesRun), DUPLICATE_RATIO_GOAL)],
        details: replayDetails,
      },
    ],
  };
}

async function settle(ledger: PostbackLedger, url: string): Promise<void> {
  if (ledger.pending.size === 0) return;
  const n = ledger.pending.size;
  const sent = await ledger.settle(url);
  note(`retried ${n} postbacks cut off when the run ended (${sent} requests); ${ledger.pending.size} still without an answer`);
}
