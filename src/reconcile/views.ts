import type { CatalogNames } from '../conversions/query.js';
import type { RunRecord, RunRow } from './runs-store.js';

/** The run as the API shows it (CONTRACT §7), with what the contract leaves open made explicit. */

export const COUNT_KEYS = ['s2s', 'pixel', 'matched', 's2sOnly', 'pixelOnly', 'recovered', 'refired', 'expired'] as const;
export type Counts = Record<(typeof COUNT_KEYS)[number], number>;

export function sumRows(rows: RunRow[]): Counts {
  const totals = Object.fromEntries(COUNT_KEYS.map((k) => [k, 0])) as Counts;
  for (const r of rows) for (const k of COUNT_KEYS) totals[k] += r[k];
  return totals;
}

export function runSummaryView(run: RunRecord) {
  return {
    id: run.id,
    from: run.from.toISOString(),
    to: run.to.toISOString(),
    trigger: run.trigger,
    state: run.state,
    requestedBy: run.requestedBy,
    error: run.error,
    startedAt: run.startedAt.toISOString(),
    finishedAt: run.finishedAt?.toISOString() ?? null,
    totals: run.totals,
    rootCauses: run.rootCauses,
    stepMs: run.stepMs,
  };
}

/** The API's run: rows name their offer and publisher from the catalog (finance may not list them). */
export function namedRunView(run: RunRecord, rows: RunRow[], names: CatalogNames) {
  const view = runView(run, rows);
  return {
    ...view,
    rows: view.rows.map((r) => ({ ...r, offerName: names.offers.get(r.offerId)?.name ?? null, publisherName: names.publishers.get(r.publisherId)?.name ?? null })),
  };
}

export function runView(run: RunRecord, rows: RunRow[]) {
  return {
    ...runSummaryView(run),
    rows: rows.map((r) => ({
      offerId: r.offerId,
      publisherId: r.publisherId,
      hour: r.hour.toISOString(),
      s2s: r.s2s,
      pixel: r.pixel,
      matched: r.matched,
      s2sOnly: r.s2sOnly,
      pixelOnly: r.pixelOnly,
      recovered: r.recovered,
      refired: r.refired,
      expired: r.expired,
    })),
    // From the rows, so a failed run still shows what it did before it stopped.
    totals: sumRows(rows),
    rootCauses: run.rootCauses ?? {},
  };
}
