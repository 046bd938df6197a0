import { invalidRequest } from '../errors.js';

/**
 * The opaque cursor of newest-first lists: the sort key (a microsecond UTC time as PostgreSQL prints
 * it, and the row's id) of the last item shown, base64url JSON. Microseconds, because a millisecond
 * cursor would skip or repeat rows that share a millisecond.
 */

export type Keyset = { at: string; id: string };

export const encodeKeyset = (k: Keyset): string => Buffer.from(JSON.stringify([k.at, k.id])).toString('base64url');

export function decodeKeyset(text: string): Keyset {
  try {
    const parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown;
    if (
      Array.isArray(parsed) &&
      parsed.length === 2 &&
      typeof parsed[0] === 'string' &&
      typeof parsed[1] === 'string' &&
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(parsed[0]) &&
      !Number.isNaN(Date.parse(parsed[0])) &&
      /^[0-9A-Za-z_-]{1,64}$/.test(parsed[1])
    ) {
      return { at: parsed[0], id: parsed[1] };
    }
  } catch {
    // fall through to the 400
  }
  throw invalidRequest([{ path: 'cursor', message: 'is not a cursor returned by this API' }]);
}

/** The select-list expression that yields `Keyset.at` for a timestamptz column. */
export const KEYSET_AT_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"';
