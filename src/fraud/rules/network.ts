import { z } from 'zod';
import { defineRule, measured, notEvaluated, type RuleContext, type UserAddress } from '../rule.js';

/**
 * Where the user was, network-wise. A hosting address is where scripted conversions run; it is also
 * where some VPNs exit, so it is worth a moderate number of points on its own and flags only when
 * something else agrees. The network is the autonomous system announcing the address, and the
 * evidence says whether it is classified hosting or vpn, so scoring can weigh the two apart. A user who clicked from one network and converted from another is common
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
  points: 25,
  settings: {},
  defaults: {},
  evaluate(ctx) {
    const candidates = userAddresses(ctx);
    if (candidates.length === 0) return notEvaluated(missingAddressNote(ctx));
    for (const { label, address } of candidates) {
      const hit = ctx.datacenter.lookup(address.addr);
      if (hit) {
        const threshold = `AS${hit.asn} ${hit.org} (${hit.kind})`;
        return measured(true, { value: address.text, threshold, scope: label, note: `${hit.range}; ${snapshotNote(ctx)}` });
      }
    }
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
