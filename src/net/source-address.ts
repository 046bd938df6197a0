import { inRanges, parseAddress, type Cidr, type IpAddress } from './cidr.js';

/**
 * Who sent a request. The socket's peer is the truth unless it is one of our own proxies
 * (TRUST_PROXY); then X-Forwarded-For is read from the right, skipping our proxies, and the first
 * hop that is not ours is the source. Anything left of it was written by the client and is never
 * believed. A hop that is not a canonical address makes the source unknown (fail closed).
 */

export type SourceAddress = { ok: true; address: IpAddress; text: string } | { ok: false; why: string };

/**
 * Parsed peers, by the socket's address text. Every request on a keep-alive connection, and every
 * connection from the same proxy, has the same peer; parsing it again was a visible share of a
 * click redirect. Shared results: callers never modify them.
 */
const peers = new Map<string, SourceAddress>();
const PEER_CACHE_MAX = 10_000;

function peerSource(peer: string): SourceAddress {
  let source = peers.get(peer);
  if (source === undefined) {
    const address = parseAddress(peer);
    source = address ? { ok: true, address, text: address.toString() } : { ok: false, why: 'peer address unknown' };
    if (peers.size >= PEER_CACHE_MAX) peers.clear();
    peers.set(peer, source);
  }
  return source;
}

export function resolveSourceAddress(
  peer: string | undefined,
  forwardedFor: string | string[] | undefined,
  trusted: readonly Cidr[],
): SourceAddress {
  const fromPeer = peer ? peerSource(peer) : undefined;
  if (!fromPeer?.ok) return { ok: false, why: 'peer address unknown' };
  const peerAddr = fromPeer.address;
  if (trusted.length === 0 || forwardedFor === undefined || !inRanges(peerAddr, trusted)) return fromPeer;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h.length > 0);
  let source: IpAddress = peerAddr;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = parseAddress(hops[i] as string);
    if (!hop) return { ok: false, why: `X-Forwarded-For entry "${hops[i]}" is not a canonical address` };
    source = hop;
    if (!inRanges(hop, trusted)) break;
  }
  return { ok: true, address: source, text: source.toString() };
}
