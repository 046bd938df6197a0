import { bundledDatacenterRanges } from '../../src/fraud/datacenter.js';
import { parseAddress } from '../../src/net/cidr.js';

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

export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export const UAS = {
  iphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  iphoneInApp: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/455.0.0.41.105]',
  android: 'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36',
  androidWebView: 'Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230901.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36',
  windows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0',
  mac: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
} as const;

/** The browser a user converts in: an in-app click often converts in the system browser of the same device. */
const CONVERTS_IN: Record<string, string> = { [UAS.iphoneInApp]: UAS.iphone, [UAS.androidWebView]: UAS.android };

export class Population {
  readonly rand: () => number;
  private readonly dc = bundledDatacenterRanges();
  readonly carrierPool: string[];
  readonly vpnExits: string[];

  constructor(seed: number, opts: { carrierAddresses?: number; vpnExits?: number } = {}) {
    this.rand = prng(seed);
    this.carrierPool = Array.from({ length: opts.carrierAddresses ?? 120 }, () => this.residentialV4());
    const hosting = ['159.203.', '45.33.', '3.80.', '129.146.200.', '178.62.'];
    this.vpnExits = Array.from({ length: opts.vpnExits ?? 25 }, (_, i) => {
      const base = hosting[i % hosting.length] as string;
      const parts = base.split('.').filter(Boolean).length;
      return base + Array.from({ length: 4 - parts }, () => this.int(1, 254)).join('.');
    });
  }

  int(min: number, max: number): number {
    return min + Math.floor(this.rand() * (max - min + 1));
  }

  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.rand() * list.length)] as T;
  }

  /** A public IPv4 address outside every hosting range. */
  residentialV4(): string {
    const firsts = [24, 67, 71, 73, 81, 82, 86, 90, 92, 101, 109, 110, 112, 118, 121, 176, 186, 187, 189, 190, 200, 201];
    for (;;) {
      const text = `${this.pick(firsts)}.${this.int(0, 255)}.${this.int(0, 255)}.${this.int(1, 254)}`;
      const addr = parseAddress(text);
      if (addr && !this.dc.lookup(addr)) return text;
    }
  }

  residentialV6(): string {
    const hex = () => this.int(0, 0xffff).toString(16);
    return `2a02:8108:${hex()}:${hex()}:${hex()}:${hex()}:${hex()}:${hex()}`;
  }

  /** A user: where they click from, with which browser, and where they may be when they convert. */
  user(): { ip: string; ua: string; network: 'carrier' | 'home' | 'vpn' | 'v6' } {
    const r = this.rand();
    if (r < 0.5) return { ip: this.pick(this.carrierPool), ua: this.pick([UAS.iphone, UAS.iphoneInApp, UAS.android, UAS.androidWebView]), network: 'carrier' };
    if (r < 0.88) return { ip: this.residentialV4(), ua: this.pick(Object.values(UAS)), network: 'home' };
    if (r < 0.96) return { ip: this.pick(this.vpnExits), ua: this.pick([UAS.windows, UAS.mac, UAS.iphone, UAS.android]), network: 'vpn' };
    return { ip: this.residentialV6(), ua: this.pick(Object.values(UAS)), network: 'v6' };
  }

  /** Seconds from click to conversion: mostly minutes, lead forms 20-60 s, a tail of days. */
  ctitS(): number {
    const r = this.rand();
    if (r < 0.2) return 20 + this.rand() * 40;
    // Clamped at 15 s: no person converts faster (AppsFlyer calls under 5 s impossible).
    if (r < 0.88) return Math.min(3600 * 6, Math.max(15, Math.exp(Math.log(240) + 1.1 * this.normal())));
    return Math.min(29 * 86_400, 3600 + -Math.log(1 - this.rand()) * 1.5 * 86_400);
  }

  normal(): number {
    const u = 1 - this.rand();
    const v = this.rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

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

/** Users move: carrier users get another pool address after a while, VPN users switch the VPN off. */
function conversionAddress(pop: Population, user: ReturnType<Population['user']>, ctitS: number): string {
  const moved = pop.rand() < Math.min(0.8, 0.1 + ctitS / 7200);
  if (!moved) return user.ip;
  if (user.network === 'carrier') return pop.pick(pop.carrierPool);
  if (user.network === 'vpn') return pop.residentialV4();
  if (user.network === 'v6') return user.ip;
  return pop.rand() < 0.5 ? pop.pick(pop.carrierPool) : user.ip;
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
