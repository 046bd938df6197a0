import type { Catalog, Offer, Publisher } from '../catalog/catalog.js';
import { verifyClickId, type ClickClaims } from './click-id.js';

/**
 * Whether a click ID may carry a conversion for an advertiser: authentic (tag), known (its offer and
 * publisher exist), this advertiser's, and inside the offer's click TTL. Decided from the ID and the
 * in-memory catalog alone.
 */

export type InvalidClickReason = 'malformed' | 'forged' | 'unknown' | 'expired' | 'wrong_advertiser';

export type ValidClick = { clickId: string; claims: ClickClaims; offer: Offer; publisher: Publisher };

export type ClickValidity = { ok: true; click: ValidClick } | { ok: false; reason: InvalidClickReason; detail: string };

/** {clickid}, ${click_id}, [CLICK_ID], ##clickid##, %%clickid%%, <clickid>: how trackers spell a macro. */
const UNEXPANDED_MACRO = /^\s*(\{.*\}|\$\{.*\}|\[.*\]|##.*##|%%.*%%|<.*>)\s*$/;

/**
 * `checkClick`, but a click whose offer, publisher or advertiser this node has not loaded yet (created
 * on another node a moment ago) is looked up in the database before it is called unknown.
 */
export async function checkClickFresh(catalog: Catalog, clickId: string, advertiserId: string, now: Date = new Date()): Promise<ClickValidity> {
  const first = checkClick(catalog, clickId, advertiserId, now);
  if (first.ok || first.reason !== 'unknown') return first;
  const verified = verifyClickId(clickId, catalog.clickKeys);
  if (!verified.ok) return first;
  const { advertiserSeq, offerSeq, publisherSeq } = verified.claims;
  await catalog.findFresh(`click:${advertiserSeq}:${offerSeq}:${publisherSeq}`, (c) =>
    c.advertisersBySeq.has(advertiserSeq) && c.offersBySeq.has(offerSeq) && c.publishersBySeq.has(publisherSeq) ? true : undefined,
  );
  return checkClick(catalog, clickId, advertiserId, now);
}

/** A click time this far ahead of our clock is a key compromise or a clock fault, not a real click. */
const FUTURE_SKEW_MS = 5 * 60_000;

export function checkClick(catalog: Catalog, clickId: string, advertiserId: string, now: Date = new Date()): ClickValidity {
  const verified = verifyClickId(clickId, catalog.clickKeys);
  if (!verified.ok) {
    const detail =
      verified.reason === 'malformed'
        ? UNEXPANDED_MACRO.test(clickId)
          ? `not a click ID minted by this engine: "${clickId.slice(0, 40)}" looks like a macro the advertiser's platform did not expand; pass the click ID it received on the landing URL`
          : 'not a click ID minted by this engine'
        : 'click ID signature does not verify';
    return { ok: false, reason: verified.reason, detail };
  }
  const { claims } = verified;
  const offer = catalog.offersBySeq.get(claims.offerSeq);
  const publisher = catalog.publishersBySeq.get(claims.publisherSeq);
  const owner = catalog.advertisersBySeq.get(claims.advertiserSeq);
  if (!offer || !publisher || !owner) return { ok: false, reason: 'unknown', detail: 'the offer or publisher of this click no longer exists' };
  if (owner.id !== advertiserId || offer.advertiserId !== advertiserId) {
    return { ok: false, reason: 'wrong_advertiser', detail: 'the click belongs to another advertiser' };
  }
  const ageMs = now.getTime() - claims.createdAt.getTime();
  if (ageMs < -FUTURE_SKEW_MS) return { ok: false, reason: 'forged', detail: 'click time is in the future' };
  if (ageMs > offer.clickTtlS * 1000) {
    return { ok: false, reason: 'expired', detail: `click is ${Math.floor(ageMs / 1000)} s old; the offer accepts ${offer.clickTtlS} s` };
  }
  return { ok: true, click: { clickId, claims, offer, publisher } };
}
