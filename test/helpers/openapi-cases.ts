import type { DocRequest } from './openapi.js';

/**
 * Real calls for every documented operation that takes a query or a body: at least one the route
 * accepts and one it refuses with 400, each also judged by the document. `expect` is the route's answer.
 * The refusals are ones a JSON Schema can state (type, enum, range, pattern, required); checks that
 * need the engine (does the advertiser exist, is the decimal valid for the currency) are the route's alone.
 */

export type Seed = { advertiserId: string; whsec: string; publisherId: string; offerId: string; clickId: string; conversionId: string };

export type Case = DocRequest & {
  op: string;
  expect: number;
  /** A URL the case must send exactly (a signed query), instead of one built from params and query. */
  url?: string;
  /** Sent as is (signed bytes); otherwise `body` is serialised. */
  payload?: string;
  headers?: Record<string, string>;
};

export function cases(s: Seed, signGet: (query: string) => string, signPost: (body: string) => Record<string, string>): Case[] {
  const day = '2026-01-05';
  const postBody = (fields: Record<string, unknown>) => {
    const payload = JSON.stringify(fields);
    return { body: fields, payload, headers: signPost(payload), params: { advertiserId: s.advertiserId } };
  };
  const getQuery = (query: string) => ({
    url: signGet(query),
    params: { advertiserId: s.advertiserId },
    query: Object.fromEntries(new URL(signGet(query), 'http://x').searchParams),
  });
  const csv = 'txid,clickid,payout,currency,status,time\r\nadv-tx-1,,2.50,USD,approved,2026-01-05T10:00:00Z\r\n';
  return [
    { op: 'createToken', body: { role: 'analyst', name: 'Reader' }, expect: 201 },
    { op: 'createToken', body: { role: 'root', name: 'Reader' }, expect: 400 },
    { op: 'createAdvertiser', body: { name: 'Second', auth: ['hmac'] }, expect: 201 },
    { op: 'createAdvertiser', body: { name: 'Second', auth: [] }, expect: 400 },
    { op: 'createAdvertiser', body: { name: 'Second', auth: ['hmac'], rateLimit: { perS: 1.5 } }, expect: 400 },
    { op: 'updateAdvertiser', params: { id: s.advertiserId }, body: { name: 'Renamed' }, expect: 200 },
    { op: 'updateAdvertiser', params: { id: s.advertiserId }, body: { rateLimit: { perS: 0 } }, expect: 400 },
    { op: 'createPublisher', body: { name: 'Pub Two', postbackUrl: 'https://pub.example/two?c={clickid}' }, expect: 201 },
    { op: 'createPublisher', body: { name: 'Pub Two', postbackUrl: 'https://pub.example/two', method: 'PUT' }, expect: 400 },
    { op: 'updatePublisher', params: { id: s.publisherId }, body: { onStatusChange: true }, expect: 200 },
    { op: 'updatePublisher', params: { id: s.publisherId }, body: { onStatusChange: 'yes' }, expect: 400 },
    { op: 'createOffer', body: { advertiserId: s.advertiserId, name: 'Two', url: 'https://adv.example/two?c={clickid}', payout: '1.00', currency: 'USD' }, expect: 201 },
    { op: 'createOffer', body: { advertiserId: s.advertiserId, name: 'Two', url: 'https://adv.example/two', payout: '1.00', currency: 'USD', clickTtlS: 0 }, expect: 400 },
    { op: 'createOffer', body: { advertiserId: s.advertiserId, name: 'Two', url: 'https://adv.example/two', payout: 1, currency: 'USD' }, expect: 400 },
    { op: 'updateOffer', params: { id: s.offerId }, body: { name: 'Renamed offer' }, expect: 200 },
    { op: 'updateOffer', params: { id: s.offerId }, body: { dailyCap: 0 }, expect: 400 },
    { op: 'listAudit', query: { entity: 'offer', limit: '5' }, expect: 200 },
    { op: 'listAudit', query: { limit: '0' }, expect: 400 },
    { op: 'listAudit', query: { entity: 'click' }, expect: 400 },

    { op: 'click', params: { offerId: s.offerId }, query: { pub: s.publisherId, sub1: 'a' }, expect: 302 },
    { op: 'click', params: { offerId: s.offerId }, query: { sub1: 'a' }, expect: 400 },
    { op: 'postbackGet', ...getQuery(`clickid=${s.clickId}&txid=get-1&status=pending`), expect: 200 },
    { op: 'postbackGet', ...getQuery(`clickid=${s.clickId}&txid=get-2&status=paid`), expect: 400 },
    { op: 'postbackGet', ...getQuery(`clickid=${s.clickId}`), expect: 400 },
    { op: 'postbackPost', ...postBody({ clickid: s.clickId, txid: 'post-1', event: 'conversion' }), expect: 200 },
    { op: 'postbackPost', ...postBody({ clickid: s.clickId, txid: 'post-2', event: 'not an event' }), expect: 400 },
    { op: 'pixel', query: { clickid: s.clickId, txid: 'px-1' }, expect: 200 },
    // The document requires clickid and txid; the pixel still answers its GIF (CONTRACT §5).
    { op: 'pixel', query: { event: 'conversion' }, expect: 200 },

    { op: 'listConversions', query: { status: 'approved', limit: '10' }, expect: 200 },
    { op: 'listConversions', query: { decision: 'maybe' }, expect: 400 },
    { op: 'reviewConversion', params: { id: s.conversionId }, body: { decision: 'maybe' }, expect: 400 },
    { op: 'reviewConversion', params: { id: s.conversionId }, body: { decision: 'approve', note: 'checked' }, expect: 201 },
    { op: 'reviewQueue', query: { limit: '10' }, expect: 200 },
    { op: 'reviewQueue', query: { limit: '1000000' }, expect: 400 },
    { op: 'listPostbackAttempts', query: { code: 'bad_signature' }, expect: 200 },
    { op: 'listPostbackAttempts', query: { code: 'Bad-Signature' }, expect: 400 },

    { op: 'payoutReport', query: { format: 'csv' }, expect: 200 },
    { op: 'payoutReport', query: { format: 'xml' }, expect: 400 },
    { op: 'advertiserTotals', query: { advertiserId: s.advertiserId }, expect: 200 },
    { op: 'advertiserTotals', query: { format: 'pdf' }, expect: 400 },
    { op: 'compareAdvertiserReport', query: { advertiserId: s.advertiserId }, body: csv, payload: csv, contentType: 'text/csv', expect: 200 },
    { op: 'compareAdvertiserReport', query: {}, body: csv, payload: csv, contentType: 'text/csv', expect: 400 },
    { op: 'runReconciliation', body: { from: `${day}T00:00:00Z`, to: `${day}T01:00:00Z` }, expect: 201 },
    { op: 'runReconciliation', body: { from: `${day}T00:00:00Z` }, expect: 400 },
    { op: 'listReconciliations', query: { limit: '5' }, expect: 200 },
    { op: 'listReconciliations', query: { limit: '0' }, expect: 400 },
    // A run that does not exist: the query passes validation, the run is then not found.
    { op: 'getReconciliation', params: { id: 'run_missing' }, query: { format: 'html' }, expect: 404 },
    { op: 'getReconciliation', params: { id: 'run_missing' }, query: { format: 'pdf' }, expect: 400 },
    { op: 'listRootCauses', params: { id: 'run_missing' }, query: { format: 'json' }, expect: 404 },
    { op: 'listRootCauses', params: { id: 'run_missing' }, query: { format: 'xml' }, expect: 400 },
    { op: 'putFxRates', params: { date: day }, body: { base: 'USD', rates: { EUR: '0.92' } }, expect: 200 },
    { op: 'putFxRates', params: { date: day }, body: { base: 'USD' }, expect: 400 },
    { op: 'listFxRates', query: { limit: '5' }, expect: 200 },
    { op: 'listFxRates', query: { limit: '400' }, expect: 400 },
    { op: 'listDeliveries', query: { state: 'pending' }, expect: 200 },
    { op: 'listDeliveries', query: { state: 'lost' }, expect: 400 },
    { op: 'listFraudRules', query: { offerId: s.offerId }, expect: 200 },
    { op: 'listFraudRules', query: { offerId: '' }, expect: 400 },
    // Both bounds are free text to the document: its refusals (a window ending before it starts) are beyond JSON Schema.
    { op: 'fraudRuleQuality', query: { from: `${day}T00:00:00Z`, to: '2026-01-20T00:00:00Z' }, expect: 200 },
  ];
}
