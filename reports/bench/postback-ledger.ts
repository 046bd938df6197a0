import type autocannon from 'autocannon';
import type { Sql } from '../../src/db/database.js';
import { sleep } from './processes.js';
import { check, type Check } from './results.js';
import { nowS, signedPostbackPath } from './signing.js';

/**
 * The advertiser's books during a postback run: every txid sent, what the engine answered, and
 * which conversion ID it got. Requests cut off when a run ends (or answered 503) are retried
 * afterwards, as a real advertiser must, so the final comparison with PostgreSQL is exact:
 * one conversion row per txid that got a 200, none lost, none doubled.
 */

const PAYOUT = '2.50';
/** A pre-signed replay is re-signed once its timestamp is this old (tolerance is 300 s by default). */
const RESIGN_AFTER_S = 120;
const SETTLE_ATTEMPTS = 5;

type Ctx = { txid?: string };

export class PostbackLedger {
  /** txid → conversion ID of its first 200 (duplicate: false). */
  readonly accepted = new Map<string, string>();
  /** Sent (or built to be sent) without a final answer yet: txid → click ID. */
  readonly pending = new Map<string, string>();
  /** txid → click ID of every accepted txid, kept so replays can be re-signed. */
  private readonly clickOf = new Map<string, string>();
  readonly decisions: Record<string, number> = {};
  /** Non-200 answers, keyed `status code`. */
  readonly unexpected: Record<string, number> = {};
  acceptedTwice = 0;
  duplicateAnswers = 0;
  /** Replays answered with another conversion ID than the original, or as a new conversion. */
  replayMismatches = 0;
  retried = 0;
  private next = 0;
  private readonly runTag = Date.now().toString(36);

  constructor(
    readonly advertiserId: string,
    private readonly key: Buffer,
    private readonly clicks: string[],
  ) {}

  /** Conversions sent on a click ID that an earlier one already used (the pool ran out). */
  clicksReused = 0;

  /** Click IDs not yet used by a distinct postback. */
  get clicksLeft(): number {
    return Math.max(0, this.clicks.length - this.next);
  }

  addClicks(ids: string[]): void {
    this.clicks.push(...ids);
  }

  sign(txid: string, clickid: string, ts = nowS()): string {
    return signedPostbackPath(this.advertiserId, this.key, { clickid, txid, payout: PAYOUT }, ts);
  }

  /** Each request a new txid (so a new conversion) with a fresh signature. */
  distinctRequests(): autocannon.Request[] {
    return [
      {
        method: 'GET',
        setupRequest: (req, context) => {
          const n = this.next++;
          const txid = `b${this.runTag}-${n}`;
          if (n >= this.clicks.length) this.clicksReused++;
          const clickid = this.clicks[n % this.clicks.length] as string;
          this.pending.set(txid, clickid);
          (context as Ctx).txid = txid;
          req.path = this.sign(txid, clickid);
          return req;
        },
        onResponse: (status, body, context) => this.record((context as Ctx).txid, status, body, false),
      },
    ];
  }

  /** Byte-identical replays of already accepted txids, as an advertiser's retry sends them. */
  replayRequests(): autocannon.Request[] {
    const pool = [...this.accepted.keys()].map((txid) => ({ txid, clickid: this.clickOf.get(txid) ?? '', path: '', ts: 0 }));
    if (pool.length === 0) throw new Error('no accepted txids to replay');
    let i = 0;
    return [
      {
        method: 'GET',
        setupRequest: (req, context) => {
          const entry = pool[i++ % pool.length] as (typeof pool)[number];
          const now = nowS();
          if (now - entry.ts > RESIGN_AFTER_S) {
            entry.ts = now;
            entry.path = this.sign(entry.txid, entry.clickid, now);
          }
          (context as Ctx).txid = entry.txid;
          req.path = entry.path;
          return req;
        },
        onResponse: (status, body, context) => this.record((context as Ctx).txid, status, body, true),
      },
    ];
  }

