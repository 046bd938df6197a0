import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../src/catalog/catalog.js';
import { mintClickId, verifyClickId, type ClickClaims } from '../src/click/click-id.js';
import { checkClick } from '../src/click/click-validity.js';
import { connect, type Sql } from '../src/db/database.js';
import { parseCidrList } from '../src/net/cidr.js';
import { countRows, post } from './helpers/admin.js';
import { seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';

const TRUSTED = parseCidrList(['10.0.0.0/8', 'fd00::/8']);
if (!TRUSTED.ok) throw new Error(TRUSTED.error);

const LANDING = 'https://adv.example/lp?cid={clickid}&o={offer_id}&p={publisher_id}&s1={sub1}&s2={sub2}&s3={sub3}&s4={sub4}&s5={sub5}';

let t: TestEngine;
let seeded: Awaited<ReturnType<typeof seedCatalog>>;
beforeAll(async () => {
  t = await startTestEngine({ trustProxy: TRUSTED.value });
  seeded = await seedCatalog(t.app, { offer: { url: LANDING, clickTtlS: 3600 } });
});
afterAll(async () => {
  await t?.close();
});

type InjectExtra = { headers?: Record<string, string>; remoteAddress?: string };

async function click(query: string, extra: InjectExtra = {}, offerId = seeded.offer.id) {
  return t.app.inject({ method: 'GET', url: `/c/${offerId}?${query}`, ...extra });
}

function clickIdOf(location: string | undefined): string {
  const match = /[?&]cid=([A-Za-z0-9_-]+)/.exec(location ?? '');
  if (!match) throw new Error(`no click ID in ${location}`);
  return match[1] as string;
}

async function storedClick(id: string) {
  await t.engine.clickWriter.flush();
  const [row] = await t.sql`
    select id, created_at, offer_id, publisher_id, advertiser_id, sub1, sub2, sub3, sub4, sub5, host(ip) as ip, user_agent
    from clicks where id = ${id}`;
  return row;
}

describe('click redirect: happy path', () => {
  it('302s to the offer URL with the click ID and every macro substituted and URL-encoded', async () => {
    const res = await click(`pub=${seeded.publisher.id}&sub1=${encodeURIComponent('a b&c=d')}&sub2=${encodeURIComponent('ü/?#')}&sub4=x`, {
      headers: { 'user-agent': 'Mozilla/5.0 (test)' },
    });
    expect(res.statusCode, res.body).toBe(302);
    expect(res.headers['cache-control']).toBe('no-store');
    const location = res.headers.location as string;
    const clickId = clickIdOf(location);
    expect(location).toBe(
      `https://adv.example/lp?cid=${clickId}&o=${seeded.offer.id}&p=${seeded.publisher.id}` +
        `&s1=a%20b%26c%3Dd&s2=%C3%BC%2F%3F%23&s3=&s4=x&s5=`,
    );
    expect(clickId.length).toBeLessThanOrEqual(64);
    const claims = verifyClickId(clickId, t.engine.catalog.clickKeys);
    expect(claims.ok).toBe(true);
  });

  it('records the click with offer, publisher, advertiser, subs, IP, user agent and the time inside its ID', async () => {
    const res = await click(`pub=${seeded.publisher.id}&sub1=s-one&sub2=s-two&sub3=s-three&sub4=s-four&sub5=s-five`, {
      headers: { 'user-agent': 'Mozilla/5.0 (Recorded)' },
      remoteAddress: '198.51.100.77',
    });
    expect(res.statusCode).toBe(302);
    const clickId = clickIdOf(res.headers.location as string);
    const verified = verifyClickId(clickId, t.engine.catalog.clickKeys);
    if (!verified.ok) throw new Error(verified.reason);

    const row = await storedClick(clickId);
    expect(row).toEqual({
      id: clickId,
      created_at: verified.claims.createdAt,
      offer_id: seeded.offer.id,
      publisher_id: seeded.publisher.id,
      advertiser_id: seeded.advertiser.id,
      sub1: 's-one',
      sub2: 's-two',
      sub3: 's-three',
      sub4: 's-four',
      sub5: 's-five',
      ip: '198.51.100.77',
      user_agent: 'Mozilla/5.0 (Recorded)',
    });
    expect(verified.claims).toMatchObject({
      advertiserSeq: t.engine.catalog.advertisers.get(seeded.advertiser.id)?.seq,
      offerSeq: t.engine.catalog.offers.get(seeded.offer.id)?.seq,
      publisherSeq: t.engine.catalog.publishers.get(seeded.publisher.id)?.seq,
    });
  });

  it('stores absent subs and user agent as null, caps a long user agent, and an IPv4-mapped peer as IPv4', async () => {
    const res = await click(`pub=${seeded.publisher.id}`, { remoteAddress: '::ffff:203.0.113.5', headers: { 'user-agent': 'U'.repeat(2000) } });
    expect(res.statusCode).toBe(302);
    const row = await storedClick(clickIdOf(res.headers.location as string));
    expect([row?.sub1, row?.sub2, row?.sub3, row?.sub4, row?.sub5]).toEqual([null, null, null, null, null]);
    expect(row?.ip).toBe('203.0.113.5');
    expect(row?.user_agent).toBe('U'.repeat(512));

    const bare = await t.app.inject({ method: 'GET', url: `/c/${seeded.offer.id}?pub=${seeded.publisher.id}`, headers: { 'user-agent': '' } });
    expect((await storedClick(clickIdOf(bare.headers.location as string)))?.user_agent).toBeNull();
  });

  it('mints a different click ID for every click', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 20; i++) ids.add(clickIdOf((await click(`pub=${seeded.publisher.id}`)).headers.location as string));
    expect(ids.size).toBe(20);
  });
});

