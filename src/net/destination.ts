import ipaddr from 'ipaddr.js';
import { parseAddress, type IpAddress } from './cidr.js';

/**
 * Where the engine may send an outbound request. Only globally routable unicast addresses: loopback,
 * private, link-local (cloud metadata at 169.254.169.254), CGNAT (another metadata range), multicast
 * and the IPv6 transition ranges that can embed any of those are refused.
 */

export function isPublicAddress(addr: IpAddress): boolean {
  return addr.range() === 'unicast';
}

export type UrlCheck = { ok: true; url: URL } | { ok: false; message: string };

/** Static checks on a destination URL; the address actually connected to is checked again at send time. */
export function checkDestinationUrl(text: string, allowPrivate: boolean): UrlCheck {
  const url = parseHttpUrl(text);
  if (!url.ok) return url;
  if (allowPrivate) return url;
  const host = url.url.hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host.endsWith('.localhost') || host.endsWith('.local') || host.endsWith('.internal')) {
    return { ok: false, message: `host "${host}" is a local name` };
  }
  if (ipaddr.isValid(host)) {
    const addr = parseAddress(host);
    if (!addr || !isPublicAddress(addr)) return { ok: false, message: `host "${host}" is not a public address` };
  }
  return url;
}

/** Macros such as {clickid} are allowed anywhere after the host; the scheme must be http or https. */
export function parseHttpUrl(text: string): UrlCheck {
  if (text.length > 2048) return { ok: false, message: 'must be at most 2048 characters' };
  if (/[\u0000-\u0020\u007f]/.test(text)) return { ok: false, message: 'must not contain spaces or control characters' };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, message: 'must be an absolute URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, message: 'only http and https URLs are allowed' };
  if (url.username || url.password) return { ok: false, message: 'must not carry credentials' };
  if (!url.hostname || /[{}]/.test(url.hostname)) return { ok: false, message: 'must name a host' };
  return { ok: true, url };
}
