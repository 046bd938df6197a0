import { latestProfile, summarizeProfile, type ProfileSummary } from './cpu-profile.js';
import { runLoad, type Measurement } from './load.js';
import { withCosts } from './costs.js';
import { measureClickFloor } from './floor.js';
import { note, phase } from './progress.js';
import { CLICK_FLOOR_GOAL } from './goals.js';
import { baselineOf, check, machineInfo, quietMachineCheck, ratioGoal, type Check, type ScenarioResult, type TargetRun } from './results.js';
import { clickPath, seedCatalog } from './seed.js';
import { ADMIN_TOKEN, measureBaseline, startEngine, stopEngine, waitForQuiet, type BenchContext, type Variant } from './targets.js';

/**
 * Click redirects: `GET /c/:offerId?pub=..&sub1=..` against the hello-world baseline and the click
 * floor (a click ID minted and a 302, nothing else) of the same run.
 * Goal (issue 15): at least 0.8× the floor's req/s.
 * Afterwards every 302 must have left a click row: the batch writer is given a second to flush,
 * the engine is stopped, and the rows counted. A request cut off in flight when a run ends may have
 * been recorded without the client reading its answer, so rows may exceed 302s by at most the
 * number of connections per run.
 */

export async function runClicksScenario(ctx: BenchContext, variants: Variant[], database: string): Promise<ScenarioResult> {
  const { connections, durationS, warmupS } = ctx.options;
  const baseline = await measureBaseline(ctx, 'before');
  const floor = await measureClickFloor(ctx);
  const measured: { variant: Variant; measurement: Measurement; activity: Record<string, number> }[] = [];
  const checks: Check[] = [];
  const profiles: ProfileSummary[] = [];

  for (const variant of variants) {
    const engine = await startEngine(ctx, variant, `clicks-${variant}`);
    let redirects = 0;
    let measurement: Measurement;
    let activity: Record<string, number>;
    try {
      phase(`engine (${variant}): seeding advertiser, publisher and offer through the admin API`);
      const catalog = await seedCatalog(engine.server.baseUrl, ADMIN_TOKEN);
      const url = engine.server.baseUrl;
      const requests = [{ method: 'GET' as const, path: clickPath(catalog, 'bench') }];
      if (warmupS > 0) {
        const warm = await runLoad({ label: `warm-up click redirect (${variant})`, url, connections, durationS: warmupS, requests, expectedStatus: 302 });
        redirects += warm.served;
      }
      // Counting costs after the run also lets the click batch writer flush (it waits at most ~20 ms)
      // before SIGTERM: the drain is the engine's promise, the row count below must not depend on it.
      [measurement, activity] = await withCosts(engine.database.sql, url, async () => {
        await waitForQuiet(ctx.options.quietWaitS, engine.cpu);
        return runLoad({ label: `measure click redirect (${variant})`, url, connections, durationS, requests, expectedStatus: 302, cpu: engine.cpu });
      });
      redirects += measurement.served;
    } finally {
      await stopEngine(engine);
    }
    try {
      const runsCount = warmupS > 0 ? 2 : 1;
      const [row] = await engine.database.sql<{ n: number }[]>`select count(*)::int as n from clicks`;
      const rows = row?.n ?? 0;
      const cutOff = rows - redirects;
      checks.push(
        check(
          `clicks (${variant}): rows in PostgreSQL minus 302 answers (0..${connections * runsCount} allowed for requests cut off when a run ends)`,
          `0..${connections * runsCount}`,
          `${cutOff} (${rows} rows, ${redirects} × 302)`,
          cutOff >= 0 && cutOff <= connections * runsCount,
        ),
      );
      note(`clicks in PostgreSQL: ${rows}, 302 answers: ${redirects}`);
    } finally {
      await engine.database.drop();
    }
    if (engine.profile) {
      const file = await latestProfile(engine.profile.dir, engine.profile.startedAt);
      if (file) profiles.push(await summarizeProfile(`engine (${variant}) during the measured click run`, file, measurement.window));
    }

    measured.push({ variant, measurement, activity });
  }

  const baselineAfter = await measureBaseline(ctx, 'after');
  const { baselineRps, drift } = baselineOf(baseline, baselineAfter);
  checks.unshift(drift, ...quietMachineCheck([baseline, baselineAfter, floor, ...measured.map((m) => m.measurement)]));
  const runs: TargetRun[] = measured.map(({ variant, measurement, activity }) => {
    const ratio = baselineRps > 0 ? measurement.rps / baselineRps : 0;
    const overFloor = floor.rps > 0 ? measurement.rps / floor.rps : 0;
    const goals = [ratioGoal(`req/s ≥ ${CLICK_FLOOR_GOAL}× the click floor`, overFloor, CLICK_FLOOR_GOAL)];
    return { name: 'click redirect GET /c/:offerId', variant, workload: 'GET /c/:offerId?pub=..&sub1=..', measurement, ratio, goals, details: activity };
  });
  runs.unshift({
    name: 'click redirect GET /c/:offerId',
    variant: 'floor',
    workload: 'a click ID minted (one HMAC) and a 302, nothing validated, looked up or recorded',
    measurement: floor,
    ratio: baselineRps > 0 ? floor.rps / baselineRps : 0,
    goals: [],
  });

  return {
    scenario: 'clicks',
    status: 'ok',
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