describe('click redirect: source address', () => {
  const ipFor = async (extra: InjectExtra) => {
    const res = await click(`pub=${seeded.publisher.id}`, extra);
    expect(res.statusCode).toBe(302);
    return (await storedClick(clickIdOf(res.headers.location as string)))?.ip;
  };

  it('believes X-Forwarded-For only from a TRUST_PROXY peer, taking the right-most hop that is not ours', async () => {
    expect(await ipFor({ remoteAddress: '10.1.2.3', headers: { 'x-forwarded-for': '198.51.100.23' } })).toBe('198.51.100.23');
    expect(await ipFor({ remoteAddress: '10.1.2.3', headers: { 'x-forwarded-for': '6.6.6.6, 198.51.100.23, 10.9.9.9' } })).toBe('198.51.100.23');
    expect(await ipFor({ remoteAddress: 'fd00::1', headers: { 'x-forwarded-for': '2001:db8::42' } })).toBe('2001:db8::42');
  });

  it('ignores X-Forwarded-For from any other peer', async () => {
    expect(await ipFor({ remoteAddress: '203.0.113.9', headers: { 'x-forwarded-for': '198.51.100.23' } })).toBe('203.0.113.9');
    expect(await ipFor({ remoteAddress: '203.0.113.9', headers: { 'x-forwarded-for': '10.1.2.3' } })).toBe('203.0.113.9');
  });

  it('records no address rather than a guessed one when a trusted hop is not a canonical address', async () => {
    expect(await ipFor({ remoteAddress: '10.1.2.3', headers: { 'x-forwarded-for': '127.1' } })).toBeNull();
    expect(await ipFor({ remoteAddress: '10.1.2.3', headers: { 'x-forwarded-for': '198.51.100.23, 0x7f.0.0.1' } })).toBeNull();
  });

  it('never believes X-Forwarded-For when TRUST_PROXY is unset', async () => {
    const plain = await startTestEngine();
    try {
      const { offer, publisher } = await seedCatalog(plain.app);
      const res = await plain.app.inject({
        method: 'GET',
        url: `/c/${offer.id}?pub=${publisher.id}`,
        remoteAddress: '10.1.2.3',
        headers: { 'x-forwarded-for': '198.51.100.23' },
      });
      expect(res.statusCode).toBe(302);
      await plain.engine.clickWriter.flush();
      const [row] = await plain.sql`select host(ip) as ip from clicks where id = ${clickIdOf(res.headers.location as string)}`;
      expect(row?.ip).toBe('10.1.2.3');
    } finally {
      await plain.close();
    }
  });
});

