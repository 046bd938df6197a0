import { osFamily } from '../fraud/rules/user-agent.js';
import { hardFraudSessions } from './fraud-hard.js';
import { isServerAddress } from './networks.js';
import { ctitFor, honestPostback, nextTxid, OFFERS, pickWeighted, type OfferModel, type PublisherModel } from './honest.js';
import { clickBursts, segmentKey, type ClickSpec, type Label, type Session, type Step } from './plan.js';
import { UAS, type Population } from './population.js';

/**
 * The labelled fraud, one generator per pattern, each modelled on how the fraud is done in practice
 * (and documented with what it does not cover in src/fraud/README.md, "Simulator"):
 *
 * per-conversion
 * - forged_postback: postbacks the advertiser never signed: a wrong key, no signature, a click ID
 *   made up by someone holding the key, a sender outside the advertiser's allowlist.
 * - replayed_postback: a captured postback sent again (at once, or after the signature tolerance),
 *   or the same click's postback re-sent under new transaction IDs by a sender holding the key.
 * - click_injection: malware on real phones fires a click just before an install it did not cause:
 *   real devices and addresses, conversions 0.5-7 s after the click.
 * - datacenter_clicks: scripts on cloud servers clicking and converting with their default tooling:
 *   headless browsers or HTTP libraries (which say so in their user agent), or a spoofed browser user
 *   agent on a script that converts within seconds.
 * - payout_tampering: a signed postback's payout edited in transit (its signature no longer matches),
 *   or a sender holding the key reporting a multiple of the agreed payout.
 *
 * aggregate
 * - ip_burst_bots: device farms, each a rack of phones behind one residential address, every device
 *   clicking once and converting with believable timing.
 * - rate_pumping: an offer wall on one sub-ID of an honest publisher, paying users to install: real
 *   users converting at 35 % on an install offer whose honest rate is about 3 %.
 * - click_flooding: a publisher's servers spraying clicks with device user agents, so that organic
 *   conversions (days later, from the users' own networks) are attributed to them.
 *
 * The hard cases (many hosting networks, bot clients with no second signal, residential proxies,
 * sub-ID rotation, click flooding with real users' addresses) are in fraud-hard.ts.
 */

const HOSTING_PREFIXES = ['134.209.', '167.99.', '139.59.', '54.'];
const HEADLESS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/123.0.6312.58 Safari/537.36',
  'Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)',
];
const HTTP_LIBRARIES = ['python-requests/2.31.0', 'Go-http-client/1.1', 'curl/8.5.0', 'axios/1.6.8', 'node-fetch/1.0 (+https://github.com/bitinn/node-fetch)'];
const DEVICE_UAS = [UAS.android, UAS.androidWebView, UAS.iphone, UAS.iphoneInApp];
/** The offer's click TTL is 30 days; a flooded click older than that would be refused as expired. */
const MAX_FLOOD_CTIT_S = 29.5 * 86_400;
const CTIT_TOO_LONG_S = 604_800;

export const FLOOD_PUBLISHERS = ['flood1', 'flood2'];
export const FRAUD_PUBLISHERS = ['inject', 'dcbots', 'farms', ...FLOOD_PUBLISHERS];
/** The honest publishers one of whose sub-IDs is pumped. */
const PUMPED = [
  { publisher: 'pub1', sub1: 'promo' },
  { publisher: 'pub3', sub1: 'promo' },
];

const label = (pattern: string, kind: Label['kind'], variant: string, expected: string[], volume?: Label['volume']): Label => ({
  pattern,
  kind,
  variant,
  expected,
  ...(volume ? { volume } : {}),
});

export type FraudPlan = {
  sessions: Session[];
  /** GET /c requests the fraud sessions make: the honest traffic gets the rest of the run's clicks. */
  clicks: number;
  /** Adds the replays and in-transit tampering, which ride on postbacks honest advertisers really sent. */
  attachTo: (honest: Session[]) => void;
};

/**
 * Every fraud session for a run of about `totalClicks` clicks. Volumes scale with the run; at the
 * default 40,000 clicks fraud is about a third of the conversions (a bad network, and enough attempts
 * per pattern to measure), and click floods are 8 % of the clicks.
 */
export function fraudSessions(pop: Population, totalClicks: number, publishers: PublisherModel[]): FraudPlan {
  const f = totalClicks / 40_000;
  const n = (x: number) => Math.max(1, Math.round(x * f));
  const sessions: Session[] = [
    ...forged(pop, n(10)),
    ...clickInjection(pop, n(100)),
    ...datacenterClicks(pop, n(100)),
    ...tamperedSigned(pop, n(25)),
    ...deviceFarms(pop, Math.max(2, n(8)), 12),
    ...ratePumping(pop, n(300)),
    ...clickFlooding(pop, Math.round(0.08 * totalClicks), n(80)),
    ...hardFraudSessions(pop, totalClicks, publishers),
  ];
  const clicks = sessions.reduce((c, s) => c + s.filter((step) => step.t === 'click').length, 0);
  return { sessions, clicks, attachTo: (honest) => attachToHonest(pop, honest, n(20), n(25)) };
}

