import { CsvError, parse } from 'csv-parse/sync';
import { invalidRequest, type FieldIssue } from '../errors.js';
import { isTxid, TXID_RULE } from '../ids.js';
import { isCurrency, parseMoney } from '../money.js';

/**
 * The advertiser's own conversion list (CONTRACT §8): RFC 4180 CSV with a header row naming at least
 * `txid,clickid,payout,currency,status,time`, in any order; other columns are ignored (exports
 * carry more). Parsed by csv-parse: quoted fields with commas, quotes and line breaks, a UTF-8 BOM,
 * CRLF or LF. Anything wrong is a 400 that names the line, counted in the file as a text editor
 * shows it (a quoted field spanning lines makes its record start on the line where it opens).
 *
 * Leniencies, because advertisers' exports vary: header names and status are case-insensitive,
 * currency codes are upper-cased, `time` may use a space instead of `T`, and a time without a zone
 * is UTC. An empty `clickid` means the advertiser did not keep it; it is then not compared.
 */

export const REQUIRED_COLUMNS = ['txid', 'clickid', 'payout', 'currency', 'status', 'time'] as const;
const STATUSES = new Set(['approved', 'pending', 'rejected']);
const CLICK_ID = /^[A-Za-z0-9_-]{1,64}$/;
const TIME = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?)?$/i;
/** Enough to fix a file in one go without a megabyte of error body for a file in the wrong format. */
const MAX_ISSUES = 20;

export type AdvertiserRow = {
  line: number;
  txid: string;
  clickid: string | null;
  payout: string;
  payoutMinor: bigint;
  currency: string;
  status: 'approved' | 'pending' | 'rejected';
  time: Date;
};

/**
 * 1-based line of a byte offset, a line break being CRLF, LF or CR. Computed here rather than taken
 * from csv-parse's `lines`, which counts a CRLF inside a quoted field twice.
 */
function lineLocator(buf: Buffer): { lineAt(offset: number): number; skipBlank(offset: number): number } {
  const starts = [0];
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i];
    if (b === 0x0a || (b === 0x0d && buf[i + 1] !== 0x0a)) starts.push(i + 1);
  }
  return {
    lineAt(offset) {
      let lo = 0;
      let hi = starts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if ((starts[mid] as number) <= offset) lo = mid;
        else hi = mid - 1;
      }
      return lo + 1;
    },
    // Empty lines are skipped by the parser, so a record starts past any after the previous one.
    skipBlank(offset) {
      let at = offset;
      while (buf[at] === 0x0a || buf[at] === 0x0d) at++;
      return at;
    },
  };
}

export function parseTime(text: string): Date | undefined {
  const m = TIME.exec(text);
  if (!m) return undefined;
  const [, date, clock = '00:00:00', fraction = '', zone = 'Z'] = m;
  const normalisedZone = zone.toUpperCase() === 'Z' ? 'Z' : `${zone.slice(0, 3)}:${zone.slice(-2)}`;
  const at = new Date(`${date}T${clock.length === 5 ? `${clock}:00` : clock}${fraction.slice(0, 4)}${normalisedZone}`);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

function malformed(line: number, message: string): never {
  throw invalidRequest([{ path: `line ${line}`, message }], `The CSV is malformed at line ${line}: ${message}`);
}

export function parseAdvertiserCsv(body: Buffer): AdvertiserRow[] {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw invalidRequest([{ path: 'body', message: 'is not UTF-8 text' }], 'The CSV must be UTF-8 encoded.');
  }
  const where = lineLocator(body);
  const ends: number[] = [];
  let fields: string[][];
  try {
    fields = parse(body, {
      bom: true,
      skip_empty_lines: true,
      on_record: (record: string[], ctx: { bytes: number }) => {
        ends.push(ctx.bytes);
        return record;
      },
    }) as string[][];
  } catch (err) {
    // The broken record starts where the last good one ended (csv-parse's own line is where it gave up).
    if (err instanceof CsvError) malformed(where.lineAt(where.skipBlank(ends[ends.length - 1] ?? 0)), err.message);
    throw err;
  }
  const records = fields.map((record, i) => ({ line: where.lineAt(where.skipBlank(i === 0 ? 0 : (ends[i - 1] as number))), fields: record }));
  const header = records.shift();
  if (!header) malformed(1, `the file is empty; the first line must name the columns ${REQUIRED_COLUMNS.join(',')}`);
  const names = header.fields.map((f) => f.trim().toLowerCase());
  const index = new Map<string, number>();
  for (const [i, name] of names.entries()) {
    if (index.has(name) && (REQUIRED_COLUMNS as readonly string[]).includes(name)) malformed(header.line, `column "${name}" appears twice`);
    index.set(name, i);
  }
  const missing = REQUIRED_COLUMNS.filter((c) => !index.has(c));
  if (missing.length > 0) malformed(header.line, `the header lacks ${missing.join(', ')}; it must name ${REQUIRED_COLUMNS.join(',')}`);

  const issues: FieldIssue[] = [];
  const rows: AdvertiserRow[] = [];
  const seen = new Map<string, number>();
  for (const { line, fields } of records) {
    if (issues.length >= MAX_ISSUES) break;
    const get = (c: (typeof REQUIRED_COLUMNS)[number]) => (fields[index.get(c) as number] ?? '').trim();
    const bad = (column: string, message: string) => issues.push({ path: `line ${line}.${column}`, message: `line ${line}: ${column} ${message}` });
    const txid = get('txid');
    const clickid = get('clickid');
    const currency = get('currency').toUpperCase();
    const status = get('status').toLowerCase();
    const time = parseTime(get('time'));
    const before = issues.length;
    if (!isTxid(txid)) bad('txid', TXID_RULE);
    else if (seen.has(txid)) bad('txid', `repeats the txid of line ${seen.get(txid)}`);
    if (clickid !== '' && !CLICK_ID.test(clickid)) bad('clickid', 'must be empty or 1-64 URL-safe characters');
    if (!isCurrency(currency)) bad('currency', 'must be an ISO 4217 code such as USD');
    const money = isCurrency(currency) ? parseMoney(get('payout'), currency) : undefined;
    if (money && !money.ok) bad('payout', money.message);
    if (!STATUSES.has(status)) bad('status', 'must be approved, pending or rejected');
    if (!time) bad('time', 'must be an ISO 8601 time such as 2026-01-31T12:00:00Z');
    seen.set(txid, seen.get(txid) ?? line);
    if (issues.length > before || !money?.ok || !time) continue;
    rows.push({ line, txid, clickid: clickid || null, payout: get('payout'), payoutMinor: money.minor, currency, status: status as AdvertiserRow['status'], time });
  }
  if (issues.length > 0) {
    const first = issues[0] as FieldIssue;
    throw invalidRequest(issues, `The CSV has ${issues.length === MAX_ISSUES ? 'at least ' : ''}${issues.length} invalid field${issues.length === 1 ? '' : 's'}; the first: ${first.message}.`);
  }
  return rows;
}
