import { mintClickId } from '../click/click-id.js';
import { insertClicksIdempotently } from '../click/click-store.js';
import type { Sql } from '../db/database.js';
import type { SimCatalog } from './catalog.js';
import type { ClickSpec } from './plan.js';

/**
 * The simulator's one step that is not HTTP. The contract's windows are real time, and a run lasts a
 * minute, yet honest users convert hours or days after their click. So each conversion converts a
 * "twin" of its user's click: the same offer, publisher, sub1, address and user agent, stamped
 * `ctitS` seconds ago. The simulator is a trusted test harness: it reads the engine's click key from
 * `click_keys`, mints the twin's ID with the engine's own `mintClickId` (so it authenticates like any
 * click ID), and writes the click row with the engine's INSERT (sessions run concurrently on one pool,
 * which COPY does not allow) before the postback.
 *
 * Every click the engine counts still arrives through GET /c (the session's click step, in real
 * time), so address, offer and segment click counters see exactly what the HTTP traffic was; the twin
 * only moves the converting click back in time. The clicks table therefore holds a twin row beside
 * each converting user's /c row.
 */
export class TwinClicks {
  constructor(
    private readonly sql: Sql,
    private readonly catalog: SimCatalog,
  ) {}

  async mint(spec: ClickSpec, ctitS: number): Promise<string> {
    const offer = this.catalog.offers[spec.offer];
    const publisher = this.catalog.publishers[spec.publisher];
    if (!publisher) throw new Error(`unknown simulated publisher ${spec.publisher}`);
    const createdAt = new Date(Date.now() - Math.round(ctitS * 1000));
    const id = mintClickId(this.catalog.clickKey, { advertiserSeq: this.catalog.advertiser.seq, offerSeq: offer.seq, publisherSeq: publisher.seq }, createdAt);
    await insertClicksIdempotently(this.sql, [
      {
        id,
        createdAt,
        offerId: offer.id,
        publisherId: publisher.id,
        advertiserId: this.catalog.advertiser.id,
        subs: [spec.sub1, null, null, null, null],
        ip: spec.ip,
        userAgent: spec.ua,
      },
    ]);
    return id;
  }
}
