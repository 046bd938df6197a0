import { createHmac, randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import type { ClickSpec, PostbackSpec } from './plan.js';

/**
 * The simulator's side of the wire, written from the contract rather than from the engine's code:
 * clicks through GET /c behind a trusted proxy (X-Forwarded-For carries the user's address), and
 * advertiser postbacks signed either way CONTRACT §4 allows (GET query HMAC, POST Standard Webhooks).
 * Every request is kept so that an attacker step can replay or tamper with it.
 */

/** The advertiser's server, in its allowlist; postbacks arrive through the same trusted proxy. */
export const ADVERTISER_SERVER = '192.0.2.10';
/** Outside the allowlist: where a forger sends from. */
export const FOREIGN_SERVER = '198.51.100.66';
/** How old a captured postback is when replayed as "stale": beyond the default 300 s tolerance. */
const STALE_S = 900;

export type SentRequest = { method: 'GET' | 'POST'; path: string; headers: Record<string, string>; body?: string };
export type Answer = { status: number; body: Record<string, unknown> };
export type Signer = { advertiserId: string; key: Buffer };

export class SimClient {
  private readonly agent: Agent;

  constructor(private readonly baseUrl: string, connections: number) {
    this.agent = new Agent({ connections, pipelining: 1, keepAliveTimeout: 30_000 });
  }

  async click(offerId: string, publisherId: string, c: ClickSpec): Promise<string> {
    const query = new URLSearchParams({ pub: publisherId, ...(c.sub1 !== null ? { sub1: c.sub1 } : {}) });
    const headers: Record<string, string> = { 'x-forwarded-for': c.ip };
    if (c.ua !== null) headers['user-agent'] = c.ua;
    const res = await request(`${this.baseUrl}/c/${offerId}?${query}`, { dispatcher: this.agent, headers });
    await res.body.dump();
    const location = res.headers.location;
    if (res.statusCode !== 302 || typeof location !== 'string') throw new Error(`click answered ${res.statusCode}`);
    const cid = new URL(location).searchParams.get('cid');
    if (!cid) throw new Error(`click redirect without a click ID: ${location}`);
    return cid;
  }

  async send(req: SentRequest): Promise<Answer> {
    const res = await request(`${this.baseUrl}${req.path}`, { method: req.method, dispatcher: this.agent, headers: req.headers, body: req.body });
    const text = await res.body.text();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { raw: text.slice(0, 200) };
    }
    return { status: res.statusCode, body };
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

export function postbackFields(clickid: string, p: PostbackSpec): [string, string][] {
  const fields: [string, string][] = [['clickid', clickid], ['txid', p.txid], ['event', p.event], ['status', p.status]];
  if (p.payout !== undefined) fields.push(['payout', p.payout]);
  if (p.ip !== undefined) fields.push(['ip', p.ip]);
  if (p.ua !== undefined) fields.push(['ua', p.ua]);
  return fields;
}

/** A signed postback as the advertiser sends it; `tsS` lets an attacker step use an old timestamp. */
export function signedPostback(s: Signer, method: 'GET' | 'POST', fields: [string, string][], opts: { tsS?: number; from?: string } = {}): SentRequest {
  const ts = opts.tsS ?? Math.floor(Date.now() / 1000);
  const from = { 'x-forwarded-for': opts.from ?? ADVERTISER_SERVER };
  if (method === 'GET') {
    const query = fields.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
    const signed = `/postback/${s.advertiserId}?${query}&ts=${ts}`;
    return { method, path: `${signed}&sig=${createHmac('sha256', s.key).update(signed).digest('hex')}`, headers: from };
  }
  const body = JSON.stringify(Object.fromEntries(fields));
  const id = `msg_${randomBytes(9).toString('base64url')}`;
  const signature = createHmac('sha256', s.key).update(`${id}.${ts}.${body}`).digest('base64');
  return {
    method,
    path: `/postback/${s.advertiserId}`,
    headers: { ...from, 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': `v1,${signature}` },
    body,
  };
}

export const staleTs = () => Math.floor(Date.now() / 1000) - STALE_S;

/** The same request with its payout changed and its signature left alone: what a man in the middle can do. */
export function tamperPayout(req: SentRequest, payout: string): SentRequest {
  if (req.method === 'GET') {
    const [path = '', query = ''] = req.path.split('?');
    const params = query.split('&').filter((p) => !p.startsWith('payout='));
    const at = params.findIndex((p) => p.startsWith('ts='));
    params.splice(at < 0 ? params.length : at, 0, `payout=${payout}`);
    return { ...req, path: `${path}?${params.join('&')}` };
  }
  const body = JSON.parse(req.body ?? '{}') as Record<string, string>;
  return { ...req, body: JSON.stringify({ ...body, payout }) };
}

/** An unsigned GET postback: what anyone who learns the endpoint can send. */
export function unsignedPostback(advertiserId: string, fields: [string, string][]): SentRequest {
  const query = fields.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  return { method: 'GET', path: `/postback/${advertiserId}?${query}`, headers: { 'x-forwarded-for': ADVERTISER_SERVER } };
}

/** A click ID in the right shape (version 1, key 1) with random content: never minted, so its tag cannot match. */
export function fabricatedClickId(): string {
  const bytes = randomBytes(40);
  bytes[0] = 1;
  bytes[1] = 1;
  return bytes.toString('base64url');
}
