import { createHmac } from 'node:crypto';
import type { Publisher } from '../catalog/catalog.js';
import { formatMoney } from '../money.js';

/**
 * The outbound postback itself: the publisher's URL with macros filled in, the JSON body for POST,
 * and Standard Webhooks headers. Built fresh for every try from the conversion as it is now, with the
 * delivery's ID as `webhook-id` and a new timestamp, so a receiver de-duplicates on the ID while each
 * signature stays inside its tolerance window.
 */

export type ConversionFields = {
  conversionId: string;
  clickId: string;
  txid: string;
  event: string;
  status: string;
  payoutMinor: bigint;
  currency: string;
  offerId: string;
  subs: (string | null)[];
};

export type OutboundRequest = {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body: string;
};

const USER_AGENT = 'postback-engine/0.1 (+https://www.standardwebhooks.com/)';

export function macroValues(c: ConversionFields): Record<string, string> {
  const values: Record<string, string> = {
    clickid: c.clickId,
    txid: c.txid,
    payout: formatMoney(c.payoutMinor, c.currency),
    currency: c.currency,
    event: c.event,
    status: c.status,
    offer_id: c.offerId,
    conversion_id: c.conversionId,
  };
  for (let i = 0; i < 5; i++) values[`sub${i + 1}`] = c.subs[i] ?? '';
  return values;
}

const MACRO = /\{(clickid|txid|payout|currency|event|status|offer_id|conversion_id|sub[1-5])\}/g;

/** Known macros become their URL-encoded value; unknown braces stay as written so a publisher can see its typo. */
export function expandMacros(template: string, values: Record<string, string>): string {
  return template.replace(MACRO, (_, name: string) => encodeURIComponent(values[name] ?? ''));
}

/** The POST body: the conversion's fields, payout as a decimal string (never a float). */
export function outboundBody(c: ConversionFields): string {
  const values = macroValues(c);
  return JSON.stringify({
    conversion_id: c.conversionId,
    clickid: c.clickId,
    txid: c.txid,
    event: c.event,
    status: c.status,
    payout: values.payout,
    currency: c.currency,
    offer_id: c.offerId,
    sub1: c.subs[0] ?? null,
    sub2: c.subs[1] ?? null,
    sub3: c.subs[2] ?? null,
    sub4: c.subs[3] ?? null,
    sub5: c.subs[4] ?? null,
  });
}

/** Standard Webhooks v1: base64 HMAC-SHA256 over `${id}.${timestamp}.${body}`, keyed with the secret's raw bytes. */
export function signWebhook(key: Buffer, webhookId: string, timestampS: number, body: string): string {
  const mac = createHmac('sha256', key).update(`${webhookId}.${timestampS}.${body}`, 'utf8').digest('base64');
  return `v1,${mac}`;
}

export function buildRequest(
  publisher: Pick<Publisher, 'postbackUrl' | 'method' | 'secret'>,
  conversion: ConversionFields,
  webhookId: string,
  nowMs: number = Date.now(),
): OutboundRequest {
  const url = expandMacros(publisher.postbackUrl, macroValues(conversion));
  const body = publisher.method === 'POST' ? outboundBody(conversion) : '';
  const timestampS = Math.floor(nowMs / 1000);
  const headers: Record<string, string> = {
    'user-agent': USER_AGENT,
    'webhook-id': webhookId,
    'webhook-timestamp': String(timestampS),
    'webhook-signature': signWebhook(publisher.secret, webhookId, timestampS, body),
  };
  if (publisher.method === 'POST') headers['content-type'] = 'application/json';
  return { url, method: publisher.method, headers, body };
}
