import type autocannon from 'autocannon';
import type { Sql } from '../../src/db/database.js';
import { sleep } from './processes.js';
import { check, type Check } from './results.js';
import { nowS, signedPostbackPath } from './signing.js';

/**
 * One offer's postbacks in the caps bench, as its advertiser keeps the books: each postback a new txid
 * on its own click, alternately `event=registration` and `event=sale&amount=40.00`, never with a
 * payout (so the offer prices it: its goals, or its own figures when it has none). Afterwards the
 * books are compared with PostgreSQL: one conversion per 200, priced as the offer says, and for a
 * capped offer, cap usage that counted every one of them (the proof that the capped path ran).
 */

export const SALE_AMOUNT = '40.00';
export type EventName = 'registration' | 'sale';
/** Minor units an offer is expected to price each event at: [payout, revenue]. */
export type ExpectedPrices = Record<EventName, [bigint, bigint]>;

type Ctx = { txid?: string };
type Sent = { clickid: string; event: EventName };

const SETTLE_ATTEMPTS = 5;

export class OfferStream {
  /** txid → what it was sent with, for every txid answered 200 as new. */
  readonly accepted = new Map<string, Sent & { conversionId: string }>();
  /** Sent without a final answer yet (a 503 means "retry"). */
  readonly pending = new Map<string, Sent>();
  readonly decisions: Record<string, number> = {};
  readonly unexpected: Record<string, number> = {};
  acceptedTwice = 0;
  retried = 0;
  /** performance.now() of the first request and the last answer since `requests()` was last called. */
  firstSentAt = 0;
  lastAnswerAt = 0;
  private next = 0;
  private readonly clicks: string[] = [];

  constructor(
    readonly offerId: string,
    private readonly advertiserId: string,
    private readonly key: Buffer,
    private readonly tag: string,
  ) {}

  get clicksLeft(): number {
    return this.clicks.length - this.next;
  }

  addClicks(ids: string[]): void {
    this.clicks.push(...ids);
  }

  private path(txid: string, sent: Sent): string {
    const fields = sent.event === 'sale' ? { amount: SALE_AMOUNT } : {};
    return signedPostbackPath(this.advertiserId, this.key, { clickid: sent.clickid, txid, event: sent.event, ...fields }, nowS());
  }

  /** Each request a new txid on a click no other postback used, freshly signed. */
  requests(): autocannon.Request[] {
    this.firstSentAt = 0;
    this.lastAnswerAt = 0;
    return [
      {
        method: 'GET',
        setupRequest: (req, context) => {
          if (this.firstSentAt === 0) this.firstSentAt = performance.now();
          const n = this.next++;
          const clickid = this.clicks[n];
          if (clickid === undefined) throw new Error(`offer ${this.offerId}: out of click IDs after ${n} postbacks`);
          const txid = `${this.tag}-${n}`;
          const sent: Sent = { clickid, event: n % 2 === 0 ? 'registration' : 'sale' };
          this.pending.set(txid, sent);
          (context as Ctx).txid = txid;
          req.path = this.path(txid, sent);
          return req;
        },
        onResponse: (status, body, context) => {
          this.lastAnswerAt = performance.now();
          this.record((context as Ctx).txid, status, body);
        },
      },
    ];
  }

  private record(txid: string | undefined, status: number, body: string): void {
    if (txid === undefined) return;
    const sent = this.pending.get(txid);
    if (status === 200 && sent) {
      this.pending.delete(txid);
      if (this.accepted.has(txid)) {
        if (!/"duplicate"\s*:\s*true/.test(body)) this.acceptedTwice++;
        return;
      }
      const conversionId = /"conversionId"\s*:\s*"([^"]+)"/.exec(body)?.[1] ?? '';
      this.accepted.set(txid, { ...sent, conversionId });
      const decision = /"decision"\s*:\s*"([^"]+)"/.exec(body)?.[1] ?? 'unknown';
      this.decisions[decision] = (this.decisions[decision] ?? 0) + 1;
      return;
    }
    const code = /"code"\s*:\s*"([^"]+)"/.exec(body)?.[1];
    const key = code ? `${status} ${code}` : String(status);
    this.unexpected[key] = (this.unexpected[key] ?? 0) + 1;
    if (status !== 503) this.pending.delete(txid);
  }

  /** Resends what is still pending (503, or cut off in flight) until it has a final answer. */
  async settle(baseUrl: string): Promise<void> {
    for (let attempt = 0; attempt < SETTLE_ATTEMPTS && this.pending.size > 0; attempt++) {
      if (attempt > 0) await sleep(500 * attempt);
      for (const [txid, sent] of [...this.pending]) {
        this.retried++;
        try {
          const res = await fetch(baseUrl + this.path(txid, sent), { signal: AbortSignal.timeout(15_000) });
          this.record(txid, res.status, await res.text());
        } catch {
          // a network error leaves it pending for the next attempt
        }
      }
    }
  }

  /** The books against PostgreSQL; `capped` also checks the offer's cap usage rows. */
  async verify(sql: Sql, label: string, prices: ExpectedPrices, capped: boolean): Promise<Check[]> {
    const expected = { payout: 0n, revenue: 0n };
    for (const { event } of this.accepted.values()) {
      expected.payout += prices[event][0];
      expected.revenue += prices[event][1];
    }
    const ids = [...this.accepted.values()].map((a) => a.conversionId);
    const [row] = await sql<{ n: number; found: number; payout: string; revenue: string; accepted: number }[]>`
      select count(*)::int as n,
             count(*) filter (where id = any(${ids}::text[]))::int as found,
             coalesce(sum(payout_minor), 0)::text as payout,
             coalesce(sum(revenue_minor), 0)::text as revenue,
             count(*) filter (where decision = 'accepted')::int as accepted
      from conversions where offer_id = ${this.offerId}`;
    const n = row?.n ?? 0;
    const checks = [
      check(`${label}: postbacks without a final answer`, 0, this.pending.size, this.pending.size === 0),
      check(`${label}: answers other than 200`, '{}', JSON.stringify(this.unexpected), Object.keys(this.unexpected).length === 0),
      check(`${label}: conversions in PostgreSQL = 200 answers (all accepted, IDs as answered)`, this.accepted.size, `${n} (${row?.accepted ?? 0} accepted, ${row?.found ?? 0} IDs found)`, n === this.accepted.size && row?.found === n && row?.accepted === n && this.acceptedTwice === 0),
      check(`${label}: payout, revenue priced by the offer (minor units)`, `${expected.payout}, ${expected.revenue}`, `${row?.payout}, ${row?.revenue}`, row?.payout === String(expected.payout) && row?.revenue === String(expected.revenue)),
    ];
    if (capped) {
      const usage = await sql<{ cap_key: string; conversions: string; payout_minor: string }[]>`
        select cap_key, sum(conversions)::text as conversions, sum(payout_minor)::text as payout_minor
        from offer_cap_usage where offer_id = ${this.offerId} group by cap_key order by cap_key`;
      const ok = usage.length > 0 && usage.every((u) => u.conversions === String(n) && u.payout_minor === String(expected.payout));
      const text = usage.map((u) => `${u.cap_key}: ${u.conversions} / ${u.payout_minor}`).join('; ') || 'no usage rows';
      checks.push(check(`${label}: every cap's usage counted each conversion (conversions / payout minor)`, `${n} / ${expected.payout} per cap`, text, ok));
    }
    return checks;
  }
}
