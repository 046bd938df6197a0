import { randomBuffer } from './random-pool.js';

/** Prefixed random IDs: readable in logs and support tickets, unguessable, URL-safe, well under 64 chars. */
export type IdPrefix = 'adv' | 'sec' | 'pub' | 'off' | 'tok' | 'cv' | 'dlv' | 'rec';

export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomBuffer(12).toString('base64url')}`;
}

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
