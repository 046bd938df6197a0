import { randomBuffer } from './random-pool.js';

/** Prefixed random IDs: readable in logs and support tickets, unguessable, URL-safe, well under 64 chars. */
export type IdPrefix = 'adv' | 'sec' | 'pub' | 'off' | 'tok' | 'cv' | 'dlv' | 'rec';

export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomBuffer(12).toString('base64url')}`;
}

/**
 * IDs of rows in day-partitioned tables (conversions, deliveries) carry their row's creation time, so
 * a lookup by ID names one partition instead of probing every one: the prefix, then the time in
 * milliseconds as 6 bytes and 12 random bytes, base64url (24 characters; 27-28 with the prefix).
 * The row's `created_at` is that time (or, minted in SQL by timed_id(), within its millisecond).
 */
export type TimedIdPrefix = 'cv' | 'dlv';

const TIMED_BODY = /^[A-Za-z0-9_-]{24}$/;

export function newTimedId(prefix: TimedIdPrefix, at: Date): string {
  const bytes = Buffer.allocUnsafe(18);
  bytes.writeUIntBE(at.getTime(), 0, 6);
  randomBuffer(12).copy(bytes, 6);
  return `${prefix}_${bytes.toString('base64url')}`;
}

/** The creation time an ID carries; undefined for an ID of the older random-only shape (or not one of ours). */
export function timeOfId(id: string): Date | undefined {
  const body = id.slice(id.indexOf('_') + 1);
  if (!TIMED_BODY.test(body)) return undefined;
  const ms = Buffer.from(body.slice(0, 8), 'base64url').readUIntBE(0, 6);
  return new Date(ms);
}

/**
 * The `[from, to)` range of `created_at` a row with this ID can have, as timestamptz text: the
 * ID's millisecond, or all of time for an older ID. Queries compare the partition key with both
 * bounds, so one cached plan prunes to one partition when the executor starts (or probes each
 * partition's primary key, for an older ID).
 */
export function createdRangeOfId(id: string): [from: string, to: string] {
  const at = timeOfId(id);
  return at ? [at.toISOString(), new Date(at.getTime() + 1).toISOString()] : ANY_TIME;
}

/** Finite (postgres.js serialises timestamptz parameters through Date, which has no infinity), and wider than any row. */
const ANY_TIME: [string, string] = ['0001-01-01T00:00:00.000Z', '9999-12-31T23:59:59.999Z'];

/** Longest txid or claimed click ID kept: advertisers' order numbers are theirs, not ours to shorten. */
export const EXTERNAL_ID_MAX = 255;

/**
 * A txid is the advertiser's own text (contract: 1-255 characters of any Unicode without control
 * characters), stored and compared exactly as sent. Lone UTF-16 surrogates are refused: they are not
 * text PostgreSQL can store, so two different inputs would be stored as the same replacement.
 */
const TXID = /^(?:[^\u0000-\u001f\u007f-\u009f\ud800-\udfff]|[\ud800-\udbff][\udc00-\udfff])+$/;

export function isTxid(value: string): boolean {
  return [...value].length <= EXTERNAL_ID_MAX && TXID.test(value);
}

export const TXID_RULE = `must be 1-${EXTERNAL_ID_MAX} characters of text without control characters`;
