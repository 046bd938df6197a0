import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CLICK_ID_LENGTH, mintClickId, verifyClickId } from '../src/click/click-id.js';

const key1 = { kid: 1, secret: randomBytes(32) };
const key2 = { kid: 2, secret: randomBytes(32) };
const keys = new Map([[1, key1], [2, key2]]);
const fields = { advertiserSeq: 7, offerSeq: 42, publisherSeq: 9 };

describe('self-authenticating click IDs', () => {
  it('round-trip their claims and are URL-safe and at most 64 characters', () => {
    const now = new Date('2026-11-21T12:00:00.123Z');
    const id = mintClickId(key1, fields, now);
    expect(id).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(id.length).toBe(CLICK_ID_LENGTH);
    expect(id.length).toBeLessThanOrEqual(64);
    const check = verifyClickId(id, keys);
    expect(check).toEqual({ ok: true, claims: { kid: 1, createdAt: now, ...fields } });
  });

  it('never repeat, even in the same millisecond', () => {
    const now = new Date();
    const ids = new Set(Array.from({ length: 1000 }, () => mintClickId(key1, fields, now)));
    expect(ids.size).toBe(1000);
  });

  it('recognise every single-character alteration as forged or malformed', () => {
    const id = mintClickId(key1, fields);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    for (let i = 0; i < id.length; i++) {
      const replacement = alphabet[(alphabet.indexOf(id[i] as string) + 1) % alphabet.length];
      const altered = id.slice(0, i) + replacement + id.slice(i + 1);
      const check = verifyClickId(altered, keys);
      expect(check.ok, `position ${i}`).toBe(false);
    }
  });

  it('call a truncated, padded or non-base64url ID malformed', () => {
    const id = mintClickId(key1, fields);
    expect(verifyClickId(id.slice(0, -1), keys)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyClickId(id + 'A', keys)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyClickId(id.slice(0, -1) + '=', keys)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyClickId('', keys)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyClickId('not a click id', keys)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('call an ID signed by a foreign key (another engine, or a guessed key) forged', () => {
    const foreign = mintClickId({ kid: 1, secret: randomBytes(32) }, fields);
    expect(verifyClickId(foreign, keys)).toEqual({ ok: false, reason: 'forged' });
    const unknownKid = mintClickId({ kid: 9, secret: randomBytes(32) }, fields);
    expect(verifyClickId(unknownKid, keys)).toEqual({ ok: false, reason: 'forged' });
  });

  it('keep IDs minted under an older key valid after rotation, until that key is retired', () => {
    const old = mintClickId(key1, fields);
    const fresh = mintClickId(key2, fields);
    expect(verifyClickId(old, keys).ok).toBe(true);
    expect(verifyClickId(fresh, keys).ok).toBe(true);
    expect(verifyClickId(old, new Map([[2, key2]]))).toEqual({ ok: false, reason: 'forged' });
  });
});
