import { addressIn, BUSINESS_ISPS, CONSUMER_ISPS, MOBILE_CARRIERS, SECURITY_GATEWAY, VPN_PROVIDERS, sameSlash24 } from './networks.js';
import type { Label, PostbackSpec } from './plan.js';
import { UAS, type AddressSource, type Population } from './population.js';

/**
 * The honest traffic that looks like fraud to one rule or another, each case a named pattern whose
 * flag rate is reported on its own:
 *
 * - honest_carrier_nat: mobile users behind carrier-grade NAT, a pool of 120 carrier addresses and
 *   three big gateways (four addresses of one /24 each) carrying 30 % of the carrier users: hundreds of
 *   users per address, converting at the offer's normal rate (`ip_burst` must allow for it).
 * - honest_office_nat: offices of 20-60 people behind one address (business broadband, or a cloud
 *   security gateway such as Zscaler, which an AS classifier may call hosting), desktop browsers.
 * - honest_network_change: the postback `ip` on another network than the click (Wi-Fi at home to the
 *   carrier's gateway, or back): `click_ip_mismatch`, and conversions counted on an address that made
 *   none of their clicks.
 * - honest_vpn: users clicking through a VPN; half exit from the cloud ranges of population.ts, half
 *   from commercial VPN providers' ranges (M247, Datacamp, PacketHub, Clouvider); some switch the VPN
 *   off before converting.
 * - honest_slow: conversions 1 day or more after the click (within the 30-day click TTL): 6 % of the
 *   install and shop users decide over 1-6 days, besides the population's own tail.
 *
 * A conversion gets one label, in this order: VPN, slow, network change, carrier, plain `honest`.
 */

export const HONEST_PATTERNS = ['honest', 'honest_carrier_nat', 'honest_office_nat', 'honest_network_change', 'honest_vpn', 'honest_slow'] as const;
export type HonestPattern = (typeof HONEST_PATTERNS)[number];

const BIG_GATEWAYS = 3;
const ADDRESSES_PER_GATEWAY = 4;
const ON_BIG_GATEWAY = 0.3;
const VPN_EXITS = 40;
const ON_VPN_PROVIDER = 0.5;
/** Wi-Fi users whose advertiser saw them on the carrier's network. */
const WIFI_TO_CELLULAR = 0.25;
/** Install and shop users who decide over days (lead forms are filled at once). */
export const SLOW_SHARE = 0.06;
const DAY_S = 86_400;

export type HonestNetworks = {
  gateways: string[][];
  vpnExits: { provider: string; ip: string }[];
  addresses: AddressSource;
};

/** Real consumer ISP and carrier ranges for the population, and the shared gateways and VPN exits of one seed. */
export function addressSource(): AddressSource {
  return { residential: (rand) => addressIn(rand, CONSUMER_ISPS), carrier: (rand) => addressIn(rand, MOBILE_CARRIERS) };
}

export function honestNetworks(pop: Population, addresses: AddressSource): HonestNetworks {
  const gateways = Array.from({ length: BIG_GATEWAYS }, () => {
    const first = addresses.carrier(pop.rand);
    return [first, ...Array.from({ length: ADDRESSES_PER_GATEWAY - 1 }, () => sameSlash24(pop.rand, first))];
  });
  const providers = Object.entries(VPN_PROVIDERS);
  const vpnExits = Array.from({ length: VPN_EXITS }, () => {
    const [provider, asns] = pop.pick(providers);
    return { provider, ip: addressIn(pop.rand, asns) };
  });
  return { gateways, vpnExits, addresses };
}

export type HonestUser = ReturnType<Population['user']> & { via: string };

/** A population user, some of them moved onto a big gateway or a commercial VPN exit. */
export function honestUser(pop: Population, nets: HonestNetworks): HonestUser {
  const user = pop.user();
  if (user.network === 'carrier') {
    if (pop.rand() >= ON_BIG_GATEWAY) return { ...user, via: 'carrier-pool' };
    return { ...user, ip: pop.pick(pop.pick(nets.gateways)), via: 'big-gateway' };
  }
  if (user.network === 'vpn') {
    if (pop.rand() >= ON_VPN_PROVIDER) return { ...user, via: 'cloud-exit' };
    const exit = pop.pick(nets.vpnExits);
    return { ...user, ip: exit.ip, via: exit.provider };
  }
  return { ...user, via: user.network };
}

/** 1-6 days, flat: the considered purchase. */
export function slowCtitS(pop: Population): number {
  return DAY_S + pop.rand() * 5 * DAY_S;
}

/**
 * Where the advertiser saw the user convert, when it forwards an address: Wi-Fi users sometimes on
 * the carrier's network, carrier users at home after a while; otherwise the population's own moves.
 * Returns the label for the conversion.
 */
export function honestLabel(pop: Population, nets: HonestNetworks, user: HonestUser, ctitS: number, postback: PostbackSpec): Label {
  let changed: string | undefined;
  if (postback.ip !== undefined) {
    if ((user.network === 'home' || user.network === 'v6') && pop.rand() < WIFI_TO_CELLULAR) {
      postback.ip = pop.rand() < 0.5 ? pop.pick(pop.pick(nets.gateways)) : pop.pick(pop.carrierPool);
      changed = 'wifi-to-cellular';
    } else if (user.network === 'carrier' && pop.rand() < Math.min(0.5, ctitS / 7200)) {
      postback.ip = pop.residentialV4();
      changed = 'cellular-to-wifi';
    }
  }
  const label = (pattern: HonestPattern, variant: string): Label => ({ pattern, kind: 'honest', variant, expected: [] });
  if (user.network === 'vpn') return label('honest_vpn', postback.ip !== undefined && postback.ip !== user.ip ? `${user.via}, vpn off` : user.via);
  if (ctitS >= DAY_S) return label('honest_slow', ctitS <= 6 * DAY_S ? '1-6 days' : 'over 6 days');
  if (changed) return label('honest_network_change', changed);
  if (user.network === 'carrier') return label('honest_carrier_nat', user.via);
  return label('honest', user.via);
}

export type OfficeUser = HonestUser & { office: 'office-broadband' | 'security-gateway' };

/** Offices of 20-60 desktop users, one address each; a fifth of them egress through a cloud security gateway. */
export function officeUsers(pop: Population, clicks: number): OfficeUser[] {
  const users: OfficeUser[] = [];
  while (users.length < clicks) {
    const gateway = pop.rand() < 0.2;
    const ip = addressIn(pop.rand, gateway ? SECURITY_GATEWAY : BUSINESS_ISPS);
    const office = gateway ? 'security-gateway' : 'office-broadband';
    const size = Math.min(clicks - users.length, pop.int(20, 60));
    for (let i = 0; i < size; i++) users.push({ ip, ua: pop.pick([UAS.windows, UAS.windows, UAS.mac]), network: 'home', via: office, office });
  }
  return users;
}

/** An office worker converting at work keeps the office address; one converting that evening is at home. */
export function officeLabel(pop: Population, user: OfficeUser, ctitS: number, postback: PostbackSpec): Label {
  if (postback.ip !== undefined) postback.ip = ctitS < 8 * 3600 ? user.ip : pop.residentialV4();
  return { pattern: 'honest_office_nat', kind: 'honest', variant: user.office, expected: [] };
}
