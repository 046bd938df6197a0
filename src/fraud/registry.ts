import { DEFAULT_FLAG_AT, DEFAULT_REJECT_AT } from '../admin/schemas.js';
import type { Offer } from '../catalog/catalog.js';
import { issuesToDetails, type FieldIssue } from '../errors.js';
import type { Category, CommonSettings, Rule } from './rule.js';
import { clickFlood } from './rules/click-flood.js';
import { conversionRateSpike } from './rules/conversion-rate.js';
import { ctitTooLong, ctitTooShort } from './rules/ctit.js';
import { multipleConversionsPerClick, overDailyCap, payoutMismatch } from './rules/integrity.js';
import { ipBurst } from './rules/ip-burst.js';
import { clickIpMismatch, datacenterIp } from './rules/network.js';
import { botUserAgent, uaMismatch } from './rules/user-agent.js';

/**
 * Every rule, in the stable order of evidence and reasons (the contract's order), and the category
 * caps. A category groups rules that see the same underlying fact, so together they are worth no
 * more than their cap: a script on a cloud server with a bot user agent and a changed address is one
 * finding ("not a person's browser"), not three.
 */

export const RULES: readonly Rule[] = [
  ipBurst,
  ctitTooShort,
  ctitTooLong,
  datacenterIp,
  clickIpMismatch,
  uaMismatch,
  botUserAgent,
  conversionRateSpike,
  clickFlood,
  payoutMismatch,
  multipleConversionsPerClick,
  overDailyCap,
];

export const RULES_BY_CODE: ReadonlyMap<string, Rule> = new Map(RULES.map((r) => [r.code, r]));

/**
 * timing 40: a single impossible CTIT flags, and too-short and too-long exclude each other anyway.
 * client 60: a bot user agent (50) with a hosting address (25) flags but cannot reject alone.
 * velocity 40: a burst from one address and a segment spike are usually one farm seen twice.
 * attribution 40: whether the source's clicks caused its conversions (click_flood); a source-level
 * finding, not the same fact as one late conversion (timing) or a farm's volume (velocity).
 * integrity 50: a double conversion with a payout mismatch flags; money rules never reject alone.
 */
export const CATEGORY_CAPS: Readonly<Record<Category, number>> = { timing: 40, client: 60, velocity: 40, attribution: 40, integrity: 50 };
export const MAX_SCORE = 100;

export type ResolvedSettings = CommonSettings & Record<string, unknown>;

export type OfferFraud = {
  flagAt: number;
  rejectAt: number;
  settings: ReadonlyMap<string, ResolvedSettings>;
  /** Per rule: why a stored override was ignored (it no longer validates). */
  ignored: ReadonlyMap<string, string>;
};

type StoredFraud = { flagAt?: unknown; rejectAt?: unknown; rules?: unknown };

// Catalog reloads replace Offer objects, so the cache follows admin edits with no invalidation.
const resolved = new WeakMap<Offer, OfferFraud>();

export function offerFraud(offer: Offer): OfferFraud {
  let found = resolved.get(offer);
  if (!found) {
    found = resolve(offer.fraud as StoredFraud);
    resolved.set(offer, found);
  }
  return found;
}

function resolve(stored: StoredFraud): OfferFraud {
  const rules = isRecord(stored.rules) ? stored.rules : {};
  const settings = new Map<string, ResolvedSettings>();
  const ignored = new Map<string, string>();
  for (const rule of RULES) {
    const override = rules[rule.code];
    if (override === undefined) {
      settings.set(rule.code, { ...rule.defaults });
      continue;
    }
    const parsed = rule.overrides.safeParse(override);
    if (parsed.success) settings.set(rule.code, { ...rule.defaults, ...parsed.data } as ResolvedSettings);
    else {
      settings.set(rule.code, { ...rule.defaults });
      ignored.set(rule.code, 'the stored override no longer validates; defaults used');
    }
  }
  return {
    flagAt: typeof stored.flagAt === 'number' ? stored.flagAt : DEFAULT_FLAG_AT,
    rejectAt: typeof stored.rejectAt === 'number' ? stored.rejectAt : DEFAULT_REJECT_AT,
    settings,
    ignored,
  };
}

/** For the offers admin API: every unknown code and bad setting, at `fraud.rules.<code>[.<field>]`. */
export function validateOverrides(rules: Record<string, Record<string, unknown>>): FieldIssue[] {
  const issues: FieldIssue[] = [];
  for (const [code, override] of Object.entries(rules)) {
    const path = `fraud.rules.${code}`;
    const rule = RULES_BY_CODE.get(code);
    if (!rule) {
      issues.push({ path, message: 'is not a known fraud rule (GET /v1/fraud/rules lists them)' });
      continue;
    }
    const parsed = rule.overrides.safeParse(override);
    if (!parsed.success) {
      for (const d of issuesToDetails(parsed.error.issues)) issues.push({ path: d.path ? `${path}.${d.path}` : path, message: d.message });
    }
  }
  return issues;
}

export const fraudRuleRegistry = { validateOverrides };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
