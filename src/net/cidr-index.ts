import type { IPv4, IPv6 } from 'ipaddr.js';
import type { Cidr, IpAddress } from './cidr.js';

/**
 * A set of CIDR ranges that finds the range holding an address without scanning them all: each range
 * is filed under the buckets (leading 16 bits of IPv4, leading 32 bits of IPv6) it covers, so a lookup
 * tests only the handful sharing the address's bucket, each with ipaddr.js's own `match`. The bucket
 * is a prefilter, never the verdict. Ranges wider than MAX_EXPANSION buckets (an IPv4 /3, an IPv6 /19)
 * would bloat the map, so they sit in a short list tested on every lookup.
 */

const V4_BUCKET_BITS = 16;
const V6_BUCKET_BITS = 32;
const MAX_EXPANSION = 4096;

export type CidrEntry<T> = { cidr: Cidr; label: T };

export class CidrIndex<T = string> {
  private readonly v4 = new Map<number, CidrEntry<T>[]>();
  private readonly v6 = new Map<number, CidrEntry<T>[]>();
  private readonly wide: CidrEntry<T>[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(cidr: Cidr, label: T): void {
    const entry = { cidr, label };
    const [base, bits] = cidr.range;
    const isV4 = base.kind() === 'ipv4';
    const bucketBits = isV4 ? V4_BUCKET_BITS : V6_BUCKET_BITS;
    const map = isV4 ? this.v4 : this.v6;
    this.count++;
    if (bits >= bucketBits) {
      push(map, bucketOf(base), entry);
      return;
    }
    const span = 2 ** (bucketBits - bits);
    if (span > MAX_EXPANSION) {
      this.wide.push(entry);
      return;
    }
    // The first covered bucket has the range's host bits (within the bucket key) cleared.
    const first = Math.floor(bucketOf(base) / span) * span;
    for (let b = first; b < first + span; b++) push(map, b, entry);
  }

  /** The first range (in insertion order within a bucket) that holds the address. */
  find(addr: IpAddress): CidrEntry<T> | undefined {
    const isV4 = addr.kind() === 'ipv4';
    const candidates = (isV4 ? this.v4 : this.v6).get(bucketOf(addr));
    if (candidates) {
      for (const entry of candidates) if (matches(addr, entry.cidr)) return entry;
    }
    for (const entry of this.wide) if (matches(addr, entry.cidr)) return entry;
    return undefined;
  }
}

function matches(addr: IpAddress, cidr: Cidr): boolean {
  const [base, bits] = cidr.range;
  return base.kind() === addr.kind() && addr.match(base as never, bits);
}

function bucketOf(addr: IpAddress): number {
  if (addr.kind() === 'ipv4') {
    const o = (addr as IPv4).octets;
    return ((o[0] as number) << 8) | (o[1] as number);
  }
  const p = (addr as IPv6).parts;
  return (p[0] as number) * 65536 + (p[1] as number);
}

function push<T>(map: Map<number, CidrEntry<T>[]>, key: number, entry: CidrEntry<T>): void {
  const list = map.get(key);
  if (list) list.push(entry);
  else map.set(key, [entry]);
}
