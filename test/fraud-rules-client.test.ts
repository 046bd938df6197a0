import { describe, expect, it } from 'vitest';
import { clickIpMismatch, datacenterIp } from '../src/fraud/rules/network.js';
import { botKind, botUserAgent, isBotUserAgent, osFamily, uaMismatch } from '../src/fraud/rules/user-agent.js';
import { ANDROID_UA, BROWSER_UA, counts, evaluate, scoreInput, WINDOWS_UA } from './helpers/fraud.js';

const click = (ip: string | null, userAgent: string | null = BROWSER_UA) => ({ ip, userAgent, subs: [null, null, null, null, null] });

describe('datacenter_ip', () => {
  it('fires on a hosting address at the click and names the AS, its organisation, the kind and the range', () => {
    const out = evaluate(datacenterIp, scoreInput({ click: click('203.0.113.9') }));
    expect(out).toMatchObject({
      evaluated: true,
      fired: true,
      value: '203.0.113.9',
      threshold: 'AS64496 Testcloud, Ltd. (hosting)',
      scope: 'click address',
      note: 'its clicks were not counted; 203.0.113.0-203.0.113.255; networks of test-asn 1, hosting-asns test',
    });
  });

  it("fires on a hosting address in the postback's ip when the click's is residential", () => {
    const out = evaluate(datacenterIp, scoreInput({ click: click('198.51.100.7'), userIp: '2001:db8:dc::1' }));
    expect(out).toMatchObject({ fired: true, value: '2001:db8:dc::1', scope: 'postback ip', threshold: 'AS64496 Testcloud, Ltd. (hosting)' });
  });

  it('tells a VPN network from a hosting one: a hosting network is worth a review (40), a VPN exit few points (vpnPoints 15)', () => {
    const hosting = evaluate(datacenterIp, scoreInput({ click: click('203.0.113.9') }));
    expect(hosting).toMatchObject({ fired: true, threshold: 'AS64496 Testcloud, Ltd. (hosting)' });
    expect(hosting.points).toBeUndefined(); // the rule's own points, 40 by default
    expect(datacenterIp.defaults.points).toBe(40);
    const out = evaluate(datacenterIp, scoreInput({ click: click('2001:db8:7c::77') }));
    expect(out).toMatchObject({ fired: true, value: '2001:db8:7c::77', threshold: 'AS64500 Testvpn AB (vpn)', points: 15 });
    expect(evaluate(datacenterIp, scoreInput({ click: click('2001:db8:7c::77') }), { settings: { vpnPoints: 5 } }).points).toBe(5);
  });

  it('judges by the hosting address when the other one is a VPN exit', () => {
    const out = evaluate(datacenterIp, scoreInput({ click: click('2001:db8:7c::77'), userIp: '203.0.113.9' }));
    expect(out).toMatchObject({ fired: true, value: '203.0.113.9', scope: 'postback ip', threshold: 'AS64496 Testcloud, Ltd. (hosting)' });
    expect(out.points).toBeUndefined();
  });

  it('scores a hosting or VPN address as a shared exit (sharedExitPoints) when its clicks spread over publishers, and a server clicking for one publisher in full', () => {
    const seen = (key: string, clicks: number, publishers: number, topPublisherClicks: number) =>
      counts({ addresses: [{ key, conversions: 1, clicks, spread: { publishers, topPublisherClicks } }] });
    const at = (ip: string, c: ReturnType<typeof counts>, settings?: Record<string, unknown>) =>
      evaluate(datacenterIp, scoreInput({ click: click(ip) }), { counts: c, settings });
    // A VPN exit on a cloud server: 12 clicks through 5 publishers, none with more than two thirds of them.
    expect(at('203.0.113.9', seen('203.0.113.9', 12, 5, 4))).toMatchObject({
      fired: true,
      points: 10,
      threshold: 'AS64496 Testcloud, Ltd. (hosting)',
      note: expect.stringMatching(/^a shared exit: 12 clicks from this address in the window through 5 publishers \(4 through the largest\); 203\.0\.113\.0-/),
    });
    // A flood server: 400 clicks, all one publisher, or one publisher and a few decoys; a bot's server with two clicks.
    const flood = at('203.0.113.9', seen('203.0.113.9', 400, 1, 400));
    expect(flood.points).toBeUndefined(); // the rule's 40
    expect(flood.note).toMatch(/^not a shared exit: 400 clicks from this address in the window through 1 publisher \(400 through the largest\)/);
    expect(at('203.0.113.9', seen('203.0.113.9', 400, 3, 390)).points).toBeUndefined();
    expect(at('203.0.113.9', seen('203.0.113.9', 2, 2, 1)).points).toBeUndefined(); // below sharedExitClicks 3
    expect(at('203.0.113.9', seen('203.0.113.9', 3, 2, 2)).points).toBe(10); // two thirds through one: still shared
    // A VPN provider's address: 15 until its clicks show it shared, then 10 too.
    expect(at('2001:db8:7c::77', seen('2001:db8:7c:0::/64', 1, 1, 1)).points).toBe(15);
    expect(at('2001:db8:7c::77', seen('2001:db8:7c:0::/64', 30, 9, 8)).points).toBe(10);
    // The settings move each line.
    expect(at('203.0.113.9', seen('203.0.113.9', 12, 5, 4), { sharedExitPublishers: 6 }).points).toBeUndefined();
    expect(at('203.0.113.9', seen('203.0.113.9', 12, 5, 4), { sharedExitTopShare: 0.3 }).points).toBeUndefined();
    expect(at('203.0.113.9', seen('203.0.113.9', 12, 5, 4), { sharedExitPoints: 0 }).points).toBe(0);
    // 0 turns the allowance off: every hosting address is worth the full points.
    expect(at('203.0.113.9', seen('203.0.113.9', 500, 50, 20), { sharedExitClicks: 0 })).toMatchObject({ points: undefined, note: expect.stringMatching(/^the shared-exit allowance is off;/) });
    // Clicks without their spread (not asked for) or no counters at all (Redis down): nothing shows the address is shared.
    expect(at('203.0.113.9', counts({ addresses: [{ key: '203.0.113.9', conversions: 1, clicks: 500 }] })).points).toBeUndefined();
    const down = evaluate(datacenterIp, scoreInput({ click: click('203.0.113.9') }), { countsError: 'redis down' });
    expect(down).toMatchObject({ points: undefined, note: expect.stringMatching(/^its clicks are unknown \(shared counters unavailable\)/) });
  });

  it('lets the strongest address decide: a hosting server at the click outweighs a shared VPN exit in the postback ip', () => {
    const c = counts({
      addresses: [
        { key: '203.0.113.9', conversions: 1, clicks: 1, spread: { publishers: 1, topPublisherClicks: 1 } },
        { key: '2001:db8:7c:0::/64', conversions: 1, clicks: 40, spread: { publishers: 12, topPublisherClicks: 9 } },
      ],
    });
    const out = evaluate(datacenterIp, scoreInput({ click: click('203.0.113.9'), userIp: '2001:db8:7c::77' }), { counts: c });
    expect(out).toMatchObject({ fired: true, value: '203.0.113.9', scope: 'click address', points: undefined });
  });

  it('passes residential addresses (announced by an unclassified AS), saying which were checked', () => {
    const out = evaluate(datacenterIp, scoreInput({ click: click('198.51.100.7'), userIp: '198.51.100.8' }));
    expect(out).toMatchObject({ evaluated: true, fired: false, value: ['198.51.100.7', '198.51.100.8'], note: 'networks of test-asn 1, hosting-asns test' });
  });

  it('is not evaluated without any user address', () => {
    expect(evaluate(datacenterIp, scoreInput({ click: undefined }))).toMatchObject({ evaluated: false, note: expect.stringMatching(/click row was not found/) });
    expect(evaluate(datacenterIp, scoreInput({ click: click(null) }))).toMatchObject({ evaluated: false, note: expect.stringMatching(/click has no address/) });
  });

  it('still judges the postback ip when the click row is missing', () => {
    expect(evaluate(datacenterIp, scoreInput({ click: undefined, userIp: '203.0.113.5' }))).toMatchObject({ evaluated: true, fired: true });
  });
});

