import { runLoad } from './load.js';

/**
 * The catalog a measured engine needs, created the way an operator would: through the admin HTTP
 * API with the bearer token. Click IDs for postbacks are minted by the engine itself, by following
 * real `/c/:offerId` redirects, because a click ID is self-authenticating and cannot be made up.
 */

export type Catalog = { advertiserId: string; secret: string; publisherId: string; offerId: string };

export async function seedCatalog(baseUrl: string, token: string, advertiser: Record<string, unknown> = {}, offer: Record<string, unknown> = {}): Promise<Catalog> {
  const post = async (path: string, body: object) => {
    const res = await fetch(baseUrl + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status !== 201) throw new Error(`POST ${path} -> ${res.status} ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  };
  const adv = await post('/v1/advertisers', { name: 'Bench Advertiser', ipAllowlist: [], auth: ['hmac'], ...advertiser });
  const pub = await post('/v1/publishers', { name: 'Bench Publisher', postbackUrl: 'https://pub.example/pb?c={clickid}&p={payout}' });
  const created = await post('/v1/offers', {
    advertiserId: adv.id,
    name: 'Bench Offer',
    url: 'https://adv.example/lp?cid={clickid}',
    payout: '2.50',
    currency: 'USD',
    ...offer,
  });
  const secrets = adv.secrets as { secret: string }[] | undefined;
  const secret = secrets?.[0]?.secret;
  if (typeof secret !== 'string') throw new Error('POST /v1/advertisers returned no secret');
  return { advertiserId: String(adv.id), secret, publisherId: String(pub.id), offerId: String(created.id) };
}

export function clickPath(catalog: Catalog, sub1: string): string {
  return `/c/${encodeURIComponent(catalog.offerId)}?pub=${encodeURIComponent(catalog.publisherId)}&sub1=${encodeURIComponent(sub1)}`;
}

/** Follows `count` click redirects and returns the click IDs from their Location headers. */
export async function mintClicks(baseUrl: string, catalog: Catalog, count: number, connections: number): Promise<string[]> {
  const ids: string[] = [];
  await runLoad({
    label: `minting ${count.toLocaleString('en-US')} click IDs`,
    url: baseUrl,
    connections,
    durationS: 0,
    amount: count,
    expectedStatus: 302,
    requests: [
      {
        method: 'GET',
        path: clickPath(catalog, 'bench-mint'),
        onResponse: (status, _body, _context, headers) => {
          if (status !== 302) return;
          const location = headers?.location;
          const text = Array.isArray(location) ? location[0] : location;
          const match = typeof text === 'string' ? /[?&]cid=([^&]+)/.exec(text) : null;
          if (match?.[1]) ids.push(decodeURIComponent(match[1]));
        },
      },
    ],
  });
  if (ids.length === 0) throw new Error('no click IDs were minted (no 302 with a cid in Location)');
  return ids;
}
