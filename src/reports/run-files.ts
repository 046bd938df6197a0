import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import type { RunRecord, RunRow } from '../reconcile/runs-store.js';
import { renderRunHtml } from './run-html.js';

/**
 * Each finished run leaves `reports/reconciliation-<run>.csv` (the rows, RFC 4180) and
 * `reports/reconciliation-<run>.html` (a self-contained page with the S2S-against-pixel chart), for
 * finance to archive or mail without API access. PostgreSQL stays the source of truth.
 */

export const RUN_CSV_COLUMNS = [
  'hour', 'offerId', 'publisherId', 's2s', 'pixel', 'matched', 's2sOnly', 'pixelOnly', 'recovered', 'refired', 'expired',
] as const;

/** RFC 4180: CRLF line ends, a header row, quotes only where needed. */
export function runCsv(rows: RunRow[]): string {
  return stringify(
    rows.map((r) => ({ ...r, hour: r.hour.toISOString() })),
    { header: true, columns: [...RUN_CSV_COLUMNS], record_delimiter: 'windows', escape_formulas: true },
  );
}

export function runReportPaths(dir: string, runId: string): { csv: string; html: string } {
  // Run IDs are base64url: safe as a file name, but never trust a path built from data without checking.
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(runId)) throw new Error(`not a run ID: ${runId}`);
  return { csv: path.join(dir, `reconciliation-${runId}.csv`), html: path.join(dir, `reconciliation-${runId}.html`) };
}

export async function writeRunReports(dir: string, run: RunRecord, rows: RunRow[]): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const paths = runReportPaths(dir, run.id);
  await writeAtomically(paths.csv, runCsv(rows));
  await writeAtomically(paths.html, renderRunHtml(run, rows));
  return [paths.csv, paths.html];
}

export async function removeRunReports(dir: string, runIds: string[]): Promise<void> {
  for (const id of runIds) {
    const paths = runReportPaths(dir, id);
    await rm(paths.csv, { force: true });
    await rm(paths.html, { force: true });
  }
}

/** A reader never sees half a file: write beside it, then rename over it. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, text, 'utf8');
  await rename(temp, file);
}