/** An address of AWS or DigitalOcean (networks.ts: by AS number, not by the engine's own list). */
function hostingAddress(pop: Population): string {
  for (;;) {
    const prefix = pop.pick(HOSTING_PREFIXES);
    const text = prefix + Array.from({ length: 4 - prefix.split('.').filter(Boolean).length }, () => pop.int(1, 254)).join('.');
    if (isServerAddress(text)) return text;
  }
}

function anyOffer(pop: Population): OfferModel {
  return pickWeighted(pop, OFFERS);
}

/** A user clicking on an honest publisher: the session that forged and tampered postbacks ride on. */
function userClick(pop: Population, offer: OfferModel): { click: ClickSpec; user: ReturnType<Population['user']> } {
  const user = pop.user();
  return { user, click: { offer: offer.key, publisher: `pub${pop.int(0, 5)}`, sub1: `s${pop.int(0, 3)}`, ip: user.ip, ua: user.ua } };
}

function forged(pop: Population, perVariant: number): Session[] {
  const sessions: Session[] = [];
  for (const how of ['wrong-key', 'unsigned', 'fabricated-click', 'wrong-address'] as const) {
    for (let i = 0; i < perVariant; i++) {
      const offer = anyOffer(pop);
      const { click, user } = userClick(pop, offer);
      const forge: Step = { t: 'forge', how, postback: honestPostback(pop, offer, user, 600, 'fg'), label: label('forged_postback', 'per-conversion', how, []) };
      sessions.push(how === 'fabricated-click' ? [forge] : [{ t: 'click', click }, forge]);
    }
  }
  return sessions;
}

/** Replays and in-transit tampering of postbacks that honest advertisers really sent. */
function attachToHonest(pop: Population, honest: Session[], replaysPerVariant: number, tampered: number): void {
  // Each honest session is replayed or tampered with at most once (a shuffled deck, dealt from the top).
  const deck = honest.filter((s) => s.some((step) => step.t === 'convert'));
  for (let i = deck.length - 1; i > 0; i--) {
    const j = pop.int(0, i);
    [deck[i], deck[j]] = [deck[j] as Session, deck[i] as Session];
  }
  const take = (): Session => deck.pop() ?? [];
  for (const how of ['exact', 'stale', 'new-txid'] as const) {
    const expected = how === 'new-txid' ? ['multiple_conversions_per_click'] : [];
    for (let i = 0; i < replaysPerVariant; i++) {
      take().push({ t: 'replay', how, label: label('replayed_postback', 'per-conversion', how, expected), ...(how === 'new-txid' ? { txid: nextTxid('rp') } : {}) });
    }
  }
  for (let i = 0; i < tampered; i++) take().push({ t: 'replay', how: 'tamper', label: label('payout_tampering', 'per-conversion', 'in-transit', []) });
}

function clickInjection(pop: Population, count: number): Session[] {
  return Array.from({ length: count }, () => {
    const offer = OFFERS[0] as OfferModel; // installs: what injection malware claims
    const user = pop.user();
    const ua = pop.pick([UAS.android, UAS.androidWebView]);
    const click: ClickSpec = { offer: offer.key, publisher: 'inject', sub1: `app${pop.int(1, 40)}`, ip: user.ip, ua };
    const ctitS = 0.5 + pop.rand() * 6.5;
    const postback = honestPostback(pop, offer, { ...user, ua }, ctitS, 'inj');
    return [{ t: 'click', click }, { t: 'convert', click, ctitS, postback, label: label('click_injection', 'per-conversion', 'malware', ['ctit_too_short']) }];
  });
}

function datacenterClicks(pop: Population, count: number): Session[] {
  return Array.from({ length: count }, () => {
    const offer = pop.rand() < 0.6 ? (OFFERS[1] as OfferModel) : anyOffer(pop); // lead forms are the classic target
    const r = pop.rand();
    const variant = r < 0.35 ? 'headless' : r < 0.7 ? 'http-library' : 'spoofed-browser';
    const ua = variant === 'headless' ? pop.pick(HEADLESS) : variant === 'http-library' ? pop.pick(HTTP_LIBRARIES) : pop.pick([UAS.windows, UAS.mac, UAS.android]);
    const ip = hostingAddress(pop);
    const click: ClickSpec = { offer: offer.key, publisher: 'dcbots', sub1: `s${pop.int(1, 9)}`, ip, ua };
    // Scripts with bot tooling convert anywhere from instantly to a believable minute; one that
    // spoofs a browser still converts within seconds (a person would be slower).
    const ctitS = variant === 'spoofed-browser' ? 1 + pop.rand() * 8 : 1 + pop.rand() * 60;
    const expected = ['datacenter_ip', ...(variant !== 'spoofed-browser' ? ['bot_user_agent'] : []), ...(ctitS < 10 ? ['ctit_too_short'] : [])];
    const postback = { ...honestPostback(pop, offer, { ip, ua, network: 'vpn' }, ctitS, 'dc'), ip, ua };
    return [{ t: 'click', click }, { t: 'convert', click, ctitS, postback, label: label('datacenter_clicks', 'per-conversion', variant, expected) }];
  });
}

