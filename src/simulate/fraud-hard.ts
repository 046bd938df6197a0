import { osFamily } from '../fraud/rules/user-agent.js';
import { honestPostback, OFFERS, pickWeighted, type OfferModel, type PublisherModel } from './honest.js';
import { addressIn, CONSUMER_ISPS, HOSTING } from './networks.js';
import { clickBursts, segmentKey, type ClickSpec, type Label, type Session } from './plan.js';
import { UAS, type Population } from './population.js';

/**
 * The fraud no default was tuned on (fraud-patterns.ts has the classic forms), each modelled on how
 * it is done when the classic forms are caught:
 *
 * per-conversion
 * - hosting_networks: scripts on servers rented from many hosting networks (addresses drawn by AS
 *   number from the IP-to-AS table: Google Cloud, Azure, Hetzner, OVH, Alibaba, Contabo, Vultr,
 *   Scaleway and a tail of small hosts, a fifth over IPv6), a real browser's user agent, converting
 *   2-90 s after the click through the same server, each server used for 1-6 conversions.
 * - bot_clients: HTTP libraries (curl, python-requests, Go-http-client, node-fetch, undici, axios) and
 *   headless browsers (HeadlessChrome as Puppeteer and Playwright run it) on residential addresses,
 *   with human timing, one conversion per address, mixed into honest publishers' sub-IDs: the user
 *   agent is the only signal.
 *
 * segment-level (aggregate)
 * - residential_proxy: a publisher selling fake leads and installs made through residential proxies
 *   (consumer ISP addresses, real browsers, 30 s-20 min), blended with bought junk clicks so that its
 *   sub-IDs convert at about 2.5x the offer; half the proxies rotate the exit before the conversion.
 * - subid_pumping: an offer wall paying users to install (35 % of its clicks convert), spread over
 *   300 rotating sub-IDs so that no (publisher, sub1) segment reaches a rate rule's minimum volume.
 * - click_flooding, variant device-addresses: a publisher forwarding huge volumes of clicks with real
 *   users' addresses and device user agents (server-to-server clicks), so organic installs are
 *   attributed to it; conversions flat over the 7-day look-back, from the users' own networks.
 */

export const HARD_FRAUD_PUBLISHERS = ['resproxy', 'subpump', 'flood3'];

const HTTP_LIBRARIES = ['curl/8.5.0', 'python-requests/2.31.0', 'Go-http-client/2.0', 'node-fetch/3.3.2', 'undici', 'axios/1.6.8'];
const HEADLESS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.6367.60 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/122.0.6261.57 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.28 Safari/537.36',
];
const BROWSERS = [UAS.windows, UAS.mac, UAS.android, UAS.iphone];
const DEVICE_UAS = [UAS.android, UAS.androidWebView, UAS.iphone, UAS.iphoneInApp];
const LOOKBACK_S = 7 * 86_400;
/** Residential-proxy sub-IDs convert at this multiple of the offer's honest rate: inside the spread of honest sources. */
const PROXY_LIFT = 2.5;
const ROTATING_SUBS = 300;

/** Why residential_proxy is reported but not in the pass/fail targets (README, "Simulator"). */
export const RESIDENTIAL_PROXY_OUTSIDE_TARGET =
  'every conversion looks like an honest user (residential address, real browser, human timing, one conversion per address) and its sub-IDs convert at 2.5x the offer, inside the 2-3x spread of honest sources: catching it at 95 % would flag honest sources with it';

const label = (pattern: string, kind: Label['kind'], variant: string, expected: string[], extra: Partial<Label> = {}): Label => ({ pattern, kind, variant, expected, ...extra });

/** Every hard fraud session for a run of about `totalClicks` clicks (volumes scale as in fraud-patterns.ts). */
export function hardFraudSessions(pop: Population, totalClicks: number, publishers: PublisherModel[]): Session[] {
  const f = totalClicks / 40_000;
  const n = (x: number) => Math.max(1, Math.round(x * f));
  return [
    ...hostingNetworks(pop, n(150)),
    ...botClients(pop, n(100), publishers),
    ...residentialProxy(pop, n(1200)),
    ...subidPumping(pop, n(600)),
    ...deviceFlood(pop, Math.round(0.06 * totalClicks), n(60)),
  ];
}

function hostingNetworks(pop: Population, conversions: number): Session[] {
  const sessions: Session[] = [];
  const providers = Object.entries(HOSTING);
  while (sessions.length < conversions) {
    const [provider, asns] = pop.pick(providers);
    const ip = addressIn(pop.rand, asns, 0.2);
    const ua = pop.pick(BROWSERS);
    const uses = Math.min(conversions - sessions.length, pop.int(1, 6));
    for (let i = 0; i < uses; i++) {
      const offer = pop.rand() < 0.6 ? (OFFERS[1] as OfferModel) : pickWeighted(pop, OFFERS);
      const click: ClickSpec = { offer: offer.key, publisher: 'dcbots', sub1: `h${pop.int(1, 9)}`, ip, ua };
      const ctitS = Math.exp(Math.log(2) + pop.rand() * Math.log(45));
      const postback = { ...honestPostback(pop, offer, { ip, ua, network: 'vpn' }, ctitS, 'hn'), ip, ua };
      const expected = ['datacenter_ip', ...(ctitS < 10 ? ['ctit_too_short'] : [])];
      sessions.push([{ t: 'click', click }, { t: 'convert', click, ctitS, postback, label: label('hosting_networks', 'per-conversion', provider, expected) }]);
    }
  }
  return sessions;
}

