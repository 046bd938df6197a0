import { createHmac } from 'node:crypto';

/**
 * The advertiser's side of a signed GET postback (CONTRACT §4), written independently of the
 * engine's verifier so the bench also checks that the two agree:
 * `sig = hex(HMAC-SHA256(key, "<path>?<query up to but excluding &sig=>"))`, `sig` last.
 */

/** The HMAC key is the base64-decoded part of `whsec_<base64>`. */
export function webhookKey(secret: string): Buffer {
  if (!secret.startsWith('whsec_')) throw new Error('expected a whsec_ secret');
  return Buffer.from(secret.slice('whsec_'.length), 'base64');
}

/** Fields left out are not sent: without `payout` the engine prices the postback (event goal or offer). */
export type PostbackFields = { clickid: string; txid: string; payout?: string; event?: string; amount?: string };

export function signedPostbackPath(advertiserId: string, key: Buffer, fields: PostbackFields, tsS: number): string {
  const optional = (['payout', 'event', 'amount'] as const)
    .flatMap((k) => (fields[k] === undefined ? [] : [`&${k}=${encodeURIComponent(fields[k])}`]))
    .join('');
  const signed =
    `/postback/${encodeURIComponent(advertiserId)}` +
    `?clickid=${encodeURIComponent(fields.clickid)}&txid=${encodeURIComponent(fields.txid)}` +
    `${optional}&ts=${tsS}`;
  return `${signed}&sig=${createHmac('sha256', key).update(signed, 'utf8').digest('hex')}`;
}

export const nowS = () => Math.floor(Date.now() / 1000);
