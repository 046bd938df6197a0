import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AdvertiserSecret } from '../catalog/catalog.js';

/**
 * HMAC authentication of postbacks.
 * POST: Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64> ...`
 * over `${id}.${timestamp}.${rawBody}`), interoperable with the official libraries, but stricter on
 * the id (no dot: `a.b` + `c` and `a` + `b.c` would sign the same bytes) and on the timestamp (digits).
 * GET: `...&ts=<unix>&sig=<hex>` with the signature over the path and query exactly as sent, up to `&sig=`.
 * Every active secret is tried, so a rotation overlaps without dropping traffic.
 */

export type HmacOutcome = { ok: true; secretId: string; timestamp: number } | { ok: false; code: 'bad_signature' | 'stale_signature'; message: string };

const WEBHOOK_ID = /^[A-Za-z0-9_-]{1,64}$/;
const TIMESTAMP = /^\d{1,12}$/;
const MAX_SIGNATURES = 10;

export function checkTimestamp(ts: number, nowS: number, toleranceS: number): boolean {
  return Math.abs(nowS - ts) <= toleranceS;
}

export function verifyStandardWebhook(
  headers: { id: string | undefined; timestamp: string | undefined; signature: string | undefined },
  rawBody: Buffer,
  secrets: readonly AdvertiserSecret[],
  nowS: number,
  toleranceS: number,
): HmacOutcome {
  const { id, timestamp, signature } = headers;
  if (id === undefined || timestamp === undefined || signature === undefined) {
    return { ok: false, code: 'bad_signature', message: 'webhook-id, webhook-timestamp and webhook-signature are all required' };
  }
  if (!WEBHOOK_ID.test(id)) return { ok: false, code: 'bad_signature', message: 'webhook-id must be 1-64 characters of A-Z a-z 0-9 _ -' };
  if (!TIMESTAMP.test(timestamp)) return { ok: false, code: 'bad_signature', message: 'webhook-timestamp must be decimal digits' };
  const ts = Number(timestamp);
  if (!checkTimestamp(ts, nowS, toleranceS)) return { ok: false, code: 'stale_signature', message: 'webhook-timestamp is outside the accepted window' };

  const candidates = signature
    .split(' ')
    .filter((s) => s.length > 0)
    .slice(0, MAX_SIGNATURES)
    .flatMap((s) => {
      const comma = s.indexOf(',');
      if (comma === -1 || s.slice(0, comma) !== 'v1') return [];
      const decoded = Buffer.from(s.slice(comma + 1), 'base64');
      return decoded.length === 32 ? [decoded] : [];
    });
  if (candidates.length === 0) return { ok: false, code: 'bad_signature', message: 'no v1 signature of the right length' };

  const prefix = Buffer.from(`${id}.${timestamp}.`, 'utf8');
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret.key).update(prefix).update(rawBody).digest();
    for (const candidate of candidates) {
      if (timingSafeEqual(expected, candidate)) return { ok: true, secretId: secret.id, timestamp: ts };
    }
  }
  return { ok: false, code: 'bad_signature', message: 'no signature matches an active secret' };
}

const GET_SIGNATURE = /^(.*[?&]ts=(\d{1,12}))&sig=([^&]*)$/s;

/** `rawUrl` is the request target exactly as received: percent-encoding intact, nothing reordered. */
export function verifyQuerySignature(rawUrl: string, secrets: readonly AdvertiserSecret[], nowS: number, toleranceS: number): HmacOutcome {
  const match = GET_SIGNATURE.exec(rawUrl);
  if (!match) return { ok: false, code: 'bad_signature', message: 'the query must end with &ts=<unix seconds>&sig=<hex>' };
  const [, signed = '', tsText = '', sigText = ''] = match;
  if (!/^[0-9a-f]{64}$/.test(sigText)) return { ok: false, code: 'bad_signature', message: 'sig must be 64 lowercase hex characters' };
  const ts = Number(tsText);
  if (!checkTimestamp(ts, nowS, toleranceS)) return { ok: false, code: 'stale_signature', message: 'ts is outside the accepted window' };
  const given = Buffer.from(sigText, 'hex');
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret.key).update(signed, 'utf8').digest();
    if (timingSafeEqual(expected, given)) return { ok: true, secretId: secret.id, timestamp: ts };
  }
  return { ok: false, code: 'bad_signature', message: 'sig does not match an active secret' };
}

/** For senders and tests: the GET signature of a path-and-query (without `&sig=`). */
export function signQuery(pathAndQuery: string, key: Buffer): string {
  return createHmac('sha256', key).update(pathAndQuery, 'utf8').digest('hex');
}
