import { isServerAddress } from './networks.js';

/**
 * A seeded population of users for synthetic traffic (the simulator, src/simulate, and the fraud
 * evaluation test, test/fraud-evaluation.test.ts), modelled on what the industry describes: half the
 * users on mobile carriers sharing a small pool of CGNAT addresses, 8 % on VPNs exiting from cloud
 * ranges, the rest at home (a few on IPv6); conversions mostly within the hour, lead forms in 20-60 s,
 * a tail of days; users switching networks between click and conversion.
 */

/** mulberry32: small, fast, and good enough for traffic shapes; the same seed gives the same traffic. */
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

export const UAS = {
  iphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  iphoneInApp: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/455.0.0.41.105]',
  android: 'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36',
  androidWebView: 'Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230901.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36',
  windows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0',
  mac: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
} as const;

/** The browser a user converts in: an in-app click often converts in the system browser of the same device. */
export const CONVERTS_IN: Record<string, string> = { [UAS.iphoneInApp]: UAS.iphone, [UAS.androidWebView]: UAS.android };

export type AddressSource = { residential: (rand: () => number) => string; carrier: (rand: () => number) => string };

export class Population {
  readonly rand: () => number;
  readonly carrierPool: string[];
  readonly vpnExits: string[];
  private readonly addresses: AddressSource | undefined;

  /**
   * `addresses` draws residential and carrier addresses from real ISP and carrier ranges (the
   * simulator, networks.ts); without it they come from a few first octets outside the bundled hosting
   * ranges (the in-process evaluation test, whose figures are documented for that traffic).
   */
  constructor(seed: number, opts: { carrierAddresses?: number; vpnExits?: number; addresses?: AddressSource } = {}) {
    this.rand = prng(seed);
    this.addresses = opts.addresses;
    this.carrierPool = Array.from({ length: opts.carrierAddresses ?? 120 }, () => this.addresses?.carrier(this.rand) ?? this.residentialV4());
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
    if (this.addresses) return this.addresses.residential(this.rand);
    const firsts = [24, 67, 71, 73, 81, 82, 86, 90, 92, 101, 109, 110, 112, 118, 121, 176, 186, 187, 189, 190, 200, 201];
    for (;;) {
      const text = `${this.pick(firsts)}.${this.int(0, 255)}.${this.int(0, 255)}.${this.int(1, 254)}`;
      if (!isServerAddress(text)) return text;
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

/** Users move: carrier users get another pool address after a while, VPN users switch the VPN off. */
export function conversionAddress(pop: Population, user: ReturnType<Population['user']>, ctitS: number): string {
  const moved = pop.rand() < Math.min(0.8, 0.1 + ctitS / 7200);
  if (!moved) return user.ip;
  if (user.network === 'carrier') return pop.pick(pop.carrierPool);
  if (user.network === 'vpn') return pop.residentialV4();
  if (user.network === 'v6') return user.ip;
  return pop.rand() < 0.5 ? pop.pick(pop.carrierPool) : user.ip;
}
