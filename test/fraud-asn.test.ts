import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bundledHostingNetworks } from '../src/fraud/datacenter.js';
import { bundledAsnTable, parseAsnTables } from '../src/net/asn-table.js';
import { parseAddress } from '../src/net/cidr.js';

/**
 * The IP-to-AS table (src/net/asn-table.ts) read from @ip-location-db/asn, and the hosting
 * classification it feeds: real provider addresses taken from the package's own table.
 */

const addr = (text: string) => {
  const a = parseAddress(text);
  if (!a) throw new Error(text);
  return a;
};

describe('reading an AS table', () => {
  const v4 = [
    '16777216,16777471,13335,"Cloudflare, Inc."',
    '35309568,35313663,201907,"LLC ""SPUTNIK"""',
    '35338496,35338751,201907,"LLC ""SPUTNIK"""',
    '3405803776,3405804031,64496,Plain Name Ltd',
  ].join('\n');
  const v6 = '42540766411548556537219203370089185280,42540766411549765463038817999263891455,64496,Plain Name Ltd\r\n' +
    '340282366920938463463374607431768211454,340282366920938463463374607431768211455,64511,Top Of Space\r\n';
  const table = parseAsnTables(v4, v6, 'test');

  it('unquotes organisations with commas and doubled quotes, one per AS', () => {
    expect(table.lookup(addr('1.0.0.7'))).toEqual({ asn: 13335, org: 'Cloudflare, Inc.', range: '1.0.0.0-1.0.0.255' });
    expect(table.lookup(addr('2.26.200.1'))).toMatchObject({ asn: 201907, org: 'LLC "SPUTNIK"' });
    expect(table.org(201907)).toBe('LLC "SPUTNIK"');
    expect(table.size).toEqual({ v4: 4, v6: 2, asns: 4 });
  });

  it('holds both bounds of a range and nothing past them, without a trailing newline or with CRLF', () => {
    expect(table.lookup(addr('203.0.113.0'))?.asn).toBe(64496);
    expect(table.lookup(addr('203.0.113.255'))?.asn).toBe(64496);
    expect(table.lookup(addr('203.0.114.0'))).toBeUndefined();
    expect(table.lookup(addr('203.0.112.255'))).toBeUndefined();
    expect(table.lookup(addr('0.0.0.0'))).toBeUndefined();
    expect(table.lookup(addr('255.255.255.255'))).toBeUndefined();
  });

  it('reads 128-bit IPv6 bounds exactly, up to the last address', () => {
    expect(table.lookup(addr('2001:db8:dc:ffff:ffff:ffff:ffff:ffff'))).toEqual({ asn: 64496, org: 'Plain Name Ltd', range: '2001:db8:dc::-2001:db8:dc:ffff:ffff:ffff:ffff:ffff' });
    expect(table.lookup(addr('2001:db8:dd::'))).toBeUndefined();
    expect(table.lookup(addr('2001:db8:db:ffff:ffff:ffff:ffff:ffff'))).toBeUndefined();
    expect(table.lookup(addr('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'))?.org).toBe('Top Of Space');
    expect(table.lookup(addr('ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd'))).toBeUndefined();
  });

  it('refuses a broken table, naming the row', () => {
    expect(() => parseAsnTables('1,2,3,a\n4,x,6,b\n', '', 't')).toThrow(/IPv4 AS table, row 2/);
    expect(() => parseAsnTables('1,4294967296,3,a\n', '', 't')).toThrow(/row 1: a bound or AS number is not a 32-bit decimal/);
    expect(() => parseAsnTables('5,6,3,a\n1,2,3,a\n', '', 't')).toThrow(/row 2: ranges are not in ascending order/);
    expect(() => parseAsnTables('1,2,3,"a\n', '', 't')).toThrow(/bad quoting/);
    expect(() => parseAsnTables('', '340282366920938463463374607431768211456,1,3,a\n', 't')).toThrow(/IPv6 AS table, row 1: a bound exceeds 128 bits/);
  });

  it('answers like a linear scan over random tables, for both families', () => {
    const v4Bound = fc.integer({ min: 0, max: 0xffffffff });
    const v6Bound = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n });
    const toV6 = (n: bigint) => {
      const parts = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
      return parts.join(':');
    };
    const ranges = <T extends number | bigint>(bound: fc.Arbitrary<T>) =>
      fc.uniqueArray(bound, { minLength: 0, maxLength: 24 }).map((points) => {
        // Sorted distinct points paired into disjoint ranges [a, b], as the package lays them out.
        const sorted = [...points].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        const out: [T, T, number][] = [];
        for (let i = 0; i + 1 < sorted.length; i += 2) out.push([sorted[i] as T, sorted[i + 1] as T, 64512 + i]);
        return out;
      });
    fc.assert(
      fc.property(ranges(v4Bound), ranges(v6Bound), fc.array(v4Bound, { maxLength: 20 }), fc.array(v6Bound, { maxLength: 20 }), (r4, r6, probes4, probes6) => {
        const csv = (rows: [unknown, unknown, number][]) => rows.map(([a, b, asn]) => `${a},${b},${asn},org ${asn}`).join('\n');
        const t = parseAsnTables(csv(r4), csv(r6), 'prop');
        const withEdges4 = [...probes4, ...r4.flatMap(([a, b]) => [a, b, a - 1, b + 1])].filter((p) => p >= 0 && p <= 0xffffffff);
        for (const p of withEdges4) {
          const expected = r4.find(([a, b]) => a <= p && p <= b)?.[2];
          const text = `${p >>> 24}.${(p >>> 16) & 255}.${(p >>> 8) & 255}.${p & 255}`;
          expect(t.lookup(addr(text))?.asn, text).toBe(expected);
        }
        const withEdges6 = [...probes6, ...r6.flatMap(([a, b]) => [a, b, a - 1n, b + 1n])].filter((p) => p >= 0n && p < 1n << 128n);
        for (const p of withEdges6) {
          const expected = r6.find(([a, b]) => a <= p && p <= b)?.[2];
          const a6 = addr(toV6(p));
          // IPv4-mapped addresses are read as the IPv4 they carry; the IPv6 table is not asked.
          if (a6.kind() === 'ipv6') expect(t.lookup(a6)?.asn, toV6(p)).toBe(expected);
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('the bundled table', () => {
  const table = bundledAsnTable();
  const hosting = bundledHostingNetworks();

  it('is loaded once per process, whole', () => {
    expect(bundledAsnTable()).toBe(table);
    expect(bundledHostingNetworks()).toBe(hosting);
    expect(table.size.v4).toBeGreaterThan(400_000);
    expect(table.size.v6).toBeGreaterThan(100_000);
    expect(table.version).toMatch(/^@ip-location-db\/asn \d+\.\d+\.\d+$/);
  });

  it.each([
    ['5.9.10.10', 24940, 'Hetzner Online GmbH'],
    ['51.38.10.10', 16276, 'OVH SAS'],
    ['35.200.1.1', 396982, 'Google LLC'],
    ['20.50.1.1', 8075, 'Microsoft Corporation'],
    ['47.88.1.1', 45102, 'Alibaba (US) Technology Co., Ltd.'],
    ['207.180.200.1', 51167, 'Contabo GmbH'],
    ['45.32.1.1', 20473, 'The Constant Company, LLC'],
    ['51.15.1.1', 12876, 'Scaleway SAS'],
    ['3.80.12.34', 14618, 'Amazon.com, Inc.'],
    ['52.95.1.1', 16509, 'Amazon.com, Inc.'],
    ['159.203.17.41', 14061, 'DigitalOcean, LLC'],
    ['45.33.20.1', 63949, 'Akamai Technologies, Inc.'],
    ['129.146.5.5', 31898, 'Oracle Corporation'],
    ['43.128.1.1', 132203, 'Shenzhen Tencent Computer Systems Company Limited'],
    ['2a01:4f8:c17:1::1', 24940, 'Hetzner Online GmbH'],
  ])('%s is a hosting address of AS%i %s', (text, asn, org) => {
    expect(hosting.lookup(addr(text))).toMatchObject({ asn, org, kind: 'hosting' });
  });

  it('classifies commercial VPN networks as vpn', () => {
    expect(hosting.lookup(addr('185.159.157.1'))).toMatchObject({ asn: 209103, org: 'Proton AG', kind: 'vpn' });
    expect(hosting.lookup(addr('193.27.14.1'))).toMatchObject({ asn: 9009, org: 'M247 Europe SRL', kind: 'vpn' });
  });

  it.each([
    ['24.5.0.1', 7922, 'Comcast Cable Communications, LLC'],
    ['79.192.0.1', 3320, 'Deutsche Telekom AG'],
    ['174.192.0.1', 22394, 'Verizon Business'],
    ['49.32.0.1', 55836, 'Reliance Jio Infocomm Limited'],
    ['2003:e0::1', 3320, 'Deutsche Telekom AG'],
    ['2601::1', 7922, 'Comcast Cable Communications, LLC'],
    ['2409:4000::1', 55836, 'Reliance Jio Infocomm Limited'],
    // Public resolvers and privacy relays carry people: reviewed and left out (see hosting-asns.txt).
    ['8.8.8.8', 15169, 'Google LLC'],
    ['104.28.0.1', 13335, 'Cloudflare, Inc.'],
    ['172.224.226.1', 36183, 'Akamai Technologies, Inc.'],
  ])('%s (AS%i %s) is announced but not hosting', (text, asn, org) => {
    expect(table.lookup(addr(text))).toMatchObject({ asn, org });
    expect(hosting.lookup(addr(text))).toBeUndefined();
  });

  it('reads an IPv4-mapped IPv6 address as the IPv4 it carries', () => {
    expect(hosting.lookup(addr('::ffff:5.9.10.10'))).toMatchObject({ asn: 24940, kind: 'hosting', range: '5.9.0.0-5.9.255.255' });
    expect(hosting.lookup(addr('::ffff:24.5.0.1'))).toBeUndefined();
  });

  it('finds no AS for addresses no one announces', () => {
    for (const text of ['0.1.2.3', '10.1.2.3', '100.64.0.1', '198.51.100.7', '2001:db8::1', 'fe80::1']) {
      expect(table.lookup(addr(text)), text).toBeUndefined();
      expect(hosting.lookup(addr(text)), text).toBeUndefined();
    }
  });
});