  record(txid: string | undefined, status: number, body: string, replay: boolean): void {
    if (txid === undefined) return;
    if (status === 200) {
      const clickid = this.pending.get(txid);
      this.pending.delete(txid);
      const id = /"conversionId"\s*:\s*"([^"]+)"/.exec(body)?.[1] ?? '';
      const duplicate = /"duplicate"\s*:\s*true/.test(body);
      const original = this.accepted.get(txid);
      if (duplicate) {
        this.duplicateAnswers++;
        if (original !== undefined && original !== id) this.replayMismatches++;
        if (original === undefined) this.acceptOnce(txid, id, clickid, body); // its first answer was lost in flight
        return;
      }
      if (replay) this.replayMismatches++;
      if (original !== undefined) {
        this.acceptedTwice++;
        return;
      }
      this.acceptOnce(txid, id, clickid, body);
      return;
    }
    const code = /"code"\s*:\s*"([^"]+)"/.exec(body)?.[1];
    const key = code ? `${status} ${code}` : String(status);
    this.unexpected[key] = (this.unexpected[key] ?? 0) + 1;
    // A 503 means "not durable, retry": it stays pending. Anything else is final.
    if (status !== 503) this.pending.delete(txid);
  }

  private acceptOnce(txid: string, id: string, clickid: string | undefined, body: string): void {
    this.accepted.set(txid, id);
    if (clickid !== undefined) this.clickOf.set(txid, clickid);
    const decision = /"decision"\s*:\s*"([^"]+)"/.exec(body)?.[1] ?? 'unknown';
    this.decisions[decision] = (this.decisions[decision] ?? 0) + 1;
  }

  /** Sends one postback outside autocannon (pre-flight and retries); returns the status and body. */
  async sendOne(baseUrl: string, txid: string, clickid: string): Promise<{ status: number; body: string }> {
    this.pending.set(txid, clickid);
    const res = await fetch(baseUrl + this.sign(txid, clickid), { redirect: 'manual', signal: AbortSignal.timeout(15_000) });
    const body = await res.text();
    this.record(txid, res.status, body, false);
    return { status: res.status, body };
  }

  newTxid(label: string): string {
    return `b${this.runTag}-${label}`;
  }

  /** Retries every txid still pending (cut off in flight, or 503) until it has a final answer. */
  async settle(baseUrl: string): Promise<number> {
    let count = 0;
    for (let attempt = 0; attempt < SETTLE_ATTEMPTS && this.pending.size > 0; attempt++) {
      if (attempt > 0) await sleep(500 * attempt);
      for (const [txid, clickid] of [...this.pending]) {
        count++;
        this.retried++;
        try {
          await this.sendOne(baseUrl, txid, clickid);
        } catch {
          // a network error leaves it pending for the next attempt
        }
      }
    }
    return count;
  }

  async conversionsInDatabase(sql: Sql): Promise<number> {
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from conversions where advertiser_id = ${this.advertiserId}`;
    return row?.n ?? 0;
  }

  /** The proof that nothing was lost or doubled: PostgreSQL against the 200 answers. */
  async verify(sql: Sql, label: string): Promise<Check[]> {
    const rows = await this.conversionsInDatabase(sql);
    const ids = [...this.accepted.values()];
    const [found] = await sql<{ n: number }[]>`select count(*)::int as n from conversions where id = any(${ids}::text[])`;
    const distinctIds = new Set(ids).size;
    return [
      check(`${label}: requests without a final answer after retries`, 0, this.pending.size, this.pending.size === 0),
      check(`${label}: conversions in PostgreSQL = distinct 200 answers`, distinctIds, rows, rows === distinctIds && distinctIds === ids.length),
      check(`${label}: conversion IDs answered with 200 found in PostgreSQL`, ids.length, found?.n ?? 0, (found?.n ?? 0) === ids.length),
      check(`${label}: txids answered as new twice`, 0, this.acceptedTwice, this.acceptedTwice === 0),
    ];
  }
}
