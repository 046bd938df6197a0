import { z } from 'zod';
import { defineRule, measured, notEvaluated, type RuleContext, type RuleOutcome, type UserAddress } from '../rule.js';

/**
 * Where the user was, network-wise. The network is the autonomous system announcing the address. A
 * hosting network is where scripted clicks and conversions run and people do not browse from: strong
 * evidence of automation, worth a review alone. A VPN provider's exit is where some honest users
 * browse, so it is worth few points and flags only when something else agrees. A user who clicked from one network and converted from another is common
 * (Wi-Fi to cellular, a VPN toggled), so an address change is a weak signal, compared by network
 * prefix rather than exact address.
 */

export const datacenterIp = defineRule({
  code: 'datacenter_ip',
  category: 'client',
  description:
    "The user's address (the click's, or the postback's ip) is announced by an autonomous system classified as hosting or VPN " +
    '(src/fraud/data/hosting-asns.txt; IP to ASN data by DB-IP.com, RouteViews and the NRO, CC BY 4.0). The evidence names the AS, its organisation and the kind.',
  inputs: ['click address', 'postback ip (optional)'],
  points: 40,
  settings: {
    vpnPoints: z
      .number()
      .int()
      .min(0)
      .max(100)
      .describe('points when the network is a VPN provider, or the hosting address is a shared exit: some honest users browse through one'),
    sharedExitClicks: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .describe("a hosting address that sent at least this many clicks in ip_burst's window is a shared exit (a VPN or proxy server many people use), worth vpnPoints; 0 disables"),
  },
  defaults: { vpnPoints: 15, sharedExitClicks: 10 },
  evaluate(ctx, s) {
    const candidates = userAddresses(ctx);
    if (candidates.length === 0) return notEvaluated(missingAddressNote(ctx));
    let vpn: RuleOutcome | undefined;
    for (const { label, address } of candidates) {
      const hit = ctx.datacenter.lookup(address.addr);
      if (!hit) continue;
      const threshold = `AS${hit.asn} ${hit.org} (${hit.kind})`;
      const found = { value: address.text, threshold, scope: label, note: `${hit.range}; ${snapshotNote(ctx)}` };
      const clicks = sharedExitClicks(ctx, address, s.sharedExitClicks);
      // A hosting address anywhere outweighs a VPN exit elsewhere: look at every address before settling for the weaker one.
      if (hit.kind !== 'vpn' && clicks === undefined) return measured(true, found);
      const why = clicks === undefined ? '' : `a shared exit: ${clicks} clicks from this address in the window; `;
      vpn ??= measured(true, { ...found, points: s.vpnPoints, note: `${why}${found.note}` });
    }
    if (vpn) return vpn;
    return measured(false, { value: candidates.map((c) => c.address.text), scope: candidates.map((c) => c.label).join(' and '), note: snapshotNote(ctx) });
  },
});

export const clickIpMismatch = defineRule({
  code: 'click_ip_mismatch',
  category: 'client',
  description: "The address the advertiser saw convert is on another network than the click's.",
  inputs: ['click address', 'postback ip'],
  points: 10,
  settings: {
    prefixV4: z.number().int().min(1).max(32).describe('IPv4 addresses in the same network of this prefix length count as the same'),
    prefixV6: z.number().int().min(1).max(128).describe('IPv6 addresses in the same network of this prefix length count as the same'),
  },
  defaults: { prefixV4: 24, prefixV6: 48 },
  evaluate(ctx, s) {
    const click = ctx.clickAddress;
    const user = ctx.postbackAddress;
    if (!user) return notEvaluated('the postback has no ip field');
    if (click === undefined) return notEvaluated('the click row was not found');
    if (click === null) return notEvaluated('the click has no address');
    if (!click.countKey) return notEvaluated(`the click address ${click.text} is not public: a proxy hop (is TRUST_PROXY set?)`);
    const value = { click: click.text, ip: user.text };
    if (click.addr.kind() !== user.addr.kind()) return notEvaluated('the addresses are of different families (a dual-stack user)', { value });
    const bits = click.addr.kind() === 'ipv4' ? s.prefixV4 : s.prefixV6;
    const same = user.addr.match(click.addr as never, bits);
    return measured(!same, { value, threshold: `same /${bits}`, scope: 'click address vs postback ip' });
  },
});

/**
 * A server one script runs on clicks a handful of times; a VPN or proxy exit many people share clicks
 * like a carrier gateway. The click count is the one ip_burst reads (this address, every offer, every
 * node), so a shared exit that also converts beyond its clicks is still ip_burst's to catch.
 */
function sharedExitClicks(ctx: RuleContext, address: UserAddress, minClicks: number): number | undefined {
  if (minClicks <= 0 || address.countKey === undefined) return undefined;
  const clicks = ctx.counts?.addresses.find((a) => a.key === address.countKey)?.clicks;
  return clicks !== undefined && clicks >= minClicks ? clicks : undefined;
}

/** Which data judged the address: the AS table's version and the classification's date. */
const snapshotNote = (ctx: RuleContext) => `networks of ${ctx.datacenter.version}`;

type Labelled = { label: string; address: UserAddress };

/** The user's addresses that rules may judge, with where each came from. */
export function userAddresses(ctx: RuleContext): Labelled[] {
  const list: Labelled[] = [];
  if (ctx.clickAddress) list.push({ label: 'click address', address: ctx.clickAddress });
  if (ctx.postbackAddress && ctx.postbackAddress.text !== ctx.clickAddress?.text) {
    list.push({ label: 'postback ip', address: ctx.postbackAddress });
  }
  return list;
}

export function missingAddressNote(ctx: RuleContext): string {
  const click = ctx.clickAddress === undefined ? 'the click row was not found' : 'the click has no address';
  return `${click} and the postback has no ip field`;
}
