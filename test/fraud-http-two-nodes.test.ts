import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freshDatabase } from './helpers/db.js';
import { ADMIN } from './helpers/engine.js';
import { spawnEngine, type EngineProcess } from './helpers/process.js';
import { signedGetUrl } from './helpers/postback.js';
import { freshAddress } from './helpers/review.js';

/**
 * ip_burst counts every node's conversions: two real engine processes sharing one PostgreSQL and one
 * Redis, clicks and postbacks alternating between them. Each node alone sees three conversions from
 * the address, below the limit of five; only the shared count reaches six.
 */

const redisUrl = inject('redisUrl');
const headers = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };

let db: Awaited<ReturnType<typeof freshDatabase>>;
let nodes: EngineProcess[] = [];
let adv: { id: string; secrets: { secret: string }[] };
let pub: { id: string };
let offer: { id: string };

async function api(node: EngineProcess, method: string, path: string, body?: object) {
  const res = await fetch(`${node.url}${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
  if (res.status >= 300) throw new Error(`${method} ${path} -> ${res.status} ${await res.text()}`);
  return res.json() as Promise<Record<string, any>>;
}

/** A click through `node`'s /c from `ip` (the engine believes X-Forwarded-For from 127.0.0.1 here). */
async function click(node: EngineProcess, ip: string): Promise<string> {
  const res = await fetch(`${node.url}/c/${offer.id}?pub=${pub.id}`, { redirect: 'manual', headers: { 'x-forwarded-for': ip, 'user-agent': 'Mozilla/5.0 (Linux; Android 14; Pixel 8)' } });
  if (res.status !== 302) throw new Error(`click -> ${res.status} ${await res.text()}`);
  return new URL(res.headers.get('location') as string).searchParams.get('cid') as string;
}

describe.skipIf(!redisUrl)('ip_burst across two engine processes sharing Redis', () => {
  beforeAll(async () => {
    db = await freshDatabase();
    const env = { DATABASE_URL: db.url, REDIS_URL: redisUrl ?? '', ADMIN_TOKEN: ADMIN, TRUST_PROXY: '127.0.0.1' };
    nodes = await Promise.all([spawnEngine(env), spawnEngine(env)]);
    await Promise.all(nodes.map((n) => n.ready()));
    const [a] = nodes as [EngineProcess, EngineProcess];
    adv = (await api(a, 'POST', '/v1/advertisers', { name: 'A', ipAllowlist: [], auth: ['hmac'] })) as typeof adv;
    pub = (await api(a, 'POST', '/v1/publishers', { name: 'P', postbackUrl: 'https://pub.example/pb?c={clickid}' })) as typeof pub;
    // Timing off: these postbacks follow their clicks at once, which is not what is under test.
    offer = (await api(a, 'POST', '/v1/offers', {
      advertiserId: adv.id,
      name: 'O',
      url: 'https://adv.example/?cid={clickid}',
      payout: '2.50',
      currency: 'USD',
      fraud: { rules: { ctit_too_short: { mode: 'off' } } },
    })) as typeof offer;
    // Both nodes know the offer (catalog polling, within 5 s) before the test starts.
    for (const node of nodes) {
      const deadline = Date.now() + 5000;
      while ((await fetch(`${node.url}/c/${offer.id}?pub=${pub.id}`, { redirect: 'manual' })).status !== 302) {
        if (Date.now() > deadline) throw new Error('offer not visible on a node within 5 s');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }, 60_000);

  afterAll(async () => {
    for (const n of nodes) n.kill();
    await Promise.all(nodes.map((n) => n.exited));
    await db?.drop();
  });

  it('the sixth conversion from one address is flagged although each node saw only three', async () => {
    const ip = freshAddress(); // unique: other test files share this Redis
    const answers: { conversionId: string; decision: string; reasons: string[] }[] = [];
    for (let i = 0; i < 6; i++) {
      const node = nodes[i % 2] as EngineProcess;
      const clickid = await click(node, ip);
      const url = signedGetUrl(adv.id, `clickid=${clickid}&txid=tx_${randomBytes(6).toString('hex')}`, (adv.secrets[0] as { secret: string }).secret);
      const res = await fetch(`${node.url}${url}`);
      expect(res.status).toBe(200);
      answers.push((await res.json()) as (typeof answers)[number]);
    }
    expect(answers.map((a) => a.decision)).toEqual(['accepted', 'accepted', 'accepted', 'accepted', 'accepted', 'flagged']);
    expect(answers[5]?.reasons).toEqual(['ip_burst']);

    const detail = await api(nodes[0] as EngineProcess, 'GET', `/v1/conversions/${answers[5]?.conversionId}`);
    expect(detail.evidence.find((e: { code: string }) => e.code === 'ip_burst')).toMatchObject({
      evaluated: true,
      fired: true,
      value: 6,
      threshold: 5,
      window: '3600s',
      scope: `click address ${ip} (all offers)`,
    });
    const rows = await db.sql`select decision, host(user_ip) as user_ip from conversions where id = ${answers[5]?.conversionId as string}`;
    expect(rows).toEqual([{ decision: 'flagged', user_ip: null }]);
    const byNode = await db.sql<{ n: number }[]>`select count(*)::int as n from conversions where offer_id = ${offer.id}`;
    expect(byNode[0]?.n).toBe(6);
  });
});