describe('click_ip_mismatch', () => {
  it('fires when the networks differ at the default /24', () => {
    const out = evaluate(clickIpMismatch, scoreInput({ click: click('198.51.100.7'), userIp: '198.51.101.7' }));
    expect(out).toMatchObject({ evaluated: true, fired: true, threshold: 'same /24', value: { click: '198.51.100.7', ip: '198.51.101.7' } });
  });

  it('treats another address in the same /24 as the same network', () => {
    expect(evaluate(clickIpMismatch, scoreInput({ click: click('198.51.100.7'), userIp: '198.51.100.200' })).fired).toBe(false);
  });

  it('compares IPv6 by /48 by default', () => {
    expect(evaluate(clickIpMismatch, scoreInput({ click: click('2001:db8:1:2::1'), userIp: '2001:db8:1:ffff::9' })).fired).toBe(false);
    expect(evaluate(clickIpMismatch, scoreInput({ click: click('2001:db8:1::1'), userIp: '2001:db8:2::1' })).fired).toBe(true);
  });

  it('honours a prefix override', () => {
    const input = scoreInput({ click: click('198.51.100.7'), userIp: '198.51.100.8' });
    expect(evaluate(clickIpMismatch, input, { settings: { prefixV4: 32 } }).fired).toBe(true);
  });

  it('is not evaluated when an input is missing or not comparable', () => {
    expect(evaluate(clickIpMismatch, scoreInput({ userIp: undefined })).note).toMatch(/no ip field/);
    expect(evaluate(clickIpMismatch, scoreInput({ click: undefined, userIp: '198.51.100.1' })).note).toMatch(/click row was not found/);
    expect(evaluate(clickIpMismatch, scoreInput({ click: click(null), userIp: '198.51.100.1' })).note).toMatch(/click has no address/);
    const dual = evaluate(clickIpMismatch, scoreInput({ click: click('2001:db8::1'), userIp: '198.51.100.1' }));
    expect(dual).toMatchObject({ evaluated: false, note: expect.stringMatching(/dual-stack/) });
    const proxied = evaluate(clickIpMismatch, scoreInput({ click: click('10.0.0.5'), userIp: '198.51.100.1' }));
    expect(proxied).toMatchObject({ evaluated: false, note: expect.stringMatching(/not public.*TRUST_PROXY/) });
  });
});

