import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { stringify } from 'csv-stringify';
import type { Sql } from '../db/database.js';
import { spreadsheetCell } from '../http/spreadsheet-cell.js';
import { type CatalogNames, listConversions, type ListQuery, MAX_PAGE } from './query.js';

/**
 * GET /v1/conversions?format=csv: every conversion the filters select, newest first, as RFC 4180 CSV.
 * Read page by page with the list's own keyset cursor and streamed, so an export of a month holds one
 * page in memory, not the month. The first page is read before anything is sent: a database that is
 * down answers with the contract's error, not a cut-off 200.
 */

export const CONVERSION_CSV_COLUMNS = [
  'id', 'createdAt', 'txid', 'clickid', 'advertiserId', 'advertiserName', 'offerId', 'offerName', 'publisherId', 'publisherName',
  'event', 'decision', 'score', 'reasons', 'status', 'payout', 'revenue', 'margin', 'amount', 'currency', 'source', 'reviewState', 'updatedAt',
] as const;

type Filters = Omit<ListQuery, 'format' | 'limit' | 'cursor'>;
type Item = Awaited<ReturnType<typeof listConversions>>['items'][number];

export async function conversionsCsv(sql: Sql, names: CatalogNames, filters: Filters, pageSize = MAX_PAGE): Promise<Readable> {
  const first = await listConversions(sql, names, { ...filters, limit: pageSize });
  async function* items(): AsyncGenerator<Item> {
    let page = first;
    for (;;) {
      yield* page.items;
      if (!page.nextCursor) return;
      page = await listConversions(sql, names, { ...filters, limit: pageSize, cursor: page.nextCursor });
    }
  }
  const csv = stringify({
    header: true,
    columns: [...CONVERSION_CSV_COLUMNS],
    record_delimiter: 'windows',
    cast: { object: (v) => (Array.isArray(v) ? v.join(' ') : JSON.stringify(v)), string: spreadsheetCell },
  });
  // A failed later page ends the download early; the error is the stream's, which fastify logs.
  pipeline(Readable.from(items()), csv).catch(() => undefined);
  return csv;
}
