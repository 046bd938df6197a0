import type { IpAddress } from '../net/cidr.js';
import { bundledAsnTable, type AsnTable } from '../net/asn-table.js';
import { bundledHostingAsns, type HostingAsns } from './hosting-asns.js';

/**
 * Whether an address belongs to a hosting or VPN network, for the datacenter_ip rule: the autonomous
 * system announcing it (the bundled IP-to-AS table, src/net/asn-table.ts) looked up in the
 * classification of data/hosting-asns.txt. Judging by network rather than by the few providers that
 * publish range files covers every host that announces its own address space, however small.
 * Both are read once per process, on first use, and shared by every engine; nothing is downloaded.
 */

export type HostingHit = { asn: number; org: string; kind: 'hosting' | 'vpn'; source: string; range: string };

export type HostingNetworks = {
  /** Which data judged the address, shown in evidence. */
  version: string;
  lookup(addr: IpAddress): HostingHit | undefined;
};

export function hostingNetworks(table: AsnTable, classification: HostingAsns): HostingNetworks {
  return {
    version: `${table.version.replace('@ip-location-db/', '')}, hosting-asns ${classification.version}`,
    lookup(addr) {
      const announced = table.lookup(addr, (asn) => classification.classify(asn) !== undefined);
      const entry = announced && classification.classify(announced.asn);
      if (!entry || entry.kind === 'none') return undefined;
      return { asn: announced.asn, org: announced.org, kind: entry.kind, source: entry.source, range: announced.range };
    },
  };
}

let bundled: HostingNetworks | undefined;

export function bundledHostingNetworks(): HostingNetworks {
  bundled ??= hostingNetworks(bundledAsnTable(), bundledHostingAsns());
  return bundled;
}
