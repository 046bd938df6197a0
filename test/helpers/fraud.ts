import type { Offer } from '../../src/catalog/catalog.js';
import { hostingNetworks } from '../../src/fraud/datacenter.js';
import { parseHostingAsns } from '../../src/fraud/hosting-asns.js';
import type { Rule, RuleOutcome } from '../../src/fraud/rule.js';
import { ruleContext } from '../../src/fraud/scorer.js';
import type { ConversionCounts } from '../../src/fraud/state.js';
import { parseAsnTables } from '../../src/net/asn-table.js';
import type { ScoreInput } from '../../src/postback/types.js';

/** Builders for fraud tests: a plausible honest conversion, changed only where a test says so. */

export const BROWSER_UA = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';
export const ANDROID_UA = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36';
export const WINDOWS_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';

export const T0 = new Date('2026-11-21T12:00:00.000Z');

export function testOffer(overrides: Partial<Offer> = {}): Offer {
  return {
    id: 'off_test',
    seq: 1,
    advertiserId: 'adv_test',
    name: 'Offer',
    url: 'https://adv.example/lp?cid={clickid}',
    payoutMinor: 250n,
    revenueMinor: 250n,
    currency: 'USD',
    goalsInput: {},
    goals: Object.create(null),
    capsInput: [],
    caps: [],
    clickTtlS: 2_592_000,
    dailyCap: null,
    fraud: {},
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

let txSeq = 0;

/** An honest conversion 10 minutes after its click, from a documentation address. */
export function scoreInput(overrides: Partial<ScoreInput> = {}): ScoreInput {
  const now = overrides.now ?? T0;
  return {
    advertiserId: 'adv_test',
    offer: testOffer(),
    publisherId: 'pub_test',
    clickId: `click_${++txSeq}`,
    clickCreatedAt: new Date(now.getTime() - 600_000),
    click: { ip: '198.51.100.7', userAgent: BROWSER_UA, subs: ['s1', null, null, null, null] },
    userIp: undefined,
    userAgent: undefined,
    txid: `tx_${txSeq}`,
    event: 'conversion',
    status: 'approved',
    payoutMinor: 250n,
    currency: 'USD',
    payoutSent: false,
    now,
    ...overrides,
  };
}

export const counts = (overrides: Partial<ConversionCounts> = {}): ConversionCounts => ({
  addresses: [],
  clickConversions: 1,
  offerToday: 1,
  offerBaseline: { conversions: 0, clicks: 0 },
  segment: { conversions: 1, clicks: 100 },
  ...overrides,
});

/**
 * A tiny AS table and classification so rule tests do not depend on the bundled snapshot's contents:
 * 203.0.113.0/24 and 2001:db8:dc::/48 are a hosting AS, 2001:db8:7c::/48 a VPN's, 198.51.100.0/24
 * an access network's (announced, not classified).
 */
export const testDatacenter = hostingNetworks(
  parseAsnTables(
    '3325256704,3325256959,64497,Test Broadband\n3405803776,3405804031,64496,"Testcloud, Ltd."\n',
    '42540766411432499658536198969317392384,42540766411433708584355813598492098559,64500,Testvpn AB\n' +
      '42540766411548556537219203370089185280,42540766411549765463038817999263891455,64496,"Testcloud, Ltd."\n',
    'test-asn 1',
  ),
  parseHostingAsns('# snapshot: test\n64496 hosting provider Testcloud, Ltd.\n64500 vpn provider Testvpn AB\n'),
);

export function evaluate(rule: Rule, input: ScoreInput, opts: { settings?: Record<string, unknown>; counts?: ConversionCounts; countsError?: string } = {}): RuleOutcome {
  const ctx = ruleContext(input, testDatacenter, opts.counts ?? (opts.countsError ? undefined : counts()), opts.countsError);
  return rule.evaluate(ctx, { ...rule.defaults, ...opts.settings });
}
