import type { Sql } from '../db/database.js';
import { HARD_FRAUD_PUBLISHERS } from './fraud-hard.js';
import { FRAUD_PUBLISHERS } from './fraud-patterns.js';
import { HONEST_PUBLISHERS, OFFERS } from './honest.js';
import { ADVERTISER_SERVER, type Signer } from './http.js';
import type { OfferKey } from './plan.js';

/**
 * The simulated network, created through the admin API like any operator would: one advertiser (its
 * servers in the allowlist, HMAC signing), the three offers with the engine's default fraud settings
 * (the defaults are what is being judged), honest and fraudulent publishers whose postback URLs point
 * at the simulator's receiver. The seqs and the click key are read from the database for the one step
 * that is not HTTP (twin-clicks.ts).
 */

export type Entity = { id: string; seq: number };
export type SimCatalog = {
  signer: Signer;
  advertiser: Entity;
  offers: Record<OfferKey, Entity & { payout: string }>;
  publishers: Record<string, Entity>;
  clickKey: { kid: number; secret: Buffer };
};

type Admin = (path: string, body: object) => Promise<Record<string, unknown>>;

export function adminClient(baseUrl: string, token: string): Admin {
  return async (path, body) => {
    const res = await fetch(`${baseUrl}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status !== 201) throw new Error(`POST ${path} answered ${res.status}: ${text.slice(0, 300)}`);
    return JSON.parse(text) as Record<string, unknown>;
  };
}

export async function createCatalog(admin: Admin, sql: Sql, receiverUrl: string | undefined, runTag: string): Promise<SimCatalog> {
  const adv = await admin('/v1/advertisers', {
    name: `Simulated advertiser ${runTag}`,
    ipAllowlist: [`${ADVERTISER_SERVER}/32`],
    auth: ['hmac'],
    // The simulator sends as fast as the engine answers; the per-advertiser limit is not under test.
    rateLimit: { perS: 1_000_000 },
  });
  const secret = (adv.secrets as { secret: string }[])[0]?.secret as string;
  const offers = {} as SimCatalog['offers'];
  for (const o of OFFERS) {
    const created = await admin('/v1/offers', { advertiserId: adv.id, name: o.name, url: 'https://advertiser.example/lp?cid={clickid}', payout: o.payout, currency: 'USD' });
    offers[o.key] = { id: created.id as string, seq: 0, payout: o.payout };
  }
  const other = await admin('/v1/offers', { advertiserId: adv.id, name: "The network's other traffic", url: 'https://advertiser.example/other?cid={clickid}', payout: '1.00', currency: 'USD' });
  offers.other = { id: other.id as string, seq: 0, payout: '1.00' };
  const publishers: SimCatalog['publishers'] = {};
  const names = [...Array.from({ length: HONEST_PUBLISHERS }, (_, i) => `pub${i}`), ...FRAUD_PUBLISHERS, ...HARD_FRAUD_PUBLISHERS];
  for (const name of names) {
    const postbackUrl = receiverUrl ? `${receiverUrl}/pb?cv={conversion_id}&pub=${name}` : `https://publisher.invalid/pb?cv={conversion_id}&pub=${name}`;
    const created = await admin('/v1/publishers', { name: `${name} ${runTag}`, postbackUrl, method: 'GET' });
    publishers[name] = { id: created.id as string, seq: 0 };
  }

  const seqs = async (table: 'advertisers' | 'offers' | 'publishers', ids: string[]) =>
    new Map((await sql<{ id: string; seq: number }[]>`select id, seq from ${sql(table)} where id = any(${ids}::text[])`).map((r) => [r.id, r.seq]));
  const advSeq = (await seqs('advertisers', [adv.id as string])).get(adv.id as string) ?? 0;
  const offerSeqs = await seqs('offers', Object.values(offers).map((o) => o.id));
  for (const o of Object.values(offers)) o.seq = offerSeqs.get(o.id) ?? 0;
  const pubSeqs = await seqs('publishers', Object.values(publishers).map((p) => p.id));
  for (const p of Object.values(publishers)) p.seq = pubSeqs.get(p.id) ?? 0;

  // The key the engine mints with: the newest one not retired (catalog.ts, mintingKey).
  const [key] = await sql<{ kid: number; secret: Buffer }[]>`select kid, secret from click_keys where retired_at is null order by kid desc limit 1`;
  if (!key) throw new Error('the engine has no click key yet');
  return {
    signer: { advertiserId: adv.id as string, key: Buffer.from(secret.slice('whsec_'.length), 'base64') },
    advertiser: { id: adv.id as string, seq: advSeq },
    offers,
    publishers,
    clickKey: { kid: key.kid, secret: key.secret },
  };
}