describe('ua_mismatch', () => {
  it('fires when the operating-system family differs', () => {
    const out = evaluate(uaMismatch, scoreInput({ click: click('198.51.100.7', ANDROID_UA), userAgent: WINDOWS_UA }));
    expect(out).toMatchObject({ evaluated: true, fired: true, value: { click: 'android', ua: 'windows' } });
  });

  it('lets an in-app browser and the system browser of one device through', () => {
    const inApp = `${BROWSER_UA} [FBAN/FBIOS;FBAV/450.0]`;
    expect(evaluate(uaMismatch, scoreInput({ click: click('198.51.100.7', inApp), userAgent: BROWSER_UA })).fired).toBe(false);
  });

  it('treats an iPad announcing itself as a Mac as the same family', () => {
    const ipadSafari = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15';
    const ipadApp = 'Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148';
    expect(evaluate(uaMismatch, scoreInput({ click: click('198.51.100.7', ipadApp), userAgent: ipadSafari })).fired).toBe(false);
  });

  it('is not evaluated when an input is missing or unrecognisable', () => {
    expect(evaluate(uaMismatch, scoreInput({ userAgent: undefined })).note).toMatch(/no ua field/);
    expect(evaluate(uaMismatch, scoreInput({ click: undefined, userAgent: BROWSER_UA })).note).toMatch(/click row was not found/);
    expect(evaluate(uaMismatch, scoreInput({ click: click('198.51.100.7', null), userAgent: BROWSER_UA })).note).toMatch(/no user agent/);
    expect(evaluate(uaMismatch, scoreInput({ userAgent: 'SomeTV/1.0' }))).toMatchObject({ evaluated: false, note: expect.stringMatching(/postback/) });
  });

  it('classifies common user agents', () => {
    expect(osFamily(ANDROID_UA)).toBe('android');
    expect(osFamily(BROWSER_UA)).toBe('apple');
    expect(osFamily(WINDOWS_UA)).toBe('windows');
    expect(osFamily('Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36')).toBe('chromeos');
    expect(osFamily('Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0')).toBe('linux');
  });
});