describe('click redirect: errors', () => {
  it('unknown offer → 404 unknown_offer, unknown publisher → 404 unknown_publisher; no redirect, no click', async () => {
    await t.engine.clickWriter.flush();
    const before = await countRows(t.sql, 'clicks');
    const cases = [
      { url: `/c/off_missing?pub=${seeded.publisher.id}`, code: 'unknown_offer' },
      { url: `/c/off_missing?pub=pub_missing`, code: 'unknown_offer' },
      { url: `/c/${seeded.offer.id}?pub=pub_missing`, code: 'unknown_publisher' },
      // A publisher ID spelled like an offer ID must not be confused with one.
      { url: `/c/${seeded.offer.id}?pub=${seeded.offer.id}`, code: 'unknown_publisher' },
    ];
    for (const c of cases) {
      const res = await t.app.inject({ method: 'GET', url: c.url });
      expect(res.statusCode, c.url).toBe(404);
      expect(res.headers.location).toBeUndefined();
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.json()).toEqual({ error: { code: c.code, message: expect.any(String), requestId: res.headers['x-request-id'] } });
    }
    await t.engine.clickWriter.flush();
    expect(await countRows(t.sql, 'clicks')).toBe(before);
  });

  it('a missing publisher or an invalid sub is a 400 naming the field; no redirect, no click', async () => {
    await t.engine.clickWriter.flush();
    const before = await countRows(t.sql, 'clicks');
    const cases: Array<[string, string]> = [
      ['', 'pub'],
      [`pub=${seeded.publisher.id}&sub1=${'x'.repeat(256)}`, 'sub1'],
      [`pub=${seeded.publisher.id}&sub3=${encodeURIComponent('line\nbreak')}`, 'sub3'],
      [`pub=${seeded.publisher.id}&sub5=a&sub5=b`, 'sub5'],
    ];
    for (const [query, path] of cases) {
      const res = await click(query);
      expect(res.statusCode, query).toBe(400);
      expect(res.headers.location).toBeUndefined();
      expect(res.json().error).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ path })] });
    }
    await t.engine.clickWriter.flush();
    expect(await countRows(t.sql, 'clicks')).toBe(before);
  });
});

