import { readFileSync } from 'node:fs';

/**
 * The classification of autonomous systems the datacenter_ip rule judges by: data/hosting-asns.txt
 * (its header documents the sources and the kinds; data/regenerate.ts checks it against the AS table).
 *
 * Line format: `<asn> <kind> <source> <organisation>`, kind `hosting`, `vpn` or `none` (reviewed and
 * deliberately not classified, kept so the suggestion script never proposes it again); `#` starts a
 * comment line; `# snapshot: <date>` dates the file.
 */

export const HOSTING_ASNS_FILE = new URL('./data/hosting-asns.txt', import.meta.url);

const NETWORK_KINDS = ['hosting', 'vpn', 'none'] as const;
export type NetworkKind = (typeof NETWORK_KINDS)[number];
export type ClassifiedAsn = { asn: number; kind: NetworkKind; source: string; org: string };

export type HostingAsns = {
  /** The file's snapshot date. */
  version: string;
  /** Every classified AS, `none` included, in file order. */
  entries: readonly ClassifiedAsn[];
  /** The hosting or VPN classification of an AS; undefined for `none` and unlisted ones. */
  classify(asn: number): ClassifiedAsn | undefined;
};

export function parseHostingAsns(text: string): HostingAsns {
  const entries: ClassifiedAsn[] = [];
  const byAsn = new Map<number, ClassifiedAsn>();
  let version = 'unversioned';
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const snapshot = /^#\s*snapshot:\s*(.+)$/.exec(line);
      if (snapshot) version = (snapshot[1] as string).trim();
      continue;
    }
    // A bad line is a broken data file; failing at start-up beats silently not classifying a network.
    const m = /^(\d{1,10})\s+(\S+)\s+(\S+)\s+(.+)$/.exec(line);
    const asn = Number(m?.[1]);
    const kind = m?.[2] as NetworkKind;
    if (!m || asn > 0xffffffff || !NETWORK_KINDS.includes(kind)) {
      throw new Error(`hosting ASNs, line ${n + 1}: "${line}" is not "<asn> <hosting|vpn|none> <source> <organisation>"`);
    }
    if (byAsn.has(asn)) throw new Error(`hosting ASNs, line ${n + 1}: AS${asn} is listed twice`);
    const entry = { asn, kind, source: m[3] as string, org: (m[4] as string).trim() };
    entries.push(entry);
    byAsn.set(asn, entry);
  }
  return {
    version,
    entries,
    classify(asn) {
      const entry = byAsn.get(asn);
      return entry && entry.kind !== 'none' ? entry : undefined;
    },
  };
}

let bundled: HostingAsns | undefined;

export function bundledHostingAsns(): HostingAsns {
  bundled ??= parseHostingAsns(readFileSync(HOSTING_ASNS_FILE, 'utf8'));
  return bundled;
}
