import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import type { Sql } from '../../src/db/database.js';
import { ADMIN, auth } from './engine.js';
import { mintClick, signedGetUrl, uniqueTx } from './postback.js';

/** Postbacks through the real intake for the review tests, and the database rows a review touches. */

export type Seeded = { advertiser: { id: string; secrets: { secret: string }[] }; publisher: { id: string }; offer: { id: string } };

/**
 * A user address nobody else in the run uses: ip_burst counts per address across every test sharing a
 * Redis. 73.0.0.0/8 is announced whole by Comcast (AS7922), so no such address is a hosting one.
 */
export const freshAddress = () => `73.${randomBytes(1)[0]}.${randomBytes(1)[0]}.${1 + (randomBytes(1)[0] as number) % 250}`;

/**
 * A click and its signed GET postback, sent at once. With the default rules that is a conversion a
 * few milliseconds after its click: `ctit_too_short`, flagged.
 */
export async function postConversion(
  app: FastifyInstance,
  s: Seeded,
  opts: { payout?: string; extra?: string; click?: { ip?: string; ua?: string; subs?: string }; clickid?: string; txid?: string } = {},
) {
  const clickid = opts.clickid ?? (await mintClick(app, s.offer.id, s.publisher.id, { ip: freshAddress(), ...opts.click }));
  const txid = opts.txid ?? uniqueTx();
  const query = `clickid=${clickid}&txid=${txid}${opts.payout ? `&payout=${opts.payout}` : ''}${opts.extra ?? ''}`;
  const res = await app.inject({ method: 'GET', url: signedGetUrl(s.advertiser.id, query, (s.advertiser.secrets[0] as { secret: string }).secret) });
  expect(res.statusCode, res.body).toBe(200);
  return { clickid, txid, ...(res.json() as { conversionId: string; decision: string; reasons: string[]; duplicate: boolean }) };
}

export function review(app: FastifyInstance, id: string, payload: unknown, token = ADMIN) {
  return app.inject({ method: 'POST', url: `/v1/conversions/${id}/review`, headers: auth(token), payload: payload as object });
}

export async function conversionRow(sql: Sql, id: string) {
  const [row] = await sql`select decision, review_state, score, reasons, status from conversions where id = ${id}`;
  return row;
}

export async function reviewRows(sql: Sql, id: string) {
  return sql`select id, decision, note, reviewer_token_id, reviewer_name, created_at from reviews where conversion_id = ${id} order by id`;
}

export async function deliveryRows(sql: Sql, id: string) {
  return sql`select id, state, deadline_at, created_at from deliveries where conversion_id = ${id} order by created_at`;
}
