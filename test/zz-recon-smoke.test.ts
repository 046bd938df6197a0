import { expect, it } from 'vitest';
import { auth, seedCatalog, startTestEngine } from './helpers/engine.js';
import { mintClick, signedGetUrl, uniqueTx } from './helpers/postback.js';

it('smoke', async () => {
  const t = await startTestEngine({ pixelGraceS: 1 });
  try {
    const s = await seedCatalog(t.app);
    const adv = s.advertiser.id, whsec = s.advertiser.secrets[0].secret;
    const c1 = await mintClick(t.app, s.offer.id, s.publisher.id);
    const c2 = await mintClick(t.app, s.offer.id, s.publisher.id);
    const c3 = await mintClick(t.app, s.offer.id, s.publisher.id);
    const tx1 = uniqueTx(), tx2 = uniqueTx(), tx3 = uniqueTx();
    const p1 = await t.app.inject({ url: `/pixel.gif?clickid=${c1}&txid=${tx1}` });
    console.log(p1.statusCode, p1.headers, p1.rawPayload.length);
    await t.app.inject({ url: `/pixel.gif?clickid=${c2}&txid=${tx2}` });
    const pb = await t.app.inject({ url: signedGetUrl(adv, `clickid=${c1}&txid=${tx1}`, whsec), remoteAddress: '192.0.2.1' });
    console.log(pb.json());
    await t.app.inject({ url: signedGetUrl(adv, `clickid=${c3}&txid=${tx3}`, whsec), remoteAddress: '192.0.2.1' });
    await t.engine.pixelWriter.flush();
    await new Promise((r) => setTimeout(r, 1200));
    const from = new Date(Date.now() - 3600_000).toISOString(), to = new Date(Date.now() + 60_000).toISOString();
    const r1 = await t.app.inject({ method: 'POST', url: '/v1/reconciliations', headers: auth(), payload: { from, to } });
    console.log(r1.statusCode, JSON.stringify(r1.json(), null, 1));
    const r2 = await t.app.inject({ method: 'POST', url: '/v1/reconciliations', headers: auth(), payload: { from, to } });
    console.log(r2.statusCode, JSON.stringify(r2.json().totals), JSON.stringify(r2.json().rootCauses));
    console.log(await t.sql`select id, source, decision, reasons, evidence, created_at, score, sub1 from conversions`);
    const pay = await t.app.inject({ url: '/v1/reports/payouts', headers: auth() });
    console.log(pay.body);
    const csv = await t.app.inject({ url: '/v1/reports/payouts?format=csv', headers: auth() });
    console.log(JSON.stringify(csv.body));
    expect(r1.statusCode).toBe(201);
  } finally {
    await t.close();
  }
});
