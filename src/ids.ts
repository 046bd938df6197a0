import { randomBuffer } from './random-pool.js';

/** Prefixed random IDs: readable in logs and support tickets, unguessable, URL-safe, well under 64 chars. */
export type IdPrefix = 'adv' | 'sec' | 'pub' | 'off' | 'tok' | 'cv' | 'dlv' | 'rec';

export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomBuffer(12).toString('base64url')}`;
}

/** Opaque external IDs (txid, webhook-id...) are at most 64 URL-safe characters. */
export const OPAQUE_ID = /^[A-Za-z0-9._~-]{1,64}$/;