function botClients(pop: Population, count: number, publishers: PublisherModel[]): Session[] {
  return Array.from({ length: count }, (): Session => {
    const offer = pickWeighted(pop, OFFERS);
    const pub = pickWeighted(pop, publishers);
    const library = pop.rand() < 0.5;
    const ua = library ? pop.pick(HTTP_LIBRARIES) : pop.pick(HEADLESS);
    const ip = addressIn(pop.rand, CONSUMER_ISPS);
    const click: ClickSpec = { offer: offer.key, publisher: pub.key, sub1: pop.pick(pub.subs).id, ip, ua };
    const ctitS = 20 + pop.rand() * 1180;
    const postback = honestPostback(pop, offer, { ip, ua, network: 'home' }, ctitS, 'bc');
    if (postback.ip !== undefined) Object.assign(postback, { ip, ua });
    const l = label('bot_clients', 'per-conversion', library ? 'http-library' : 'headless', ['bot_user_agent']);
    return [{ t: 'click', click }, { t: 'convert', click, ctitS, postback, label: l }];
  });
}

function residentialProxy(pop: Population, clicks: number): Session[] {
  const sessions: Session[] = [];
  for (let i = 0; i < clicks; i++) {
    const offer = pop.rand() < 0.7 ? (OFFERS[1] as OfferModel) : (OFFERS[0] as OfferModel);
    const ip = addressIn(pop.rand, CONSUMER_ISPS);
    const ua = pop.pick(BROWSERS);
    const click: ClickSpec = { offer: offer.key, publisher: 'resproxy', sub1: `r${pop.int(1, 6)}`, ip, ua };
    if (pop.rand() >= offer.baseRate * PROXY_LIFT) {
      sessions.push([{ t: 'click', click }]);
      continue;
    }
    const ctitS = 30 + pop.rand() * 1170;
    const rotating = pop.rand() < 0.5;
    const postback = honestPostback(pop, offer, { ip, ua, network: 'home' }, ctitS, 'rp');
    if (postback.ip !== undefined) Object.assign(postback, { ip: rotating ? addressIn(pop.rand, CONSUMER_ISPS) : ip, ua });
    const l = label('residential_proxy', 'aggregate', rotating ? 'rotating-exit' : 'sticky-exit', ['conversion_rate_spike'], {
      volume: { key: segmentKey(click), min: 9, offerClicks: 1000 },
      outsideTarget: RESIDENTIAL_PROXY_OUTSIDE_TARGET,
    });
    sessions.push([{ t: 'click', click }, { t: 'convert', click, ctitS, postback, label: l }]);
  }
  return sessions;
}

function subidPumping(pop: Population, clicks: number): Session[] {
  const offer = OFFERS[0] as OfferModel;
  const sessions: Session[] = [];
  for (let i = 0; i < clicks; i++) {
    const user = pop.user();
    const click: ClickSpec = { offer: offer.key, publisher: 'subpump', sub1: `w${pop.int(1, ROTATING_SUBS)}`, ip: user.ip, ua: user.ua };
    if (pop.rand() >= 0.35) {
      sessions.push([{ t: 'click', click }]);
      continue;
    }
    const ctitS = 40 + pop.rand() * 900;
    // Judged as a publisher: past ten conversions of the publisher, once the offer has 1,000 other clicks.
    const l = label('subid_pumping', 'aggregate', 'rotating-subs', ['conversion_rate_spike'], { volume: { key: 'pub:subpump', min: 9, offerClicks: 1000 } });
    sessions.push([{ t: 'click', click }, { t: 'convert', click, ctitS, postback: honestPostback(pop, offer, user, ctitS, 'sp'), label: l }]);
  }
  return sessions;
}

function deviceFlood(pop: Population, floodClicks: number, conversions: number): Session[] {
  const offer = OFFERS[0] as OfferModel;
  const floodClick = (): ClickSpec => {
    const user = pop.user();
    return { offer: offer.key, publisher: 'flood3', sub1: `f${pop.int(1, 3)}`, ip: user.ip, ua: pop.pick(DEVICE_UAS) };
  };
  const sessions = clickBursts(floodClicks, floodClick);
  for (let i = 0; i < conversions; i++) {
    const click = floodClick();
    const user = pop.user(); // the organic user who really converted
    const ctitS = 60 + pop.rand() * (LOOKBACK_S - 60);
    const postback = honestPostback(pop, offer, user, ctitS, 'fl');
    const expected = ['click_flood'];
    if (postback.ip !== undefined && postback.ip !== click.ip) expected.push('click_ip_mismatch');
    const clickOs = click.ua ? osFamily(click.ua) : undefined;
    if (postback.ua && clickOs && osFamily(postback.ua) && osFamily(postback.ua) !== clickOs) expected.push('ua_mismatch');
    // click_flood judges a source once it has 20 conversions (minConversions): the 20th on.
    const l = label('click_flooding', 'aggregate', 'device-addresses', expected, { volume: { key: 'pub:flood3', min: 19 } });
    sessions.push([{ t: 'convert', click, ctitS, postback, label: l }]);
  }
  return sessions;
}
