import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintClickId } from '../src/click/click-id.js';
import { parseCidrList } from '../src/net/cidr.js';
import { PIXEL_GIF } from '../src/pixel/route.js';
import { seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { mintClick, uniqueTx } from './helpers/postback.js';

/** CONTRACT §5: always the GIF at once; a valid hit recorded once per (click, event, txid). */

const TRUSTED = parseCidrList(['10.0.0.0/8']);
if (!TRUSTED.ok) throw new Error(TRUSTED.error);

let t: TestEngine;
let seeded: Awaited<ReturnType<typeof seedCatalog>>;

beforeAll(async () => {
  t = await startTestEngine({ trustProxy: TRUSTED.value });
  seeded = await seedCatalog(t.app, { offer: { clickTtlS: 3600 } });
});
afterAll(async () => t?.close());

type Extra = { headers?: Record<string, string>; remoteAddress?: string; method?: 'GET' | 'HEAD' | 'POST'; payload?: string };
const pixel = (query: string, extra: Extra = {}) => t.app.inject({ method: 'GET', url: `/pixel.gif?${query}`, remoteAddress: '198.51.100.20', ...extra });

function expectGif(res: Awaited<ReturnType<typeof pixel>>): void {
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['content-type']).toBe('image/gif');
  expect(res.headers['cache-control']).toContain('no-store');
  expect(res.rawPayload.equals(PIXEL_GIF)).toBe(true);
}

async function rowsFor(clickId: string) {
  await t.engine.pixelWriter.flush();
  return t.sql`select click_id, click_created_at, advertiser_id, offer_id, publisher_id, event, txid, host(ip) as ip, user_agent, created_at
               from pixel_events where click_id = ${clickId} order by id`;
}

const totalPixels = async () => {
  await t.engine.pixelWriter.flush();
  return Number((await t.sql`select count(*)::int as n from pixel_events`)[0]?.n);
};

