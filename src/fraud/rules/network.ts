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
    '(src/fraud/data/hosting-asns.txt; IP to ASN data by DB-IP.com, RouteViews and the NRO, CC BY 4.0). The evidence names the AS, its organisation and the kind, ' +
    'and whether the address is a shared exit (its clicks in the window spread over several publishers).',
  inputs: ['click address', 'postback ip (optional)', "the address's clicks per publisher in ip_burst's window (optional)"],
  points: 40,
  settings: {
    vpnPoints: z
      .number()
      .int()
      .min(0)
      .max(100)
      .describe("points when the network is a VPN provider's and the address is not shown to be a shared exit"),
    sharedExitPoints: z
      .number()
      .int()
      .min(0)
      .max(100)
      .describe('points for a hosting or VPN address that is a shared exit (many people clicking through it): some honest users browse through one'),
    sharedExitClicks: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .describe("a shared exit sent at least this many clicks in ip_burst's window; 0 disables the shared-exit allowance"),
    sharedExitPublishers: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .describe('...through at least this many publishers (a script working for one publisher clicks through its links only)'),
    sharedExitTopShare: z
      .number()
      .min(0)
      .max(1)
      .describe('...and at most this share of them through the largest of those publishers (1 disables this condition)'),
  },
  defaults: { vpnPoints: 15, sharedExitPoints: 10, sharedExitClicks: 3, sharedExitPublishers: 2, sharedExitTopShare: 0.67 },
  evaluate(ctx, s) {
    const candidates = userAddresses(ctx);
    if (candidates.length === 0) return notEvaluated(missingAddressNote(ctx));
    let best: { outcome: RuleOutcome; points: number } | undefined;
    for (const { label, address } of candidates) {
      const hit = ctx.datacenter.lookup(address.addr);
      if (!hit) continue;
      const exit = sharedExit(ctx, address, s);
      const points = exit.shared ? s.sharedExitPoints : hit.kind === 'vpn' ? s.vpnPoints : s.points;
      // The strongest address decides: a hosting server anywhere outweighs a VPN exit elsewhere.
      if (best && best.points >= points) continue;
      const outcome = measured(true, {
        value: address.text,
        threshold: `AS${hit.asn} ${hit.org} (${hit.kind})`,
        scope: label,
        note: `${exit.why}; ${hit.range}; ${snapshotNote(ctx)}`,
        points: points === s.points ? undefined : points,
      });
      best = { outcome, points };
    }
    if (best) return best.outcome;
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

type SharedExitSettings = { sharedExitClicks: number; sharedExitPublishers: number; sharedExitTopShare: number };

/**
 * Whether many people click through this address: a VPN or proxy exit's clicks come through
 * whatever publishers its users met, a script's server's through the publisher it works for. The
 * clicks and their spread are ip_burst's (this address, every offer, every node), so a shared exit
 * that also converts beyond its clicks is still ip_burst's to catch. Without counters (the state
 * unreachable) nothing shows the address is shared.
 */
function sharedExit(ctx: RuleContext, address: UserAddress, s: SharedExitSettings): { shared: boolean; why: string } {
  if (s.sharedExitClicks <= 0) return { shared: false, why: 'the shared-exit allowance is off' };
  if (address.countKey === undefined) return { shared: false, why: 'not a countable address' };
  if (!ctx.counts) return { shared: false, why: 'its clicks are unknown (shared counters unavailable)' };
  const counts = ctx.counts.addresses.find((a) => a.key === address.countKey);
  if (!counts) return { shared: false, why: 'its clicks were not counted' };
  const { clicks, spread } = counts;
  const publishers = spread?.publishers ?? 0;
  const top = spread?.topPublisherClicks ?? clicks;
  const seen = `${clicks} click${clicks === 1 ? '' : 's'} from this address in the window through ${publishers} publisher${publishers === 1 ? '' : 's'} (${top} through the largest)`;
  const shared =
    spread !== undefined && clicks >= s.sharedExitClicks && publishers >= s.sharedExitPublishers && top <= s.sharedExitTopShare * clicks + 1e-9;
  return { shared, why: shared ? `a shared exit: ${seen}` : `not a shared exit: ${seen}` };
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
