import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Address and CIDR handling. Only canonical textual forms are addresses: `127.1`, `0x7f.0.0.1` and
 * `2130706433` are what inet_aton would accept and what allowlist bypasses are built from, so they
 * are refused rather than normalised. IPv4-mapped IPv6 is reduced to the IPv4 it carries so that an
 * IPv4 allowlist entry matches a dual-stack socket.
 */

export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;
export type Cidr = { text: string; range: [IpAddress, number] };

export function parseAddress(text: string): IpAddress | undefined {
  // Zone identifiers (fe80::1%eth0) name an interface of the sender's host; they mean nothing here.
  if (text.includes('%') || isIP(text) === 0) return undefined;
  const parsed = ipaddr.parse(text);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    return (parsed as ipaddr.IPv6).toIPv4Address();
  }
  return parsed;
}

/** The one spelling an address is stored and compared under. */
export function canonicalAddress(text: string): string | undefined {
  const addr = parseAddress(text);
  return addr?.toString();
}

export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const addrText = slash === -1 ? text : text.slice(0, slash);
  const addr = parseAddress(addrText);
  if (!addr) return undefined;
  const maxBits = isIP(addrText) === 4 ? 32 : 128;
  let bits = maxBits;
  if (slash !== -1) {
    const bitsText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bitsText)) return undefined;
    bits = Number(bitsText);
    if (bits > maxBits) return undefined;
  }
  // A mapped address was reduced to IPv4, so its prefix length shrinks with it (a bare one becomes /32).
  if (addr.kind() === 'ipv4' && isIP(addrText) === 6) {
    if (bits < 96) return undefined;
    bits -= 96;
  }
  // Host bits below the prefix are dropped so one range has one spelling, and it shows what it matches.
  const network = networkAddress(addr, bits);
  return { text: `${network.toString()}/${bits}`, range: [network, bits] };
}

function networkAddress(addr: IpAddress, bits: number): IpAddress {
  const bytes = addr.toByteArray().map((byte, i) => {
    const kept = Math.max(0, Math.min(8, bits - i * 8));
    return byte & ((0xff << (8 - kept)) & 0xff);
  });
  return ipaddr.fromByteArray(bytes);
}

export function parseCidrList(texts: string[]): { ok: true; value: Cidr[] } | { ok: false; error: string; index: number } {
  const value: Cidr[] = [];
  for (const [index, text] of texts.entries()) {
    const cidr = parseCidr(text);
    if (!cidr) return { ok: false, index, error: `"${text}" is not a canonical IP address or CIDR range` };
    value.push(cidr);
  }
  return { ok: true, value };
}

export function inRanges(addr: IpAddress, ranges: readonly Cidr[]): boolean {
  for (const cidr of ranges) {
    const [base, bits] = cidr.range;
    if (base.kind() === addr.kind() && addr.match(base as never, bits)) return true;
  }
  return false;
}
