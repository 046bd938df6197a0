import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { stringify } from 'csv-stringify/sync';
import { spreadsheetCell } from '../http/spreadsheet-cell.js';
import { z } from 'zod';
import { requireRole } from '../auth/guard.js';
import type { Engine } from '../engine.js';
import { ApiError } from '../errors.js';
import { parse } from '../http/validate.js';
import { parseAdvertiserCsv } from './advertiser-csv.js';
import { defaultWindow, diffAdvertiserReport, SHEET_COLUMNS } from './advertiser-diff.js';
import { bothDates, isoTime } from './iso-time.js';
import { isCurrency } from '../money.js';
import { ADVERTISER_COLUMNS, advertiserReport } from './advertisers.js';
import { CONVERTED_COLUMNS, flattenConverted } from './converted.js';
import { PAYOUT_COLUMNS, payoutReport } from './payouts.js';

/** CONTRACT §8 finance reports: payouts (JSON or CSV) and the advertiser's CSV against our records. */

/** An advertiser's month of conversions is a few megabytes of CSV; the default 16 KiB is for postbacks. */
export const ADVERTISER_REPORT_LIMIT = 10 * 1024 * 1024;

const id = z.string().min(1).max(64);
const CSV_ONLY = "Send the advertiser's conversion list as text/csv.";
const fromBeforeTo = (q: { from?: Date; to?: Date }, ctx: z.RefinementCtx) => {
  const dates = bothDates(q.from, q.to);
  if (dates && dates[0].getTime() > dates[1].getTime()) ctx.addIssue({ code: 'custom', path: ['to'], message: 'must not be before from' });
};

const reportingCurrency = z.string().refine(isCurrency, 'must be an ISO 4217 currency code in capitals, such as USD');
const format = z.enum(['json', 'csv']).default('json');

export const payoutsQuery = z
  .object({ from: isoTime.optional(), to: isoTime.optional(), publisherId: id.optional(), currency: reportingCurrency.optional(), format })
  .strict()
  .superRefine(fromBeforeTo);

export const advertisersQuery = z
  .object({ from: isoTime.optional(), to: isoTime.optional(), advertiserId: id.optional(), currency: reportingCurrency.optional(), format })
  .strict()
  .superRefine(fromBeforeTo);

export const advertiserReportQuery = z
  .object({ advertiserId: id, from: isoTime.optional(), to: isoTime.optional(), format: z.enum(['json', 'csv']).default('json') })
  .strict()
  .superRefine((q, ctx) => {
    fromBeforeTo(q, ctx);
    if ((q.from === undefined) !== (q.to === undefined)) ctx.addIssue({ code: 'custom', path: [q.from ? 'to' : 'from'], message: 'give both from and to, or neither' });
  });

export function registerReportRoutes(app: FastifyInstance, engine: Engine): void {
  const finance = requireRole(engine.tokens, 'finance');

  app.get('/v1/reports/payouts', { onRequest: finance }, async (request, reply) => {
    const q = parse(payoutsQuery, request.query);
    const report = await payoutReport(engine.sql, engine.catalog, q);
    if (q.format === 'csv') {
      return sendCsv(reply, 'payouts.csv', report.rows.map(flattenConverted), q.currency ? [...PAYOUT_COLUMNS, ...CONVERTED_COLUMNS] : PAYOUT_COLUMNS);
    }
    return { from: q.from?.toISOString() ?? null, to: q.to?.toISOString() ?? null, publisherId: q.publisherId ?? null, currency: q.currency ?? null, ...report };
  });

  app.get('/v1/reports/advertisers', { onRequest: finance }, async (request, reply) => {
    const q = parse(advertisersQuery, request.query);
    const report = await advertiserReport(engine.sql, engine.catalog, q);
    if (q.format === 'csv') {
      return sendCsv(reply, 'advertisers.csv', report.rows.map(flattenConverted), q.currency ? [...ADVERTISER_COLUMNS, ...CONVERTED_COLUMNS] : ADVERTISER_COLUMNS);
    }
    return { from: q.from?.toISOString() ?? null, to: q.to?.toISOString() ?? null, advertiserId: q.advertiserId ?? null, currency: q.currency ?? null, ...report };
  });

  app.post(
    '/v1/reconciliations/advertiser-report',
    {
      onRequest: finance,
      bodyLimit: ADVERTISER_REPORT_LIMIT,
      errorHandler: (err: FastifyError, _request, _reply) => {
        // The app's handler speaks of the 16 KiB default and JSON bodies; this route has its own.
        if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') throw new ApiError('payload_too_large', 'The CSV is larger than 10 MiB; split it by date.');
        if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') throw new ApiError('unsupported_media_type', CSV_ONLY);
        throw err;
      },
    },
    async (request, reply) => {
      const q = parse(advertiserReportQuery, request.query);
      if (!Buffer.isBuffer(request.body)) {
        throw new ApiError('unsupported_media_type', CSV_ONLY);
      }
      if (!engine.catalog.advertisers.has(q.advertiserId)) {
        const [row] = await engine.sql`select 1 from advertisers where id = ${q.advertiserId}`;
        if (!row) throw new ApiError('unknown_advertiser');
      }
      const rows = parseAdvertiserCsv(request.body);
      const window = q.from && q.to ? { from: q.from, to: q.to } : defaultWindow(rows);
      const { report, sheet } = await diffAdvertiserReport(engine.sql, q.advertiserId, rows, window);
      if (q.format === 'csv') {
        return sendCsv(reply, 'advertiser-report.csv', sheet, SHEET_COLUMNS);
      }
      return report;
    },
  );
}

/** A CSV download: CRLF (RFC 4180, what spreadsheets expect), formula-looking cells escaped, as these files get opened in Excel. */
function sendCsv(reply: FastifyReply, fileName: string, rows: object[], columns: readonly string[]) {
  return reply
    .header('content-type', 'text/csv; charset=utf-8; header=present')
    .header('content-disposition', `attachment; filename="${fileName}"`)
    .send(stringify(rows, { header: true, columns: [...columns], record_delimiter: 'windows', cast: { string: spreadsheetCell } }));
}
