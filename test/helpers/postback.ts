import { createHmac, randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { Webhook } from 'standardwebhooks';

/** Sender-side helpers: what an advertiser's server does to call the engine. */

export function secretKey(whsec: string): Buffer {
  return Buffer.from(whsec.slice('whsec_'.length), 'base64');
}

export async function mintClick(app: FastifyInstance, offerId: string, publisherId: string, opts: { ip?: string; ua?: string; subs?: string } = {}) {
  const res = await app.inject({
    method: 'GET',
    url: `/c/${offerId}?pub=${publisherId}${opts.subs ?? ''}`,
    remoteAddress: opts.ip ?? '198.51.100.7',
    headers: { 'user-agent': opts.ua ?? 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)' },
  });
  if (res.statusCode !== 302) throw new Error(`click -> ${res.statusCode} ${res.body}`);
  return new URL(res.headers.location as string).searchParams.get('cid') as string;
}

export const nowS = () => Math.floor(Date.now() / 1000);

/** `/postback/<adv>?<query>&ts=<ts>&sig=<hex>` signed over the exact text before `&sig=`. */
export function signedGetUrl(advertiserId: string, query: string, whsec: string, ts = nowS()): string {
  const signed = `/postback/${advertiserId}?${query}&ts=${ts}`;
  const sig = createHmac('sha256', secretKey(whsec)).update(signed).digest('hex');
  return `${signed}&sig=${sig}`;
}

/** Standard Webhooks headers made by the official library. */
export function webhookHeaders(whsec: string, body: string, opts: { id?: string; at?: Date } = {}) {
  const id = opts.id ?? `msg_${randomBytes(8).toString('hex')}`;
  const at = opts.at ?? new Date();
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(whsec).sign(id, at, body),
  };
}

export async function es256Keys(kid = 'k1') {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  return { publicKey, privateKey, jwk, kid };
}

export async function signJwt(
  privateKey: CryptoKey,
  claims: Record<string, unknown>,
  opts: { kid?: string; issuer?: string; audience?: string; iat?: number; exp?: number; jti?: string | null; alg?: string } = {},
) {
  const iat = opts.iat ?? nowS();
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: opts.alg ?? 'ES256', kid: opts.kid ?? 'k1' })
    .setIssuer(opts.issuer ?? 'https://adv.example')
    .setAudience(opts.audience ?? 'postback-engine')
    .setIssuedAt(iat);
  if (opts.exp !== undefined) jwt = jwt.setExpirationTime(opts.exp);
  else jwt = jwt.setExpirationTime(iat + 300);
  if (opts.jti !== null) jwt = jwt.setJti(opts.jti ?? `j_${randomBytes(8).toString('hex')}`);
  return jwt.sign(privateKey);
}

export const uniqueTx = () => `tx_${randomBytes(6).toString('hex')}`;
