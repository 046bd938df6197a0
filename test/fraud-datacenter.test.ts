import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bundledHostingNetworks, hostingNetworks } from '../src/fraud/datacenter.js';
import { bundledHostingAsns, HOSTING_ASNS_FILE, parseHostingAsns } from '../src/fraud/hosting-asns.js';
import { bundledAsnTable, parseAsnTables } from '../src/net/asn-table.js';
import { parseAddress } from '../src/net/cidr.js';

/** The hosting and VPN classification (data/hosting-asns.txt) and how datacenter.ts applies it. */

const addr = (text: string) => {
  const a = parseAddress(text);
  if (!a) throw new Error(text);
  return a;
};

describe('the bundled classification', () => {
  const listed = bundledHostingAsns();
  const table = bundledAsnTable();

  it('is dated and holds a few hundred networks of each documented source', () => {
    expect(listed.version).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    const hosting = listed.entries.filter((e) => e.kind === 'hosting');
    expect(hosting.length).toBeGreaterThan(300);
    expect(listed.entries.filter((e) => e.kind === 'vpn').length).toBeGreaterThan(10);
    const documented = readFileSync(HOSTING_ASNS_FILE, 'utf8');
    for (const source of new Set(listed.entries.map((e) => e.source))) expect(documented).toContain(`#   ${source}`);
  });

  it('lists only networks the installed table announces, under the organisation it gives (regenerate.ts --write after an update)', () => {
    const stale = listed.entries.filter((e) => table.org(e.asn) !== e.org).map((e) => `AS${e.asn} ${e.org} / ${table.org(e.asn)}`);
    expect(stale).toEqual([]);
  });

  it.each([
    [16509, 'hosting'], [14618, 'hosting'], [396982, 'hosting'], [8075, 'hosting'], [31898, 'hosting'],
    [45102, 'hosting'], [37963, 'hosting'], [132203, 'hosting'], [24940, 'hosting'], [213230, 'hosting'],
    [16276, 'hosting'], [14061, 'hosting'], [63949, 'hosting'], [20473, 'hosting'], [51167, 'hosting'],
    [12876, 'hosting'], [60781, 'hosting'], [28753, 'hosting'], [47583, 'hosting'], [8560, 'hosting'],
    [60068, 'vpn'], [62240, 'vpn'], [9009, 'vpn'], [212238, 'vpn'], [209103, 'vpn'], [136787, 'vpn'],
  ])('classifies AS%i as %s', (asn, kind) => {
    expect(listed.classify(asn)?.kind).toBe(kind);
  });

  it('leaves out, on purpose, the networks that carry people: Google services, Cloudflare WARP, Private Relay, transit', () => {
    for (const asn of [15169, 13335, 36183, 54113, 20940, 714, 6939, 35540]) {
      expect(listed.entries.find((e) => e.asn === asn)?.kind, `AS${asn}`).toBe('none');
      expect(listed.classify(asn), `AS${asn}`).toBeUndefined();
    }
  });

  it("covers the providers' compute space the former range files held", () => {
    const networks = bundledHostingNetworks();
    for (const text of ['3.80.12.34', '54.160.1.1', '2600:1f18:1234::1', '159.203.10.10', '45.33.20.1', '2600:3c00::1', '129.146.5.5']) {
      expect(networks.lookup(addr(text))?.kind, text).toBe('hosting');
    }
  });
});

describe('parsing a classification', () => {
  it('reads kind, source and organisation, skipping comments; none is listed but not classified', () => {
    const c = parseHostingAsns('# snapshot: 2026-01-02\n# a comment\n\n64496 hosting provider Example Cloud, Inc.\n64497 none reviewed Example ISP\n');
    expect(c.version).toBe('2026-01-02');
    expect(c.classify(64496)).toEqual({ asn: 64496, kind: 'hosting', source: 'provider', org: 'Example Cloud, Inc.' });
    expect(c.classify(64497)).toBeUndefined();
    expect(c.entries.map((e) => e.asn)).toEqual([64496, 64497]);
  });

  it('refuses a bad line or a network listed twice, naming the line', () => {
    expect(() => parseHostingAsns('64496 hosting provider A\n64497 cloud provider B\n')).toThrow(/line 2: "64497 cloud provider B"/);
    expect(() => parseHostingAsns('64496 hosting provider\n')).toThrow(/line 1/);
    expect(() => parseHostingAsns('4294967296 hosting provider A\n')).toThrow(/line 1/);
    expect(() => parseHostingAsns('64496 hosting provider A\n64496 vpn provider A\n')).toThrow(/line 2: AS64496 is listed twice/);
  });
});

describe('hosting networks', () => {
  const table = parseAsnTables('3325256704,3325256959,64497,Example ISP\n3405803776,3405804031,64496,Example Cloud\n', '', 'asn test');
  const networks = hostingNetworks(table, parseHostingAsns('# snapshot: d\n64496 vpn lists Example Cloud\n64497 none reviewed Example ISP\n'));

  it('answer with the announcing AS, its organisation, the kind and the range', () => {
    expect(networks.lookup(addr('203.0.113.5'))).toEqual({ asn: 64496, org: 'Example Cloud', kind: 'vpn', source: 'lists', range: '203.0.113.0-203.0.113.255' });
    expect(networks.version).toBe('asn test, hosting-asns d');
  });

  it('say nothing of an address whose AS is unclassified or reviewed out, or that no AS announces', () => {
    expect(networks.lookup(addr('198.51.100.1'))).toBeUndefined();
    expect(networks.lookup(addr('192.0.2.1'))).toBeUndefined();
  });
});