describe('bot_user_agent', () => {
  it('fires at full points on a crawler, a headless browser or declared automation at the click', () => {
    for (const ua of ['Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', 'AhrefsBot/7.0',
      'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36']) {
      const out = evaluate(botUserAgent, scoreInput({ click: click('198.51.100.7', ua) }));
      expect(out, ua).toMatchObject({ evaluated: true, fired: true, scope: 'click user agent', threshold: expect.stringMatching(/^isbot pattern/) });
      expect(out.points, ua).toBeUndefined();
      expect(botKind(ua), ua).toBe('automation');
    }
  });

  it('fires at httpClientPoints (default 40) on a bare HTTP library', () => {
    for (const ua of ['python-requests/2.31.0', 'curl/8.4.0', 'node', 'Go-http-client/1.1']) {
      const out = evaluate(botUserAgent, scoreInput({ click: click('198.51.100.7', ua) }));
      expect(out, ua).toMatchObject({ fired: true, points: 40, note: 'an HTTP library, not a browser' });
      expect(botKind(ua), ua).toBe('http-client');
    }
    expect(evaluate(botUserAgent, scoreInput({ click: click('198.51.100.7', 'curl/8.4.0') }), { settings: { httpClientPoints: 45 } }).points).toBe(45);
  });

  it("fires on the postback's ua, the stronger finding winning", () => {
    expect(evaluate(botUserAgent, scoreInput({ userAgent: 'Go-http-client/1.1' }))).toMatchObject({ fired: true, scope: 'postback ua', points: 40 });
    const both = evaluate(botUserAgent, scoreInput({ click: click('198.51.100.7', 'curl/8.4.0'), userAgent: 'Mozilla/5.0 (compatible; bingbot/2.0)' }));
    expect(both).toMatchObject({ fired: true, scope: 'postback ua' });
    expect(both.points).toBeUndefined();
  });

  it('passes browsers and the HTTP stacks of mobile apps', () => {
    expect(evaluate(botUserAgent, scoreInput({ userAgent: ANDROID_UA })).fired).toBe(false);
    expect(isBotUserAgent('okhttp/4.12.0')).toBe(false);
    expect(isBotUserAgent('MyApp/3.1 CFNetwork/1494.0.7 Darwin/23.4.0')).toBe(false);
  });

  it('counts a click without a User-Agent as a bot unless the offer says otherwise', () => {
    const input = scoreInput({ click: click('198.51.100.7', null) });
    expect(evaluate(botUserAgent, input)).toMatchObject({ fired: true, value: null, points: 40, note: expect.stringMatching(/no User-Agent/) });
    expect(evaluate(botUserAgent, input, { settings: { missingIsBot: false } }).fired).toBe(false);
  });

  it('is not evaluated with neither a click row nor a ua field', () => {
    expect(evaluate(botUserAgent, scoreInput({ click: undefined }))).toMatchObject({ evaluated: false });
  });
});