describe('a valid pixel', () => {
  it('answers the 1×1 GIF before the row is written, then records the click, its catalog and the browser', async () => {
    const clickId = await mintClick(t.app, seeded.offer.id, seeded.publisher.id);
    const txid = uniqueTx();
    const before = new Date();
    const res = await pixel(`clickid=${clickId}&txid=${txid}&event=purchase`, { headers: { 'user-agent': 'Mozilla/5.0 (pixel)' } });
    expectGif(res);
    expect(PIXEL_GIF.subarray(0, 6).toString('latin1')).toBe('GIF89a');
    expect(PIXEL_GIF.readUInt16LE(6)).toBe(1);
    expect(PIXEL_GIF.readUInt16LE(8)).toBe(1);
    // Answered while the row still waits in the batch: the response never waits for PostgreSQL.
    expect(t.engine.pixelWriter.pending).toBe(1);
    const rows = await rowsFor(clickId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      click_id: clickId,
      advertiser_id: seeded.advertiser.id,
      offer_id: seeded.offer.id,
      publisher_id: seeded.publisher.id,
      event: 'purchase',
      txid,
      ip: '198.51.100.20',
      user_agent: 'Mozilla/5.0 (pixel)',
    });
    expect((rows[0]?.created_at as Date).getTime()).toBeGreaterThanOrEqual(before.getTime());
    expect(t.engine.pixelWriter.pending).toBe(0);
  });

  it('is recorded once per (click, event, txid): reloads add nothing, another event or txid adds a row', async () => {
    const clickId = await mintClick(t.app, seeded.offer.id, seeded.publisher.id);
    const txid = uniqueTx();
    for (let i = 0; i < 3; i++) expectGif(await pixel(`clickid=${clickId}&txid=${txid}`));
    await t.engine.pixelWriter.flush();
    expectGif(await pixel(`clickid=${clickId}&txid=${txid}&event=conversion`));
    expectGif(await pixel(`clickid=${clickId}&txid=${txid}&event=upsell`));
    expectGif(await pixel(`clickid=${clickId}&txid=${uniqueTx()}`));
    const rows = await rowsFor(clickId);
    expect(rows.map((r) => [r.event, r.txid === txid])).toEqual([
      ['conversion', true],
      ['upsell', true],
      ['conversion', false],
    ]);
  });

  it('takes the browser address through TRUST_PROXY like a click; an unbelievable forwarding chain records no address', async () => {
    const clickId = await mintClick(t.app, seeded.offer.id, seeded.publisher.id);
    expectGif(await pixel(`clickid=${clickId}&txid=${uniqueTx()}`, { remoteAddress: '10.1.2.3', headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.50' } }));
    expectGif(await pixel(`clickid=${clickId}&txid=${uniqueTx()}`, { remoteAddress: '203.0.113.9', headers: { 'x-forwarded-for': '198.51.100.1' } }));
    expectGif(await pixel(`clickid=${clickId}&txid=${uniqueTx()}`, { remoteAddress: '10.1.2.3', headers: { 'x-forwarded-for': '127.1' } }));
    expect((await rowsFor(clickId)).map((r) => r.ip)).toEqual(['203.0.113.50', '203.0.113.9', null]);
  });
});

describe('whatever the input: the GIF, and nothing recorded', () => {
  it('answers every bad request with the same image and writes no row', async () => {
    const good = await mintClick(t.app, seeded.offer.id, seeded.publisher.id);
    const key = t.engine.catalog.mintingKey;
    if (!key) throw new Error('no minting key');
    const advertiser = t.engine.catalog.advertisers.get(seeded.advertiser.id);
    const offer = t.engine.catalog.offers.get(seeded.offer.id);
    const publisher = t.engine.catalog.publishers.get(seeded.publisher.id);
    if (!advertiser || !offer || !publisher) throw new Error('catalog not loaded');
    const seqs = { advertiserSeq: advertiser.seq, offerSeq: offer.seq, publisherSeq: publisher.seq };
    const expired = mintClickId(key, seqs, new Date(Date.now() - 2 * 3600_000));
    const future = mintClickId(key, seqs, new Date(Date.now() + 3600_000));
    const unknownOffer = mintClickId(key, { ...seqs, offerSeq: 999_999 }, new Date());
    const foreignOwner = mintClickId(key, { ...seqs, advertiserSeq: 999_999 }, new Date());
    const forged = `${good.slice(0, -2)}${good.endsWith('AA') ? 'BA' : 'AA'}`;
    const tx = uniqueTx();
    const before = await totalPixels();
    const cases: [string, Extra?][] = [
      [''],
      [`txid=${tx}`],
      [`clickid=${good}`],
      [`clickid=${good}&txid=`],
      [`clickid=not-a-click-id&txid=${tx}`],
      [`clickid=${forged}&txid=${tx}`],
      [`clickid=${expired}&txid=${tx}`],
      [`clickid=${future}&txid=${tx}`],
      [`clickid=${unknownOffer}&txid=${tx}`],
      [`clickid=${foreignOwner}&txid=${tx}`],
      [`clickid=${good}&clickid=${good}&txid=${tx}`],
      [`clickid=${good}&txid=${tx}&txid=${tx}2`],
      [`clickid=${good}&txid=${'x'.repeat(256)}`],
      [`clickid=${good}&txid=a%0Ab`],
      [`clickid=${good}&txid=a%7Fb`],
      [`clickid=${good}&txid=${tx}&event=${encodeURIComponent('<script>')}`],
      [`clickid=${good}&txid=${tx}&event=${'e'.repeat(65)}`],
      [`clickid=%E0%A4%A&txid=%ZZ`],
      [`clickid[]=${good}&txid=${tx}`],
    ];
    for (const [query, extra] of cases) {
      const res = await pixel(query, extra);
      expectGif(res);
    }
    expect(t.engine.pixelWriter.pending).toBe(0);
    expect(await totalPixels()).toBe(before);
  });

  it('ignores a body sent with the GET: a valid hit is still recorded', async () => {
    const clickId = await mintClick(t.app, seeded.offer.id, seeded.publisher.id);
    const res = await pixel(`clickid=${clickId}&txid=${uniqueTx()}`, { headers: { 'content-type': 'application/xml' }, payload: '<x/>' });
    expectGif(res);
    expect(await rowsFor(clickId)).toHaveLength(1);
  });

  it('HEAD gets the image headers, and a POST is not the pixel', async () => {
    const head = await t.app.inject({ method: 'HEAD', url: '/pixel.gif?clickid=x&txid=y' });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-type']).toBe('image/gif');
    const postRes = await t.app.inject({ method: 'POST', url: '/pixel.gif' });
    expect(postRes.statusCode).toBe(404);
  });
});
