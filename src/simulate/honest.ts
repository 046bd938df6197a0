import { conversionAddress, CONVERTS_IN, type Population } from './population.js';
import { honestLabel, honestUser, officeLabel, officeUsers, SLOW_SHARE, slowCtitS, type HonestNetworks, type OfficeUser } from './honest-hard.js';
import type { ClickSpec, OfferKey, PostbackSpec, Session } from './plan.js';

/**
 * Honest traffic: three offers with different payouts and conversion rates, a dozen publishers whose
 * volumes are heavy-tailed and whose honest rates differ (lognormal, σ 0.45 per publisher and 0.3 per
 * sub-ID), users from the shared population (carrier NAT, home, VPN, IPv6). Click-to-conversion times
 * come from the population (most within the hour, a tail of days); the lead-form offer converts most
 * of its users in 20-60 s. The hard cases among them (carrier and office NAT, network changes, VPNs,
 * slow deciders) are labelled apart: honest-hard.ts. Advertisers forward the user's address and browser on 60 % of postbacks
 * and the payout on 30 %; some app users also buy (a second event on the same click).
 */

export type OfferModel = { key: OfferKey; name: string; payout: string; baseRate: number; weight: number; leadForm: boolean };

export const OFFERS: readonly OfferModel[] = [
  { key: 'app', name: 'App install', payout: '2.50', baseRate: 0.03, weight: 0.5, leadForm: false },
  { key: 'lead', name: 'Insurance lead form', payout: '12.00', baseRate: 0.06, weight: 0.3, leadForm: true },
  { key: 'shop', name: 'Shop purchase', payout: '40.00', baseRate: 0.015, weight: 0.2, leadForm: false },
];

export const HONEST_PUBLISHERS = 12;
const SUBS_PER_PUBLISHER = 4;
/** Share of postbacks that carry the user's ip and ua, and that carry the payout. */
const FORWARDS_USER = 0.6;
const SENDS_PAYOUT = 0.3;
/** App installs followed by a purchase on the same click (a second event, not a second conversion). */
const APP_PURCHASES = 0.08;

export type PublisherModel = { key: string; weight: number; factor: number; subs: { id: string; factor: number }[] };

export function honestPublishers(pop: Population): PublisherModel[] {
  return Array.from({ length: HONEST_PUBLISHERS }, (_, i) => ({
    key: `pub${i}`,
    weight: 1 / (i + 1),
    factor: Math.exp(0.45 * pop.normal()),
    subs: Array.from({ length: SUBS_PER_PUBLISHER }, (_, j) => ({ id: `s${j}`, factor: Math.exp(0.3 * pop.normal()) })),
  }));
}

/**
 * The network's other traffic in the hour before the run: the same population clicking through the
 * same honest publishers on another offer, clicks only. A running network has it; a fresh engine
 * does not, and without it every carrier pool address and VPN exit starts the run as an address
 * nobody else uses (datacenter_ip's shared-exit allowance and ip_burst's shared-address test read
 * an address's clicks over every offer). It touches no measured offer's counts, so the
 * conversion-rate baselines are the measured traffic's own. Fraud publishers send none: a script's
 * server is not shared by the network's users.
 */
export function backgroundClicks(pop: Population, clicks: number, publishers: PublisherModel[], nets: HonestNetworks): Session[] {
  return Array.from({ length: clicks }, (): Session => {
    const pub = pickWeighted(pop, publishers);
    const user = honestUser(pop, nets);
    return [{ t: 'click', click: { offer: 'other', publisher: pub.key, sub1: pop.pick(pub.subs).id, ip: user.ip, ua: user.ua } }];
  });
}

export function pickWeighted<T extends { weight: number }>(pop: Population, items: readonly T[]): T {
  let left = pop.rand() * items.reduce((s, i) => s + i.weight, 0);
  for (const item of items) {
    left -= item.weight;
    if (left <= 0) return item;
  }
  return items[items.length - 1] as T;
}

let txSeq = 0;
export const nextTxid = (prefix: string) => `${prefix}-${++txSeq}`;

/** A click-to-conversion time for an offer: lead forms are filled in 20-60 s by most of their users. */
export function ctitFor(pop: Population, offer: OfferModel): number {
  if (offer.leadForm && pop.rand() < 0.7) return 20 + pop.rand() * 40;
  return pop.ctitS();
}

/** The postback an honest advertiser sends for a user who converted `ctitS` after clicking. */
export function honestPostback(pop: Population, offer: OfferModel, user: ReturnType<Population['user']>, ctitS: number, prefix: string): PostbackSpec {
  const forwards = pop.rand() < FORWARDS_USER;
  return {
    txid: nextTxid(prefix),
    event: 'conversion',
    status: pop.rand() < 0.9 ? 'approved' : 'pending',
    ...(pop.rand() < SENDS_PAYOUT ? { payout: offer.payout } : {}),
    ...(forwards ? { ip: conversionAddress(pop, user, ctitS), ua: CONVERTS_IN[user.ua] ?? user.ua } : {}),
    method: pop.rand() < 0.5 ? 'GET' : 'POST',
  };
}

/** Share of the honest clicks made by office workers (honest-hard.ts). */
const OFFICE_SHARE = 0.06;

/**
 * The honest sessions of a run: population users (some on big carrier gateways or commercial VPN
 * exits) and office workers, each converting at their publisher's rate, each conversion labelled with
 * the hard case it is (honest-hard.ts). Slow deciders are drawn on the install and shop offers only.
 */
export function honestSessions(pop: Population, clicks: number, publishers: PublisherModel[], nets: HonestNetworks): Session[] {
  const sessions: Session[] = [];
  const offices = officeUsers(pop, Math.round(clicks * OFFICE_SHARE));
  for (let n = 0; n < clicks; n++) {
    const offer = pickWeighted(pop, OFFERS);
    const pub = pickWeighted(pop, publishers);
    const sub = pop.pick(pub.subs);
    const office = n < offices.length ? (offices[n] as OfficeUser) : undefined;
    const user = office ?? honestUser(pop, nets);
    const click: ClickSpec = { offer: offer.key, publisher: pub.key, sub1: sub.id, ip: user.ip, ua: user.ua };
    const session: Session = [{ t: 'click', click }];
    if (pop.rand() < Math.min(0.9, offer.baseRate * pub.factor * sub.factor)) {
      const ctitS = !offer.leadForm && pop.rand() < SLOW_SHARE ? slowCtitS(pop) : ctitFor(pop, offer);
      const postback = honestPostback(pop, offer, user, ctitS, 'h');
      const label = office ? officeLabel(pop, office, ctitS, postback) : honestLabel(pop, nets, user, ctitS, postback);
      session.push({ t: 'convert', click, ctitS, postback, label });
      if (offer.key === 'app' && pop.rand() < APP_PURCHASES) {
        // The same click, so the same click time: the purchase's own delay is not simulated.
        const purchase = { ...honestPostback(pop, offer, user, ctitS, 'h'), event: 'purchase', ...(postback.ip !== undefined ? { ip: postback.ip } : {}) };
        session.push({ t: 'convert', click: 'previous', ctitS, postback: purchase, label });
      }
    }
    sessions.push(session);
  }
  return sessions;
}
