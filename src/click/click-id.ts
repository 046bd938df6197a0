import { createHmac, timingSafeEqual } from 'node:crypto';
import { randomInto } from '../random-pool.js';

/**
 * Self-authenticating click IDs. The ID carries everything validation needs, and a truncated
 * HMAC-SHA256 tag under a server key, so a forged, altered or foreign ID is recognised with no
 * database lookup, and a conversion for a click whose row was never written (a crash between the
 * redirect and the batched insert) can still be validated.
 *
 * Layout, 40 bytes, base64url without padding = 54 characters:
 *   0      version (1)
 *   1      kid: which click key signed it, so keys can rotate while old IDs stay valid
 *   2..7   click time, milliseconds since the epoch (48 bits, good until year 10889)
 *   8..11  advertiser seq   12..15 offer seq   16..19 publisher seq   (uint32 each)
 *   20..27 random nonce: two clicks in the same millisecond never share an ID
 *   28..39 tag: first 96 bits of HMAC-SHA256(key, bytes 0..27); 2^-96 forgery odds per guess
 */

export const CLICK_ID_VERSION = 1;
const BODY_BYTES = 28;
const TAG_BYTES = 12;
const TOTAL_BYTES = BODY_BYTES + TAG_BYTES;
export const CLICK_ID_LENGTH = Math.ceil((TOTAL_BYTES * 4) / 3);
const CLICK_ID_PATTERN = new RegExp(`^[A-Za-z0-9_-]{${CLICK_ID_LENGTH}}$`);

export type ClickClaims = {
  kid: number;
  createdAt: Date;
  advertiserSeq: number;
  offerSeq: number;
  publisherSeq: number;
};

export type ClickIdCheck =
  | { ok: true; claims: ClickClaims }
  | { ok: false; reason: 'malformed' | 'forged' };

/** One buffer for every mint: minting is synchronous, and a fresh buffer per click showed in the redirect's profile. */
const scratch = Buffer.alloc(TOTAL_BYTES);

export function mintClickId(
  key: { kid: number; secret: Buffer },
  fields: Omit<ClickClaims, 'kid' | 'createdAt'>,
  now: Date = new Date(),
): string {
  const buf = scratch;
  buf.writeUInt8(CLICK_ID_VERSION, 0);
  buf.writeUInt8(key.kid, 1);
  buf.writeUIntBE(now.getTime(), 2, 6);
  buf.writeUInt32BE(fields.advertiserSeq, 8);
  buf.writeUInt32BE(fields.offerSeq, 12);
  buf.writeUInt32BE(fields.publisherSeq, 16);
  randomInto(buf, 20, 8);
  tag(key.secret, buf.subarray(0, BODY_BYTES)).copy(buf, BODY_BYTES);
  return buf.toString('base64url');
}

/** Structure and tag only; whether the offer exists, is this advertiser's, or has expired is the caller's. */
export function verifyClickId(id: string, keys: ReadonlyMap<number, { secret: Buffer }>): ClickIdCheck {
  if (!CLICK_ID_PATTERN.test(id)) return { ok: false, reason: 'malformed' };
  const buf = Buffer.from(id, 'base64url');
  // Non-zero trailing bits would give several spellings of one ID; only the canonical one is valid.
  if (buf.length !== TOTAL_BYTES || buf.toString('base64url') !== id) return { ok: false, reason: 'malformed' };
  if (buf.readUInt8(0) !== CLICK_ID_VERSION) return { ok: false, reason: 'malformed' };
  const kid = buf.readUInt8(1);
  const key = keys.get(kid);
  if (!key) return { ok: false, reason: 'forged' };
  const expected = tag(key.secret, buf.subarray(0, BODY_BYTES));
  if (!timingSafeEqual(expected, buf.subarray(BODY_BYTES))) return { ok: false, reason: 'forged' };
  return {
    ok: true,
    claims: {
      kid,
      createdAt: new Date(buf.readUIntBE(2, 6)),
      advertiserSeq: buf.readUInt32BE(8),
      offerSeq: buf.readUInt32BE(12),
      publisherSeq: buf.readUInt32BE(16),
    },
  };
}

function tag(secret: Buffer, body: Buffer): Buffer {
  return createHmac('sha256', secret).update(body).digest().subarray(0, TAG_BYTES);
}
