import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * Real address ranges by autonomous system, read once per process from the offline IP-to-AS table
 * (@ip-location-db/asn, the same data an ASN classifier may use, but read here on its own: the
 * simulator must label traffic by who really owns an address, not by what the engine's classifier
 * believes). Each network is a list of AS numbers; an address is drawn from one of its ranges.
 *
 * The lists say who the traffic is: hosting providers rent servers (scripts), VPN providers run
 * exits on rented servers (honest privacy users), consumer ISPs and mobile carriers carry people,
 * and a cloud security gateway (Zscaler) carries whole offices.
 */

export const HOSTING: Record<string, number[]> = {
  'Google Cloud': [396982],
  Azure: [8075],
  Hetzner: [24940],
  OVH: [16276],
  Alibaba: [45102],
  Contabo: [51167],
  Vultr: [20473],
  Scaleway: [12876],
  // Smaller hosts: the long tail a list of the big clouds misses.
  LeaseWeb: [60781],
  IONOS: [8560],
  Hostinger: [47583],
  Tencent: [132203],
  netcup: [197540],
  HostPapa: [54290, 36352],
  FranTech: [53667],
  Kamatera: [36007],
};
/** The clouds whose published ranges the engine's first datacenter list had: the classic scripted-click sources. */
export const CLASSIC_CLOUDS: Record<string, number[]> = { AWS: [16509, 14618], DigitalOcean: [14061] };
/** Commercial VPN exits: M247 and Datacamp host most of the big consumer VPNs, PacketHub is NordVPN's, Clouvider many others'. */
export const VPN_PROVIDERS: Record<string, number[]> = { M247: [9009], Datacamp: [60068], PacketHub: [147049, 136787], Clouvider: [62240] };
export const CONSUMER_ISPS = [7922, 20115, 7018, 701, 3320, 3209, 3215, 12322, 2856, 5607, 5089, 3352, 3269, 1136, 26599, 8151, 28573];
/** Mobile carriers, whose subscribers share carrier-grade NAT gateways. */
export const MOBILE_CARRIERS = [21928, 22394, 20057, 55836, 45609, 23693, 25135];
/** Business broadband an office's router sits on. */
export const BUSINESS_ISPS = [7922, 701, 3320, 2856, 1136, 3215];
export const SECURITY_GATEWAY = [62044];

type Range = { v6: boolean; start: bigint; size: bigint };
export type Rand = () => number;

const wanted = new Set([...Object.values(HOSTING).flat(), ...Object.values(CLASSIC_CLOUDS).flat(), ...Object.values(VPN_PROVIDERS).flat(), ...CONSUMER_ISPS, ...MOBILE_CARRIERS, ...BUSINESS_ISPS, ...SECURITY_GATEWAY]);
let loaded: Map<number, Range[]> | undefined;

/** The wanted AS numbers' ranges; ~0.5 s the first time, then cached for every seed of the process. */
function ranges(): Map<number, Range[]> {
  if (loaded) return loaded;
  const map = new Map<number, Range[]>();
  const dir = createRequire(import.meta.url).resolve('@ip-location-db/asn/package.json').replace(/package\.json$/, '');
  for (const [file, v6] of [['asn-ipv4-num.csv', false], ['asn-ipv6-num.csv', true]] as const) {
    for (const line of readFileSync(dir + file, 'utf8').split('\n')) {
      const first = line.indexOf(',');
      const second = line.indexOf(',', first + 1);
      const third = line.indexOf(',', second + 1);
      if (third < 0) continue;
      const asn = Number(line.slice(second + 1, third));
      if (!wanted.has(asn)) continue;
      const start = BigInt(line.slice(0, first));
      const size = BigInt(line.slice(first + 1, second)) - start + 1n;
      // A /30 or smaller is a point-to-point link, not where users or servers sit.
      if (size < (v6 ? 1n << 64n : 256n)) continue;
      const list = map.get(asn) ?? [];
      list.push({ v6, start, size });
      map.set(asn, list);
    }
  }
  for (const asn of wanted) if (!map.get(asn)?.length) throw new Error(`@ip-location-db/asn has no usable range for AS${asn}`);
  loaded = map;
  return map;
}

function v4Text(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
}

function v6Text(n: bigint): string {
  return Array.from({ length: 8 }, (_, i) => ((n >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':');
}

/** A random offset below `size`: 128 random bits (IPv6 ranges reach 2^96 and more), reduced. */
function offset(rand: Rand, size: bigint): bigint {
  let bits = 0n;
  for (let i = 0; i < 4; i++) bits = (bits << 32n) | BigInt(Math.floor(rand() * 2 ** 32));
  return bits % size;
}

const pools = new Map<string, { v4: Range[]; v6: Range[] }>();

/** A network's ranges by family, built once per list of AS numbers (a run draws tens of thousands of addresses). */
function poolOf(asns: readonly number[]): { v4: Range[]; v6: Range[] } {
  const key = asns.join(',');
  let pool = pools.get(key);
  if (!pool) {
    const all = asns.flatMap((a) => ranges().get(a) ?? []);
    pool = { v4: all.filter((r) => !r.v6), v6: all.filter((r) => r.v6) };
    pools.set(key, pool);
  }
  return pool;
}

/**
 * An address of one of `asns`, IPv6 with probability `v6Share` (when the network has IPv6 ranges).
 * Ranges are chosen uniformly, not by size, so a provider's small blocks appear as often as its big one.
 */
export function addressIn(rand: Rand, asns: readonly number[], v6Share = 0): string {
  const { v4, v6 } = poolOf(asns);
  const pool = v6.length > 0 && rand() < v6Share ? v6 : v4;
  const r = pool[Math.floor(rand() * pool.length)] as Range;
  if (r.v6) return v6Text(r.start + offset(rand, r.size));
  // Not the .0 or .255 of a /24: a router or a broadcast address, never a user's.
  for (;;) {
    const n = r.start + offset(rand, r.size);
    const last = Number(n & 255n);
    if (last !== 0 && last !== 255) return v4Text(n);
  }
}

let serverRanges: { start: bigint; end: bigint }[] | undefined;

/** Whether an IPv4 address is in a hosting, cloud or VPN provider's range (of those listed here), by binary search. */
export function isServerAddress(ip: string): boolean {
  if (!serverRanges) {
    const asns = [...Object.values(HOSTING), ...Object.values(CLASSIC_CLOUDS), ...Object.values(VPN_PROVIDERS)].flat();
    serverRanges = asns
      .flatMap((a) => ranges().get(a) ?? [])
      .filter((r) => !r.v6)
      .map((r) => ({ start: r.start, end: r.start + r.size - 1n }))
      .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }
  const n = ip.split('.').reduce((acc, part) => (acc << 8n) | BigInt(part), 0n);
  let lo = 0;
  let hi = serverRanges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = serverRanges[mid] as { start: bigint; end: bigint };
    if (n < r.start) hi = mid - 1;
    else if (n > r.end) lo = mid + 1;
    else return true;
  }
  return false;
}

/** A neighbour of an IPv4 address in its /24 (another address of the same NAT gateway). */
export function sameSlash24(rand: Rand, ip: string): string {
  return `${ip.split('.').slice(0, 3).join('.')}.${1 + Math.floor(rand() * 254)}`;
}
