import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDatabaseUnavailable } from '../src/db/database.js';
import type { Engine } from '../src/engine.js';
import type { TestDatabase } from './helpers/db.js';
import { auth, seedCatalog } from './helpers/engine.js';
import { mintClick, uniqueTx, webhookHeaders } from './helpers/postback.js';
import { startProxiedEngine, type ProxiedEngine } from './helpers/proxied-engine.js';
import type { TcpProxy } from './helpers/tcp-proxy.js';

/**
 * CONTRACT §4, 503 row, under load: postbacks keep arriving while PostgreSQL goes away in the middle
 * of their transactions (Standard Webhooks POSTs commit in a transaction with their message ID; capped
 * offers commit in their offer's lane). Connections die under open transactions, and the breaker cuts
 * the rest. The engine must answer every one (200 committed or 503), never crash, and a 200 must be
 * stored exactly once. The process-level crash this guards against is in patches/README.md.
 */

const BUDGET_MS = 1500;
const SLACK_MS = 1500;
const SENDERS = 60;
/** Connections have to die under open transactions; a few rounds make that near certain. */
const ROUNDS = 3;

let env: ProxiedEngine;
let db: TestDatabase;
let proxy: TcpProxy;
let engine: Engine;
let app: FastifyInstance;
let advertiserId: string;
let secret: string;
const clicks: Record<'uncapped' | 'capped', string> = { uncapped: '', capped: '' };
const crashes: unknown[] = [];
const onCrash = (err: unknown) => crashes.push(err);

beforeAll(async () => {
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  env = await startProxiedEngine({ dbDeadlineMs: BUDGET_MS, addressRateLimitPerS: 1_000_000 });
  ({ db, proxy, engine, app } = env);
  const seeded = await seedCatalog(app, { advertiser: { rateLimit: { perS: 1_000_000 } } });
  advertiserId = seeded.advertiser.id;
  secret = seeded.advertiser.secrets[0].secret;
  const capped = await app.inject({
    method: 'POST',
    url: '/v1/offers',
    headers: auth(),
    payload: { advertiserId, name: 'Capped', url: 'https://adv.example/lp?cid={clickid}', payout: '2.50', currency: 'USD', caps: [{ period: 'day', conversions: 1_000_000 }] },
  });
  expect(capped.statusCode).toBe(201);
  clicks.uncapped = await mintClick(app, seeded.offer.id, seeded.publisher.id);
  clicks.capped = await mintClick(app, capped.json().id, seeded.publisher.id);
  await engine.clickWriter.flush();
});

afterAll(async () => {
  await env?.close();
  process.off('uncaughtException', onCrash);
  process.off('unhandledRejection', onCrash);
});

type Answer = { txid: string; status: number; ms: number; duplicate?: boolean };

async function postback(click: string, txid: string): Promise<Answer> {
  const body = JSON.stringify({ clickid: click, txid });
  const started = performance.now();
  const res = await app.inject({ method: 'POST', url: `/postback/${advertiserId}`, headers: webhookHeaders(secret, body), payload: body });
  return { txid, status: res.statusCode, ms: performance.now() - started, duplicate: res.statusCode === 200 ? res.json().duplicate : undefined };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SENDERS senders post new txids back to back through ROUNDS outages and restores. */
async function underLoad(click: string, cut: () => Promise<void> | void): Promise<Answer[]> {
  const answers: Answer[] = [];
  let stop = false;
  const senders = Array.from({ length: SENDERS }, async () => {
    while (!stop) answers.push(await postback(click, uniqueTx()));
  });
  for (let round = 0; round < ROUNDS; round++) {
    await sleep(600);
    await cut();
    await sleep(2000);
    await proxy.restore();
    await sleep(2000);
  }
  stop = true;
  await Promise.all(senders);
  return answers;
}

/** New postbacks until one commits: the breaker's probe got through (loaded CI may take seconds). */
async function untilRecovered(click: string): Promise<void> {
  const giveUp = performance.now() + 20_000;
  while ((await postback(click, uniqueTx())).status !== 200) {
    if (performance.now() > giveUp) throw new Error('the engine did not recover within 20 s of the database coming back');
    await sleep(200);
  }
}

async function retryUntilCommitted(click: string, txid: string): Promise<Answer> {
  const giveUp = performance.now() + 20_000;
  for (;;) {
    const answer = await postback(click, txid);
    if (answer.status !== 503 || performance.now() > giveUp) return answer;
    await sleep(200);
  }
}

async function storedCount(txid: string): Promise<number> {
  const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from conversions where advertiser_id = ${advertiserId} and txid = ${txid}`;
  return row?.n ?? 0;
}

describe('PostgreSQL outage under sustained transactional load', { timeout: 90_000 }, () => {
  const modes = {
    refused: () => proxy.refuse(),
    'black-holed': () => proxy.blackhole(),
  };
  for (const lane of ['uncapped', 'capped'] as const) {
    for (const [mode, cut] of Object.entries(modes)) {
      it(`${lane} offer, ${mode}: every postback answered 200 or 503 in time, no crash, each 200 stored once, each 503 retried into exactly one conversion`, async () => {
        crashes.length = 0;
        const answers = await underLoad(clicks[lane], cut);
        // Nothing thrown, and no rejection left unowned but a PostgreSQL connection error, which the
        // process entry logs and survives (src/ops/stray-rejections.ts); anything else would end it.
        expect(crashes.filter((err) => !isDatabaseUnavailable(err))).toEqual([]);
        const ok = answers.filter((a) => a.status === 200);
        const refused = answers.filter((a) => a.status === 503);
        expect(ok.length + refused.length, JSON.stringify(answers.filter((a) => a.status !== 200 && a.status !== 503).slice(0, 3))).toBe(answers.length);
        // Load before the cut and after the restore committed; the outage itself was answered 503.
        expect(ok.length).toBeGreaterThan(SENDERS);
        expect(refused.length).toBeGreaterThan(0);
        for (const a of refused) expect(a.ms).toBeLessThan(BUDGET_MS + SLACK_MS);
        const sample = [...ok.slice(0, 50), ...ok.slice(-50)];
        for (const a of sample) expect(await storedCount(a.txid), a.txid).toBe(1);
        // The senders retry what got 503 once the database is back (the engine has let a probe through
        // and closed its breaker): each becomes exactly one conversion.
        await untilRecovered(clicks[lane]);
        const retried = refused.slice(0, 60);
        // A retry may still meet a connection the outage left silent (503 again); the sender retries
        // until it gets its 200, as the contract asks, and the txid is stored once whatever it took.
        const retries = await Promise.all(retried.map((a) => retryUntilCommitted(clicks[lane], a.txid)));
        for (const r of retries) expect(r.status).toBe(200);
        for (const r of retries) expect(await storedCount(r.txid)).toBe(1);
      });
    }
  }
});
