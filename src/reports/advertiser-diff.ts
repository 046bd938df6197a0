import type { Sql } from '../db/database.js';
import { formatMoney } from '../money.js';
import type { AdvertiserRow } from './advertiser-csv.js';

/**
 * The advertiser's conversion list against the engine's records for that advertiser, keyed by txid
 * (unique per advertiser, CONTRACT §4):
 * - matched: the engine has it with the same payout, currency, status and (when given) click;
 * - differing: the engine has it, but payout, currency, status or click differ (each difference listed);
 * - missing: the engine has no conversion with that txid;
 * - extra: the engine has a conversion created in [from, to] that the list lacks. By default the
 *   window spans the list's own first and last `time`, so a list of one day is not charged with
 *   every other day's conversions.
 * It answers the report (JSON) and the same findings as rows for a spreadsheet.
 */

export type DiffWindow = { from: Date; to: Date } | undefined;

type EngineRow = {
  id: string;
  txid: string;
  click_id: string;
  payout_minor: bigint;
  currency: string;
  status: string;
  decision: string;
  source: string;
  created_at: Date;
};

const engineView = (c: EngineRow) => ({
  conversionId: c.id,
  txid: c.txid,
  clickid: c.click_id,
  payout: formatMoney(c.payout_minor, c.currency.trim()),
  currency: c.currency.trim(),
  status: c.status,
  decision: c.decision,
  source: c.source,
  createdAt: c.created_at.toISOString(),
});

export function defaultWindow(rows: AdvertiserRow[]): DiffWindow {
  if (rows.length === 0) return undefined;
  let min = rows[0]?.time.getTime() as number;
  let max = min;
  for (const r of rows) {
    min = Math.min(min, r.time.getTime());
    max = Math.max(max, r.time.getTime());
  }
  return { from: new Date(min), to: new Date(max) };
}

export async function diffAdvertiserReport(sql: Sql, advertiserId: string, rows: AdvertiserRow[], window: DiffWindow) {
  const txids = rows.map((r) => r.txid);
  const known = await sql<EngineRow[]>`
    select c.id, c.txid, c.click_id, c.payout_minor, c.currency, c.status, c.decision, c.source, c.created_at
    from conversion_txids t
    join conversions c on c.id = t.conversion_id and c.created_at = t.created_at and c.advertiser_id = t.advertiser_id
    where t.advertiser_id = ${advertiserId} and t.txid = any(${txids}::text[])`;
  const extra = window
    ? await sql<EngineRow[]>`
        select c.id, c.txid, c.click_id, c.payout_minor, c.currency, c.status, c.decision, c.source, c.created_at
        from conversions c
        where c.advertiser_id = ${advertiserId}
          and c.created_at >= ${window.from.toISOString()}::timestamptz and c.created_at <= ${window.to.toISOString()}::timestamptz
          and not exists (select 1 from unnest(${txids}::text[]) as t(txid) where t.txid = c.txid)
        order by c.created_at, c.id`
    : [];

  const byTxid = new Map(known.map((c) => [c.txid, c]));
  const sheet: SheetRow[] = [];
  const matched: { line: number; txid: string; conversionId: string }[] = [];
  const missing: ReturnType<typeof advertiserView>[] = [];
  const differing: { line: number; txid: string; conversionId: string; differences: { field: string; advertiser: string; engine: string }[] }[] = [];
  for (const row of rows) {
    const c = byTxid.get(row.txid);
    if (!c) {
      missing.push(advertiserView(row));
      sheet.push(sheetRow('missing', row, undefined, []));
      continue;
    }
    const currency = c.currency.trim();
    const differences: { field: string; advertiser: string; engine: string }[] = [];
    if (currency !== row.currency) differences.push({ field: 'currency', advertiser: row.currency, engine: currency });
    // Compared in minor units: "2.5" and "2.50" are the same amount.
    if (currency !== row.currency || c.payout_minor !== row.payoutMinor) {
      differences.push({ field: 'payout', advertiser: formatMoney(row.payoutMinor, row.currency), engine: formatMoney(c.payout_minor, currency) });
    }
    if (c.status !== row.status) differences.push({ field: 'status', advertiser: row.status, engine: c.status });
    if (row.clickid !== null && row.clickid !== c.click_id) differences.push({ field: 'clickid', advertiser: row.clickid, engine: c.click_id });
    if (differences.length === 0) matched.push({ line: row.line, txid: row.txid, conversionId: c.id });
    else differing.push({ line: row.line, txid: row.txid, conversionId: c.id, differences });
    sheet.push(sheetRow(differences.length === 0 ? 'matched' : 'differing', row, c, differences.map((d) => d.field)));
  }
  for (const c of extra) sheet.push(sheetRow('extra', undefined, c, []));
  return {
    report: {
      advertiserId,
      from: window?.from.toISOString() ?? null,
      to: window?.to.toISOString() ?? null,
      summary: { rows: rows.length, matched: matched.length, differing: differing.length, missing: missing.length, extra: extra.length },
      matched,
      differing,
      missing,
      extra: extra.map(engineView),
    },
    sheet,
  };
}

/**
 * The same findings as a spreadsheet (`format=csv`): one row per txid, the advertiser's values beside
 * the engine's, in the file's order, then the extras. `differences` names the fields that differ.
 */
export const SHEET_COLUMNS = [
  'finding',
  'line',
  'txid',
  'conversion_id',
  'differences',
  'advertiser_clickid',
  'engine_clickid',
  'advertiser_payout',
  'engine_payout',
  'advertiser_currency',
  'engine_currency',
  'advertiser_status',
  'engine_status',
  'advertiser_time',
  'engine_created_at',
] as const;

type SheetRow = Record<(typeof SHEET_COLUMNS)[number], string | number | null>;

function sheetRow(finding: 'matched' | 'differing' | 'missing' | 'extra', row: AdvertiserRow | undefined, c: EngineRow | undefined, differences: string[]): SheetRow {
  const engineCurrency = c?.currency.trim();
  return {
    finding,
    line: row?.line ?? null,
    txid: row?.txid ?? c?.txid ?? null,
    conversion_id: c?.id ?? null,
    differences: differences.join(' '),
    advertiser_clickid: row?.clickid ?? null,
    engine_clickid: c?.click_id ?? null,
    advertiser_payout: row ? formatMoney(row.payoutMinor, row.currency) : null,
    engine_payout: c && engineCurrency ? formatMoney(c.payout_minor, engineCurrency) : null,
    advertiser_currency: row?.currency ?? null,
    engine_currency: engineCurrency ?? null,
    advertiser_status: row?.status ?? null,
    engine_status: c?.status ?? null,
    advertiser_time: row?.time.toISOString() ?? null,
    engine_created_at: c?.created_at.toISOString() ?? null,
  };
}

function advertiserView(r: AdvertiserRow) {
  return {
    line: r.line,
    txid: r.txid,
    clickid: r.clickid,
    payout: formatMoney(r.payoutMinor, r.currency),
    currency: r.currency,
    status: r.status,
    time: r.time.toISOString(),
  };
}
