import { z } from 'zod';
import { listQuery as deliveriesQuery } from '../delivery/route.js';
import { qualityQuery } from '../fraud/rule-quality.js';
import { listQuery as fxListQuery, ratesBody } from '../fx/fx-route.js';
import { causesQuery, listQuery as runsQuery, runBody, runQuery } from '../reconcile/route.js';
import { advertiserReportQuery, advertisersQuery, payoutsQuery } from '../reports/route.js';
import type { Operation } from './operation.js';

/** Finance (CONTRACT §7, §8, §10), outbound deliveries (§6) and the fraud rule catalogue. */

const json = { 'application/json': undefined };
const jsonOrCsv = { 'application/json': undefined, 'text/csv': undefined };
const finance = ['finance'] as const;

// src/fraud/route.ts keeps its query schema private; this is the same single optional field.
const fraudRulesQuery = z.object({ offerId: z.string().min(1).max(64).optional() }).strict();

export const financeOperations: Operation[] = [
  {
    method: 'get', path: '/v1/reports/payouts', operationId: 'payoutReport', tag: 'Finance', roles: finance, summary: 'Payouts by publisher',
    description: '`format=csv` answers RFC 4180 CSV; `currency` adds totals converted at the stored daily rates.',
    query: payoutsQuery,
    ok: { 200: { description: 'Rows per publisher and currency, JSON or CSV.', content: jsonOrCsv } },
  },
  {
    method: 'get', path: '/v1/reports/advertisers', operationId: 'advertiserTotals', tag: 'Finance', roles: finance, summary: 'Revenue by advertiser',
    query: advertisersQuery,
    ok: { 200: { description: 'Rows per advertiser and currency, JSON or CSV.', content: jsonOrCsv } },
  },
  {
    method: 'post', path: '/v1/reconciliations/advertiser-report', operationId: 'compareAdvertiserReport', tag: 'Finance', roles: finance,
    summary: "Compare an advertiser's CSV with our records",
    description: 'The body is the advertiser\'s conversion list as CSV (up to 10 MiB); without `from`/`to` the window is the span of its rows.',
    query: advertiserReportQuery,
    body: { content: { 'text/csv': z.string() }, description: 'Columns txid, clickid, payout, currency, status, time (a header row names them).' },
    ok: { 200: { description: 'Matches, mismatches and rows missing on either side, JSON or CSV.', content: jsonOrCsv } },
    errors: ['unknown_advertiser', 'payload_too_large', 'unsupported_media_type'],
  },
  {
    method: 'post', path: '/v1/reconciliations', operationId: 'runReconciliation', tag: 'Finance', roles: finance, summary: 'Run a reconciliation and wait for it',
    description: 'Waits up to 60 s for a run in progress on another node before answering 409.',
    body: { content: { 'application/json': runBody } },
    ok: { 201: { description: 'The finished run with its rows.', content: json } },
    errors: ['conflict', 'internal_error'],
  },
  {
    method: 'get', path: '/v1/reconciliations', operationId: 'listReconciliations', tag: 'Finance', roles: finance, summary: 'List reconciliation runs',
    query: runsQuery,
    ok: { 200: { description: '`{items, nextCursor}`, newest first.', content: json } },
  },
  {
    method: 'get', path: '/v1/reconciliations/:id', operationId: 'getReconciliation', tag: 'Finance', roles: finance, summary: 'Get a reconciliation run',
    description: '`format=csv` downloads its rows (RFC 4180), `format=html` a self-contained page with the S2S-against-pixel chart.',
    query: runQuery,
    ok: { 200: { description: 'The run with its rows, as JSON, CSV or HTML.', content: { ...jsonOrCsv, 'text/html': undefined } } },
    errors: ['not_found'],
  },
  {
    method: 'get', path: '/v1/reconciliations/:id/root-causes', operationId: 'listRootCauses', tag: 'Finance', roles: finance, summary: "A run's root causes",
    description: 'Why each pixel-only conversion has no S2S conversion; `format=csv` answers every one at once.',
    query: causesQuery,
    ok: { 200: { description: '`{items, nextCursor}`, or CSV.', content: jsonOrCsv } },
    errors: ['not_found'],
  },
  {
    method: 'put', path: '/v1/fx-rates/:date', operationId: 'putFxRates', tag: 'Finance', roles: finance, summary: "Store a day's exchange rates",
    description: 'Replaces the day\'s whole set; `rates` maps currency codes to decimal strings against `base`.',
    params: z.object({ date: z.string().meta({ description: 'A calendar day, YYYY-MM-DD (UTC).' }) }),
    body: { content: { 'application/json': ratesBody } },
    ok: { 200: { description: 'The stored set.', content: json } },
    errors: ['unsupported_media_type'],
  },
  {
    method: 'get', path: '/v1/fx-rates/:date', operationId: 'getFxRates', tag: 'Finance', roles: finance, summary: "A day's exchange rates",
    ok: { 200: { description: 'The set stored for that day.', content: json } },
    errors: ['not_found'],
  },
  {
    method: 'get', path: '/v1/fx-rates', operationId: 'listFxRates', tag: 'Finance', roles: finance, summary: 'List stored exchange-rate days',
    query: fxListQuery,
    ok: { 200: { description: '`{items, nextCursor}`, latest day first.', content: json } },
  },

  {
    method: 'get', path: '/v1/deliveries', operationId: 'listDeliveries', tag: 'Deliveries', roles: finance, summary: 'The outbound delivery log',
    query: deliveriesQuery,
    ok: { 200: { description: '`{items, nextCursor}` with each delivery\'s attempts.', content: json } },
  },
  {
    method: 'get', path: '/v1/deliveries/:id', operationId: 'getDelivery', tag: 'Deliveries', roles: finance, summary: 'Get a delivery with its attempts',
    ok: { 200: { description: 'The delivery.', content: json } },
    errors: ['not_found'],
  },
  {
    method: 'post', path: '/v1/deliveries/:id/replay', operationId: 'replayDelivery', tag: 'Deliveries', roles: ['admin'], summary: 'Send a delivery again',
    ok: { 200: { description: 'The delivery, pending again.', content: json } },
    errors: ['not_found', 'conflict'],
  },
  {
    method: 'post', path: '/v1/publishers/:id/enable', operationId: 'enablePublisher', tag: 'Deliveries', roles: ['admin'], summary: "Re-enable a publisher's endpoint",
    description: 'After its endpoint answered 410 Gone; deliveries held for it resume.',
    ok: { 200: { description: 'The publisher with `resumedDeliveries`.', content: json } },
    errors: ['not_found'],
  },

  {
    method: 'get', path: '/v1/fraud/rules', operationId: 'listFraudRules', tag: 'Fraud', roles: ['analyst', 'finance'], summary: 'The fraud rules and their settings',
    description: 'Every rule with its reason code, category, inputs, default mode, points and settings schema; `offerId` adds what applies to that offer.',
    query: fraudRulesQuery,
    ok: { 200: { description: 'Rules, category caps and default thresholds.', content: json } },
    errors: ['not_found'],
  },
  {
    method: 'get', path: '/v1/fraud/rules/quality', operationId: 'fraudRuleQuality', tag: 'Fraud', roles: ['analyst'], summary: 'How often each rule is right',
    description:
      'Per reason code over a window (default the 30 days before `to`): hits, reviews that confirmed or overturned it, and precision with a 95% Wilson interval; `low_precision` marks a rule reviewers overturn too often.',
    query: qualityQuery,
    ok: { 200: { description: '`{from, to, minReviews, lowPrecision, totals, rules}`.', content: json } },
  },
];
