import { conversionAddress, CONVERTS_IN, type Population, UAS } from '../../src/simulate/population.js';

export { Population } from '../../src/simulate/population.js';

/**
 * Synthetic traffic for evaluating the fraud defaults, seeded and deterministic. Honest traffic is
 * modelled on what the issue and the industry describe: conversions mostly within the hour with a
 * tail of days, lead forms converting in 20-60 s, half the users on mobile carriers sharing a small
 * pool of CGNAT addresses, VPN users exiting from cloud ranges, users switching networks between
 * click and conversion, publishers and sub-IDs whose honest conversion rates differ several-fold.
 */

export type Click = { id: string; at: number; offerId: string; publisherId: string; sub1: string; ip: string; ua: string };
export type Conversion = {
  at: number;
  click: Click;
  txid: string;
  userIp: string | undefined;
  userAgent: string | undefined;
  payoutSent: boolean;
  /** Which generator made it: 'honest' or a fraud pattern. */
  kind: string;
};
export type TrafficEvent = { type: 'click'; click: Click } | { type: 'conversion'; conversion: Conversion };

const DAY = 86_400_000;

export type HonestOptions = { days: number; clicksPerDay: number; offerId: string; publishers: number; baseRate: number };

/** Honest clicks and their conversions, time-ordered. */
export function honestTraffic(pop: Population, o: HonestOptions): TrafficEvent[] {
  // Publisher volume is heavy-tailed; each publisher and sub-ID has its own honest rate (lognormal, σ 0.45).
  const pubs = Array.from({ length: o.publishers }, (_, i) => ({
    id: `pub_${i}`,
    weight: 1 / (i + 1),
    rate: o.baseRate * Math.exp(0.45 * pop.normal()),
    subs: Array.from({ length: 5 }, (_, j) => ({ id: `s${j}`, factor: Math.exp(0.3 * pop.normal()) })),
  }));
  const totalWeight = pubs.reduce((s, p) => s + p.weight, 0);
  const events: TrafficEvent[] = [];
  const clicks = Math.round(o.days * o.clicksPerDay);
  for (let n = 0; n < clicks; n++) {
    const pub = weighted(pubs, pop.rand() * totalWeight);
    const sub = pop.pick(pub.subs);
    const user = pop.user();
    const at = Math.floor(pop.rand() * o.days * DAY);
    const click: Click = { id: `c${n}`, at, offerId: o.offerId, publisherId: pub.id, sub1: sub.id, ip: user.ip, ua: user.ua };
    events.push({ type: 'click', click });
    if (pop.rand() >= pub.rate * sub.factor) continue;
    const ctit = pop.ctitS();
    const forwards = pop.rand() < 0.6;
    events.push({
      type: 'conversion',
      conversion: {
        at: at + Math.round(ctit * 1000),
        click,
        txid: `h${n}`,
        userIp: forwards ? conversionAddress(pop, user, ctit) : undefined,
        userAgent: forwards ? (CONVERTS_IN[user.ua] ?? user.ua) : undefined,
        payoutSent: pop.rand() < 0.3,
        kind: 'honest',
      },
    });
  }
  return events;
}

function weighted<T extends { weight: number }>(items: T[], point: number): T {
  let left = point;
  for (const item of items) {
    left -= item.weight;
    if (left <= 0) return item;
  }
  return items[items.length - 1] as T;
}

export function byTime(events: TrafficEvent[]): TrafficEvent[] {
  const time = (e: TrafficEvent) => (e.type === 'click' ? e.click.at : e.conversion.at);
  return events.sort((a, b) => time(a) - time(b));
}

export const BOT_UAS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36',
  'python-requests/2.31.0',
  'Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)',
  'Go-http-client/1.1',
];

type FraudOptions = { start: number; offerId: string; publisherId: string; sub1: string; count: number };

let fraudSeq = 0;
function fraudClick(o: FraudOptions, at: number, ip: string, ua: string): Click {
  return { id: `f${++fraudSeq}`, at, offerId: o.offerId, publisherId: o.publisherId, sub1: o.sub1, ip, ua };
}

/** Scripts on cloud servers: bot or headless user agents, conversions seconds after the click. */
export function botFarm(pop: Population, o: FraudOptions): TrafficEvent[] {
  return Array.from({ length: o.count }, (_, i) => {
    const click = fraudClick(o, o.start + i * 17_000, pop.pick(pop.vpnExits), pop.pick(BOT_UAS));
    const conversion: Conversion = { at: click.at + pop.int(1000, 8000), click, txid: `bot${click.id}`, userIp: click.ip, userAgent: click.ua, payoutSent: false, kind: 'bot_farm' };
    return [{ type: 'click', click } as const, { type: 'conversion', conversion } as const];
  }).flat();
}

/** Malware on real phones claiming organic installs: real devices and addresses, impossible CTIT. */
export function clickInjection(pop: Population, o: FraudOptions): TrafficEvent[] {
  return Array.from({ length: o.count }, (_, i) => {
    const click = fraudClick(o, o.start + i * 41_000, pop.pick(pop.carrierPool), pop.pick([UAS.android, UAS.androidWebView]));
    const conversion: Conversion = { at: click.at + pop.int(500, 7000), click, txid: `inj${click.id}`, userIp: undefined, userAgent: undefined, payoutSent: false, kind: 'click_injection' };
    return [{ type: 'click', click } as const, { type: 'conversion', conversion } as const];
  }).flat();
}

/** A rack of phones behind one home connection, each clicking and converting with believable timing. */
export function deviceFarm(pop: Population, o: FraudOptions): TrafficEvent[] {
  const ip = pop.residentialV4();
  return Array.from({ length: o.count }, (_, i) => {
    const click = fraudClick(o, o.start + i * 50_000, ip, pop.pick([UAS.android, UAS.iphone]));
    const conversion: Conversion = { at: click.at + pop.int(40_000, 300_000), click, txid: `farm${click.id}`, userIp: ip, userAgent: click.ua, payoutSent: false, kind: 'device_farm' };
    return [{ type: 'click', click } as const, { type: 'conversion', conversion } as const];
  }).flat();
}

/** An incentivised sub-source: real users paid to convert, so its rate is many times the offer's. */
export function incentivisedSub(pop: Population, o: FraudOptions & { rate: number }): TrafficEvent[] {
  const events: TrafficEvent[] = [];
  for (let i = 0; i < o.count; i++) {
    const user = pop.user();
    const click = fraudClick(o, o.start + i * 20_000, user.ip, user.ua);
    events.push({ type: 'click', click });
    if (pop.rand() < o.rate) {
      events.push({ type: 'conversion', conversion: { at: click.at + Math.round(pop.ctitS() * 1000), click, txid: `inc${click.id}`, userIp: undefined, userAgent: undefined, payoutSent: false, kind: 'incentivised' } });
    }
  }
  return events;
}