describe('click validity (checkClick)', () => {
  let guardedSql: Sql;
  let pool: Sql;
  let catalog: Catalog;
  let locked = false;
  let queriesWhileLocked = 0;
  let other: { id: string };
  let shortOffer: { id: string };

  beforeAll(async () => {
    other = (await post(t.app, '/v1/advertisers', { name: 'Other', auth: ['hmac'] })).json();
    shortOffer = (
      await post(t.app, '/v1/offers', { advertiserId: seeded.advertiser.id, name: 'Short', url: LANDING, payout: '1.00', currency: 'USD', clickTtlS: 60 })
    ).json();
    // A catalog of its own over a pool we can close: once loaded, any query it tried would be counted and would fail.
    pool = connect(t.url, { max: 2 });
    guardedSql = new Proxy(pool, {
      apply(target, thisArg, args) {
        if (locked) {
          queriesWhileLocked++;
          throw new Error('checkClick touched the database');
        }
        return Reflect.apply(target as never, thisArg, args);
      },
    });
    catalog = new Catalog(guardedSql);
    await catalog.load();
    await pool.end({ timeout: 1 });
    locked = true;
  });
  afterAll(async () => {
    locked = false;
    await pool?.end({ timeout: 1 });
  });

  const key = () => {
    const k = catalog.mintingKey;
    if (!k) throw new Error('no minting key');
    return k;
  };
  const seqs = (offerId: string, publisherId = seeded.publisher.id) => {
    const offer = catalog.offers.get(offerId);
    return {
      advertiserSeq: catalog.advertisers.get(offer?.advertiserId ?? '')?.seq ?? 0,
      offerSeq: offer?.seq ?? 0,
      publisherSeq: catalog.publishers.get(publisherId)?.seq ?? 0,
    };
  };
  const redirectedClickId = async (offerId = seeded.offer.id) => clickIdOf((await click(`pub=${seeded.publisher.id}`, {}, offerId)).headers.location as string);

  it('accepts a click minted by the redirect, before its row is even written, with no database access', async () => {
    const clickId = await redirectedClickId();
    const result = checkClick(catalog, clickId, seeded.advertiser.id);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.click.offer.id).toBe(seeded.offer.id);
    expect(result.click.publisher.id).toBe(seeded.publisher.id);
    expect((result.click.claims as ClickClaims).kid).toBe(key().kid);
    expect(queriesWhileLocked).toBe(0);
  });

  it('recognises tampered, truncated, padded and garbage IDs', async () => {
    const clickId = await redirectedClickId();
    const flip = (i: number) => clickId.slice(0, i) + (clickId[i] === 'A' ? 'B' : 'A') + clickId.slice(i + 1);
    // Byte 5 sits inside the click time: a structurally valid ID whose tag no longer matches.
    expect(checkClick(catalog, flip(7), seeded.advertiser.id)).toMatchObject({ ok: false, reason: 'forged' });
    // Inside the tag itself.
    expect(checkClick(catalog, flip(45), seeded.advertiser.id)).toMatchObject({ ok: false, reason: 'forged' });
    for (const bad of [clickId.slice(0, -1), clickId.slice(0, 20), clickId + 'A', `${clickId.slice(0, -1)}=`, '', 'x'.repeat(54), '../../etc/passwd']) {
      const result = checkClick(catalog, bad, seeded.advertiser.id);
      expect(result.ok, bad).toBe(false);
      expect(['malformed', 'forged']).toContain((result as { reason: string }).reason);
    }
    expect(checkClick(catalog, clickId.slice(0, -1), seeded.advertiser.id)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(queriesWhileLocked).toBe(0);
  });

  it('calls an ID signed with a foreign key forged, even with real offer and publisher numbers', () => {
    const foreign = mintClickId({ kid: key().kid, secret: randomBytes(32) }, seqs(seeded.offer.id));
    expect(checkClick(catalog, foreign, seeded.advertiser.id)).toMatchObject({ ok: false, reason: 'forged' });
    const unknownKid = mintClickId({ kid: (key().kid + 1) % 256, secret: key().secret }, seqs(seeded.offer.id));
    expect(checkClick(catalog, unknownKid, seeded.advertiser.id)).toMatchObject({ ok: false, reason: 'forged' });
    expect(queriesWhileLocked).toBe(0);
  });

  it('calls a genuine click of another advertiser wrong_advertiser', async () => {
    const clickId = await redirectedClickId();
    expect(checkClick(catalog, clickId, other.id)).toMatchObject({ ok: false, reason: 'wrong_advertiser' });
    expect(checkClick(catalog, clickId, 'adv_missing')).toMatchObject({ ok: false, reason: 'wrong_advertiser' });
    expect(queriesWhileLocked).toBe(0);
  });

  it('calls a genuine ID naming an offer or publisher that does not exist unknown', () => {
    const ghostOffer = mintClickId(key(), { ...seqs(seeded.offer.id), offerSeq: 999_999 });
    expect(checkClick(catalog, ghostOffer, seeded.advertiser.id)).toMatchObject({ ok: false, reason: 'unknown' });
    const ghostPublisher = mintClickId(key(), { ...seqs(seeded.offer.id), publisherSeq: 999_999 });
    expect(checkClick(catalog, ghostPublisher, seeded.advertiser.id)).toMatchObject({ ok: false, reason: 'unknown' });
    expect(queriesWhileLocked).toBe(0);
  });

  it('expires a click after its offer’s TTL and refuses one dated in the future', async () => {
    const clickId = await redirectedClickId(shortOffer.id);
    const verified = verifyClickId(clickId, catalog.clickKeys);
    if (!verified.ok) throw new Error(verified.reason);
    const minted = verified.claims.createdAt.getTime();
    expect(checkClick(catalog, clickId, seeded.advertiser.id, new Date(minted + 59_000)).ok).toBe(true);
    expect(checkClick(catalog, clickId, seeded.advertiser.id, new Date(minted + 61_000))).toMatchObject({ ok: false, reason: 'expired' });

    const old = mintClickId(key(), seqs(shortOffer.id), new Date(Date.now() - 120_000));
    expect(checkClick(catalog, old, seeded.advertiser.id)).toMatchObject({ ok: false, reason: 'expired' });
    const sameAgeLongTtl = mintClickId(key(), seqs(seeded.offer.id), new Date(Date.now() - 120_000));
    expect(checkClick(catalog, sameAgeLongTtl, seeded.advertiser.id).ok).toBe(true);

    const future = mintClickId(key(), seqs(seeded.offer.id), new Date(Date.now() + 3_600_000));
    expect(checkClick(catalog, future, seeded.advertiser.id)).toMatchObject({ ok: false, reason: 'forged' });
    expect(queriesWhileLocked).toBe(0);
  });

  it('the guard around the catalog’s database really is closed (so the zero counts above mean something)', async () => {
    await expect(async () => guardedSql`select 1`).rejects.toThrow('checkClick touched the database');
    expect(queriesWhileLocked).toBe(1);
    queriesWhileLocked = 0;
  });
});
