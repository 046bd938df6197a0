import type { IPv6 } from 'ipaddr.js';
import { parseAddress, type IpAddress } from '../net/cidr.js';
import type { UserAddress } from './rule.js';

/**
 * User addresses as the fraud rules count them. An address that can never be a user's own public
 * address (loopback, private, link-local, the carrier side of CGNAT) is a proxy hop the engine was
 * not told about (TRUST_PROXY): counting it would pile every user onto one key, so it gets no count
 * key. Documentation ranges (192.0.2.0/24, 2001:db8::/32) are counted like public ones.
 */

const NOT_A_USER = new Set(['unspecified', 'loopback', 'private', 'linkLocal', 'uniqueLocal', 'carrierGradeNat', 'multicast', 'broadcast']);

/** An IPv6 subscriber gets a /64 and may rotate through it freely; one /64 is one user. */
const IPV6_COUNT_PREFIX_GROUPS = 4;

export function userAddress(text: string | null | undefined): UserAddress | undefined {
  if (!text) return undefined;
  const addr = parseAddress(text);
  if (!addr) return undefined;
  return { text: addr.toString(), addr, countKey: countKey(addr) };
}

export function countKey(addr: IpAddress): string | undefined {
  if (NOT_A_USER.has(addr.range())) return undefined;
  if (addr.kind() === 'ipv4') return addr.toString();
  const groups = (addr as IPv6).parts.slice(0, IPV6_COUNT_PREFIX_GROUPS).map((p) => p.toString(16));
  return `${groups.join(':')}::/64`;
}
