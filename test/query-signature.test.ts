import { createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { verifyQuerySignature } from '../src/postback/hmac.js';

/** The GET signature covers the request target byte for byte, up to `&sig=`. */

const secret = { id: 'sec_1', key: randomBytes(32), createdAt: new Date() };
const now = 1_763_700_000;
const sign = (text: string, key = secret.key) => createHmac('sha256', key).update(text).digest('hex');

// Query values as a sender may encode them: percent-escapes, plus signs, unicode escapes.
const value = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9._~-]{0,20}$/),
  fc.string({ maxLength: 20 }).map((s) => encodeURIComponent(s)),
  fc.string({ maxLength: 20 }).map((s) => encodeURIComponent(s).replace(/%20/g, '+')),
);
const params = fc.array(fc.tuple(fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/), value), { maxLength: 6 })
  .filter((ps) => ps.every(([k]) => k !== 'ts' && k !== 'sig'));

describe('GET query signature', () => {
  it('accepts exactly the signed text, whatever its encoding', () => {
    fc.assert(
      fc.property(params, (ps) => {
        const query = ps.map(([k, v]) => `${k}=${v}`).join('&');
        const signed = `/postback/adv_1?${query}${query ? '&' : ''}ts=${now}`;
        const url = `${signed}&sig=${sign(signed)}`;
        expect(verifyQuerySignature(url, [secret], now, 300)).toMatchObject({ ok: true });
      }),
    );
  });

  it('refuses any change to the signed bytes: reordering, re-encoding, a changed byte', () => {
    fc.assert(
      fc.property(params.filter((ps) => ps.length >= 1), fc.nat(), (ps, pick) => {
        const query = ps.map(([k, v]) => `${k}=${v}`).join('&');
        const signed = `/postback/adv_1?${query}&ts=${now}`;
        const sig = sign(signed);
        const i = pick % signed.length;
        const ch = signed[i] === 'a' ? 'b' : 'a';
        const altered = signed.slice(0, i) + ch + signed.slice(i + 1);
        const result = verifyQuerySignature(`${altered}&sig=${sig}`, [secret], now, 300);
        expect(result.ok).toBe(false);
      }),
    );
  });

  it('is keyed: another secret never verifies, and a rotated pair verifies with either', () => {
    const signed = `/postback/adv_1?clickid=X&txid=T1&payout=2.50&ts=${now}`;
    const other = { id: 'sec_2', key: randomBytes(32), createdAt: new Date() };
    expect(verifyQuerySignature(`${signed}&sig=${sign(signed, other.key)}`, [secret], now, 300).ok).toBe(false);
    expect(verifyQuerySignature(`${signed}&sig=${sign(signed, other.key)}`, [secret, other], now, 300)).toMatchObject({ ok: true, secretId: 'sec_2' });
  });

  it('the contract example: the signed text is the path and query up to &sig=', () => {
    const signed = '/postback/adv_1?clickid=X&txid=T1&payout=2.50&ts=1763700000';
    expect(verifyQuerySignature(`${signed}&sig=${sign(signed)}`, [secret], 1763700000, 300).ok).toBe(true);
    expect(verifyQuerySignature(`${signed}&sig=${sign(signed)}&x=1`, [secret], 1763700000, 300).ok).toBe(false);
  });
});
