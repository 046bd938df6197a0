import { promises as dns } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { buildConnector } from 'undici';
import { parseAddress } from '../net/cidr.js';
import { isPublicAddress } from '../net/destination.js';

/**
 * SSRF protection at the socket. The publisher's host is resolved by our own lookup, which refuses
 * the whole answer if any address is loopback, private, link-local, CGNAT, multicast or reserved;
 * the socket then connects to exactly the addresses that lookup returned, so a DNS answer that changes
 * between a check and the connect (rebinding) has nothing to slip through. After connecting, the
 * peer address is checked once more, which also covers a literal IP host that never reaches lookup.
 * Nothing is sent on a refused connection.
 */

export type ResolvedAddress = { address: string; family: number };
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = (hostname) => dns.lookup(hostname, { all: true, verbatim: true });

export class DestinationRefusedError extends Error {
  readonly code = 'ERR_DESTINATION_REFUSED';
  override name = 'DestinationRefusedError';
}

/** Why an address may not be connected to, or undefined when it is a public unicast address. */
export function addressRefusal(address: string): string | undefined {
  const addr = parseAddress(address);
  if (!addr) return `${address} is not a canonical address`;
  if (!isPublicAddress(addr)) return `${addr.toString()} is a ${addr.range()} address`;
  return undefined;
}

/** Why a DNS answer may not be used (its first forbidden address); undefined when every address is public. */
function answerRefusal(answers: ResolvedAddress[]): string | undefined {
  for (const a of answers) {
    const refusal = addressRefusal(a.address);
    if (refusal) return refusal;
  }
  return undefined;
}

/** How long a publisher's create or update waits for its host to resolve before accepting it unchecked. */
const CHECK_RESOLVE_TIMEOUT_MS = 2_000;

/**
 * Why a destination host may not be used, judged by what it resolves to now; undefined when every
 * address is public, or when the name does not resolve (yet): the check at connect time still stands
 * between the engine and whatever the name points to when a postback is sent.
 */
export async function resolvedHostRefusal(hostname: string, resolve: Resolver): Promise<string | undefined> {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) return undefined; // a literal address is judged without DNS (net/destination.ts)
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((done) => {
    timer = setTimeout(() => done(undefined), CHECK_RESOLVE_TIMEOUT_MS);
  });
  try {
    const answers = await Promise.race([resolve(host).catch(() => undefined), timeout]);
    const refusal = answerRefusal(answers ?? []);
    return refusal ? `host "${host}" resolves to a forbidden address: ${refusal}` : undefined;
  } finally {
    clearTimeout(timer);
  }
}

export function guardedLookup(resolve: Resolver, allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (answers) => {
        const refusal = allowPrivate ? undefined : answerRefusal(answers);
        if (refusal) return callback(new DestinationRefusedError(`${hostname} resolved to a forbidden address: ${refusal}`), '', 0);
        const family = options.family === 4 || options.family === 6 ? options.family : 0;
        const usable = family === 0 ? answers : answers.filter((a) => a.family === family);
        const first = usable[0];
        if (!first) {
          const err = Object.assign(new Error(`${hostname} has no usable address`), { code: 'ENOTFOUND' });
          return callback(err, '', 0);
        }
        if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: ResolvedAddress[]) => void)(null, usable);
        return callback(null, first.address, first.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}

export type GuardOptions = { allowPrivate: boolean; resolve: Resolver; connectTimeoutMs: number };

export function guardedConnector(opts: GuardOptions): buildConnector.connector {
  const base = buildConnector({ lookup: guardedLookup(opts.resolve, opts.allowPrivate), timeout: opts.connectTimeoutMs });
  return (connectOptions, callback) => {
    if (!opts.allowPrivate) {
      const host = connectOptions.hostname.replace(/^\[|\]$/g, '');
      const refusal = isIP(host) ? addressRefusal(host) : undefined;
      if (refusal) return callback(new DestinationRefusedError(`host ${refusal}`), null);
    }
    base(connectOptions, (err, socket) => {
      if (err || !socket) return callback(err ?? new Error('connect failed'), null);
      if (!opts.allowPrivate) {
        const peer = socket.remoteAddress;
        const refusal = peer ? addressRefusal(peer) : 'the peer address is unknown';
        if (refusal) {
          socket.destroy();
          return callback(new DestinationRefusedError(`connected peer ${refusal}`), null);
        }
      }
      callback(null, socket);
    });
  };
}
