import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freshDatabase } from './helpers/db.js';
import { ADMIN } from './helpers/engine.js';
import { spawnEngine, type EngineProcess } from './helpers/process.js';
import { signedGetUrl } from './helpers/postback.js';

/** Two real engine processes sharing one PostgreSQL and one Redis: every promise holds across them. */

const redisUrl = inject('redisUrl');
const headers = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };

let db: Awaited<ReturnType<typeof freshDatabase>>;
let a: EngineProcess;
let b: EngineProcess;
let advId: string;
let whsec: string;
let clickid: string;

async function api(node: EngineProcess, path: string, body: object) {
  const res = await fetch(`${node.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  if (res.status !== 201) throw new Error(`${path} -> ${res.status} ${await res.text()}`);
  return res.json() as Promise<Record<string, any>>;
}

describe.skipIf(!redisUrl)('two engine processes', () => {
  beforeAll(async () => {
    db = await freshDatabase();
    const env = { DATABASE_URL: db.url, REDIS_URL: redisUrl ?? '', ADMIN_TOKEN: ADMIN, ADDRESS_RATE_LIMIT_PER_S: '1000000' };
    [a, b] = await Promise.all([spawnEngine(env), spawnEngine(env)]);
    await Promise.all([a.ready(), b.ready()]);
    const adv = await api(a, '/v1/advertisers', { name: 'A', ipAllowlist: [], auth: ['hmac'], rateLimit: { perS: 1_000_000 } });
    const pub = await api(a, '/v1/publishers', { name: 'P', postbackUrl: 'https://pub.example/pb?c={clickid}' });
    const offer = await api(a, '/v1/offers', { advertiserId: adv.id, name: 'O', url: 'https://adv.example/?cid={clickid}', payout: '2.50', currency: 'USD' });
    advId = adv.id;
    whsec = adv.secrets[0].secret;
    // Node B learns about the offer through catalog polling, within the contract's 5 s.
    const deadline = Date.now() + 5000;
    let location: string | null = null;
    while (!location && Date.now() < deadline) {
      const res = await fetch(`${b.url}/c/${offer.id}?pub=${pub.id}`, { redirect: 'manual' });
      if (res.status === 302) location = res.headers.get('location');
      else await new Promise((r) => setTimeout(r, 100));
    }
    expect(location).not.toBeNull();
    clickid = new URL(location as string).searchParams.get('cid') as string;
  }, 60_000);

  afterAll(async () => {
    a?.kill();
    b?.kill();
    await db?.drop();
  });

  const send = (node: EngineProcess, txid: string) => fetch(`${node.url}${signedGetUrl(advId, `clickid=${clickid}&txid=${txid}`, whsec)}`);

  it('200 identical postbacks split across both nodes make one conversion', async () => {
    const txid = `tx_${randomBytes(6).toString('hex')}`;
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => send(i % 2 ? a : b, txid)));
    const bodies = await Promise.all(answers.map((r) => r.json() as Promise<{ conversionId: string; duplicate: boolean }>));
    expect(answers.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    expect(new Set(bodies.map((x) => x.conversionId)).size).toBe(1);
    expect(bodies.filter((x) => !x.duplicate)).toHaveLength(1);
    const [row] = await db.sql`select count(*)::int as n from conversions where txid = ${txid}`;
    expect(row?.n).toBe(1);
  });

  it('1,000 distinct postbacks split across both nodes make exactly 1,000 conversions', async () => {
    const txids = Array.from({ length: 1000 }, () => `tx_${randomBytes(6).toString('hex')}`);
    const answers = await Promise.all(txids.map((txid, i) => send(i % 2 ? a : b, txid)));
    expect(answers.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    const [row] = await db.sql`select count(*)::int as n from conversions where txid = any(${txids})`;
    expect(row?.n).toBe(1000);
  });
});