function tamperedSigned(pop: Population, count: number): Session[] {
  return Array.from({ length: count }, () => {
    const offer = anyOffer(pop);
    const { click, user } = userClick(pop, offer);
    const ctitS = ctitFor(pop, offer);
    const [whole = '0', cents = '00'] = offer.payout.split('.');
    const minor = Number(whole) * 100 + Number(cents);
    // A digit added, a decimal point moved: tampering is worth doing for multiples, not cents.
    const inflated = Math.round(minor * (2 + pop.rand() * 8));
    const payout = `${Math.floor(inflated / 100)}.${String(inflated % 100).padStart(2, '0')}`;
    const postback = { ...honestPostback(pop, offer, user, ctitS, 'tp'), payout };
    return [{ t: 'click', click }, { t: 'convert', click, ctitS, postback, label: label('payout_tampering', 'per-conversion', 'signed', ['payout_mismatch']) }];
  });
}

function deviceFarms(pop: Population, farms: number, devices: number): Session[] {
  const sessions: Session[] = [];
  for (let f = 0; f < farms; f++) {
    const ip = pop.residentialV4();
    const offer = anyOffer(pop);
    for (let d = 0; d < devices; d++) {
      const ua = pop.pick([UAS.android, UAS.iphone]);
      const click: ClickSpec = { offer: offer.key, publisher: 'farms', sub1: `farm${f}`, ip, ua };
      const ctitS = 40 + pop.rand() * 560;
      const postback = { ...honestPostback(pop, offer, { ip, ua, network: 'home' }, ctitS, 'farm'), ip, ua };
      // ip_burst allows `max` (5) conversions per address: those are below its minimum volume.
      const l = label('ip_burst_bots', 'aggregate', 'device-farm', ['ip_burst'], { key: `addr:${ip}`, min: 5 });
      sessions.push([{ t: 'click', click }, { t: 'convert', click, ctitS, postback, label: l }]);
    }
  }
  return sessions;
}

function ratePumping(pop: Population, clicksPerSegment: number): Session[] {
  const sessions: Session[] = [];
  for (const seg of PUMPED) {
    const offer = OFFERS[0] as OfferModel; // incentivised installs: an offer wall paying users to install

    for (let i = 0; i < clicksPerSegment; i++) {
      const user = pop.user();
      const click: ClickSpec = { offer: offer.key, publisher: seg.publisher, sub1: seg.sub1, ip: user.ip, ua: user.ua };
      if (pop.rand() >= 0.35) {
        sessions.push([{ t: 'click', click }]);
        continue;
      }
      const ctitS = ctitFor(pop, offer);
      // conversion_rate_spike judges a segment once it has 10 conversions and the rest of the offer 1,000 clicks.
      const l = label('rate_pumping', 'aggregate', 'incentivised-sub', ['conversion_rate_spike'], { key: segmentKey(click), min: 9, offerClicks: 1000 });
      sessions.push([{ t: 'click', click }, { t: 'convert', click, ctitS, postback: honestPostback(pop, offer, user, ctitS, 'pump'), label: l }]);
    }
  }
  return sessions;
}

function clickFlooding(pop: Population, floodClicks: number, conversions: number): Session[] {
  const offer = OFFERS[0] as OfferModel;
  const servers = FLOOD_PUBLISHERS.map((publisher) => ({ publisher, addresses: Array.from({ length: 6 }, () => hostingAddress(pop)) }));
  const floodClick = (): ClickSpec => {
    const s = pop.pick(servers);
    return { offer: offer.key, publisher: s.publisher, sub1: 'f', ip: pop.pick(s.addresses), ua: pop.pick(DEVICE_UAS) };
  };
  const sessions = clickBursts(floodClicks, floodClick);
  for (let i = 0; i < conversions; i++) {
    const click = floodClick();
    const user = pop.user(); // the organic user who really converted
    const ctitS = 600 + pop.rand() * (MAX_FLOOD_CTIT_S - 600);
    const postback = honestPostback(pop, offer, user, ctitS, 'flood');
    const expected = ['datacenter_ip'];
    if (ctitS > CTIT_TOO_LONG_S) expected.push('ctit_too_long');
    if (postback.ip && !postback.ip.includes(':')) expected.push('click_ip_mismatch');
    const clickOs = click.ua ? osFamily(click.ua) : undefined;
    if (postback.ua && clickOs && osFamily(postback.ua) && osFamily(postback.ua) !== clickOs) expected.push('ua_mismatch');
    sessions.push([{ t: 'convert', click, ctitS, postback, label: label('click_flooding', 'aggregate', 'server-clicks', expected) }]);
  }
  return sessions;
}
