import { randomBytes, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
// The engine's own signers: the intake verifies with signQuery's rule, and outbound deliveries sign with signWebhook.
import { signWebhook } from '../delivery/message.js';
import { signQuery } from './hmac.js';
import { JWT_AUDIENCE } from './jwt.js';

/**
 * What an advertiser's server sends: a postback signed by one of the three methods of contract §4,
 * as a plain request description, so the same object can be sent with fetch or printed as curl.
 */

/** The postback fields in the order they are sent; undefined ones are left out (not sent empty). */
export const POSTBACK_FIELDS = ['clickid', 'txid', 'event', 'status', 'payout', 'revenue', 'amount', 'currency', 'ip', 'ua'] as const;
export type PostbackField = (typeof POSTBACK_FIELDS)[number];
export type PostbackValues = Partial<Record<PostbackField, string>>;

export type JwtSigner = { key: KeyObject; alg: string; kid: string | undefined; issuer: string; ttlS: number };

export type Signing =
  | { kind: 'hmac'; key: Buffer; webhookId?: string }
  | { kind: 'jwt'; signer: JwtSigner; jti?: string };

export type SignedRequest = { method: 'GET' | 'POST'; url: string; headers: Record<string, string>; body: string | undefined };

export async function signedPostback(opts: {
  engineUrl: string;
  advertiserId: string;
  method: 'GET' | 'POST';
  fields: PostbackValues;
  signing: Signing;
  nowS: number;
}): Promise<SignedRequest> {
  const path = `/postback/${encodeURIComponent(opts.advertiserId)}`;
  const base = opts.engineUrl.replace(/\/+$/, '');
  const present = POSTBACK_FIELDS.flatMap((name) => (opts.fields[name] === undefined ? [] : [[name, opts.fields[name] as string] as const]));

  if (opts.signing.kind === 'jwt') {
    const token = await signPostbackJwt(opts.signing.signer, Object.fromEntries(present), opts.nowS, opts.signing.jti);
    if (opts.method === 'GET') return { method: 'GET', url: `${base}${path}?token=${token}`, headers: {}, body: undefined };
    return { method: 'POST', url: `${base}${path}`, headers: { authorization: `Bearer ${token}` }, body: undefined };
  }

  if (opts.method === 'GET') {
    // The signature covers the path and query exactly as sent, so the URL is built once and signed as is.
    const query = present.map(([name, value]) => `${name}=${encodeURIComponent(value)}`).join('&');
    const signed = `${path}?${query}${query ? '&' : ''}ts=${opts.nowS}`;
    return { method: 'GET', url: `${base}${signed}&sig=${signQuery(signed, opts.signing.key)}`, headers: {}, body: undefined };
  }
  const body = JSON.stringify(Object.fromEntries(present));
  const id = opts.signing.webhookId ?? `msg_${randomBytes(12).toString('hex')}`;
  return {
    method: 'POST',
    url: `${base}${path}`,
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(opts.nowS),
      'webhook-signature': signWebhook(opts.signing.key, id, opts.nowS, body),
    },
    body,
  };
}

/** Claims per contract §4: iss, aud, iat, exp, jti, and the postback fields. */
export function signPostbackJwt(signer: JwtSigner, fields: Record<string, string>, nowS: number, jti?: string): Promise<string> {
  return new SignJWT(fields)
    .setProtectedHeader(signer.kid === undefined ? { alg: signer.alg, typ: 'JWT' } : { alg: signer.alg, kid: signer.kid, typ: 'JWT' })
    .setIssuer(signer.issuer)
    .setAudience(JWT_AUDIENCE)
    .setIssuedAt(nowS)
    .setExpirationTime(nowS + signer.ttlS)
    .setJti(jti ?? `jti_${randomBytes(12).toString('hex')}`)
    .sign(signer.key);
}

/** A one-line curl command that sends the request as built (POSIX shell quoting). */
export function toCurl(request: SignedRequest): string {
  const parts = ['curl', '-sS', '-i'];
  if (request.method === 'POST') parts.push('-X', 'POST');
  for (const [name, value] of Object.entries(request.headers)) parts.push('-H', shellQuote(`${name}: ${value}`));
  if (request.body !== undefined) parts.push('--data-raw', shellQuote(request.body));
  parts.push(shellQuote(request.url));
  return parts.join(' ');
}

export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}
