import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { Sql } from '../../src/db/database.js';
import { ADMIN, auth } from './engine.js';
import { signedGetUrl } from './postback.js';

/** Helpers for the reconciliation and finance tests: pixels, postbacks, runs, and table snapshots. */

export type RunBody = {
  id: string;
  from: string;
  to: string;
  state: string;
  trigger: string;
  rows: Record<string, number | string>[];
  totals: Record<string, number>;
  rootCauses: Record<string, number>;
};

export async function firePixel(app: FastifyInstance, clickid: string, txid: string, event?: string): Promise<void> {
  const res = await app.inject({ method: 'GET', url: `/pixel.gif?clickid=${clickid}&txid=${txid}${event ? `&event=${event}` : ''}` });
  if (res.statusCode !== 200) throw new Error(`pixel -> ${res.statusCode}`);
}

export async function sendPostback(app: FastifyInstance, advertiserId: string, whsec: string, query: string, remoteAddress = '192.0.2.1') {
  return app.inject({ method: 'GET', url: signedGetUrl(advertiserId, query, whsec), remoteAddress });
}

/** A window around now wide enough for everything a test just did. */
export function windowNow(): { from: string; to: string } {
  return { from: new Date(Date.now() - 3600_000).toISOString(), to: new Date(Date.now() + 60_000).toISOString() };
}

export async function startRun(app: FastifyInstance, window: { from: string; to: string }, token = ADMIN): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/v1/reconciliations', headers: auth(token), payload: window });
}

export async function reconcile(app: FastifyInstance, window: { from: string; to: string }): Promise<RunBody> {
  const res = await startRun(app, window);
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as RunBody;
}

/** The rows of a run for one offer and publisher, summed over hours. */
export function sumFor(run: RunBody, offerId: string, publisherId: string): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const row of run.rows) {
    if (row.offerId !== offerId || row.publisherId !== publisherId) continue;
    for (const [k, v] of Object.entries(row)) if (typeof v === 'number') sums[k] = (sums[k] ?? 0) + v;
  }
  return sums;
}

/** Every row of the tables a run may change, for "a repeated run changes nothing". */
export async function businessSnapshot(sql: Sql): Promise<Record<string, unknown[]>> {
  const snapshot: Record<string, unknown[]> = {};
  for (const table of ['conversions', 'conversion_status_history', 'deliveries', 'delivery_attempts', 'pixel_events']) {
    snapshot[table] = [...(await sql`select * from ${sql(table)} order by 1`)];
  }
  return snapshot;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CLI runs write report files beside the repository's reports; a test removes those of its own runs. */
export async function removeRunFiles(sql: Sql, dir: string | null): Promise<void> {
  if (!dir) return;
  const runs = await sql<{ id: string }[]>`select id from reconciliation_runs`;
  for (const { id } of runs) {
    await rm(join(dir, `reconciliation-${id}.csv`), { force: true });
    await rm(join(dir, `reconciliation-${id}.html`), { force: true });
  }
}

export type ConversionSeed = {
  advertiserId: string;
  offerId: string;
  publisherId: string;
  txid: string;
  clickId?: string;
  payoutMinor: bigint;
  revenueMinor?: bigint;
  currency: string;
  status?: 'approved' | 'pending' | 'rejected';
  decision?: 'accepted' | 'flagged' | 'rejected';
  reviewState?: 'none' | 'approved' | 'rejected';
  source?: 's2s' | 'pixel';
  createdAt?: Date;
};

let seq = 0;

/** A conversion straight into the table, for reports whose input must be exact. Returns its ID. */
export async function insertConversion(sql: Sql, c: ConversionSeed): Promise<string> {
  seq++;
  const id = `cv_test_${Date.now().toString(36)}_${seq}`;
  await sql`
    insert into conversions (id, advertiser_id, offer_id, publisher_id, click_id, click_created_at, txid, event, status,
                             payout_minor, revenue_minor, currency, decision, score, source, review_state, created_at)
    values (${id}, ${c.advertiserId}, ${c.offerId}, ${c.publisherId}, ${c.clickId ?? `clk_${id}`}, now(), ${c.txid}, 'conversion',
            ${c.status ?? 'approved'}, ${c.payoutMinor.toString()}::bigint, ${(c.revenueMinor ?? c.payoutMinor).toString()}::bigint, ${c.currency}, ${c.decision ?? 'accepted'}, 0, ${c.source ?? 's2s'},
            ${c.reviewState ?? 'none'}, ${(c.createdAt ?? new Date()).toISOString()}::timestamptz)`;
  // The txid key, as the intake writes it: a postback for this txid meets this conversion.
  await sql`insert into conversion_txids (advertiser_id, txid, conversion_id, created_at)
    select advertiser_id, txid, id, created_at from conversions where id = ${id}`;
  return id;
}
