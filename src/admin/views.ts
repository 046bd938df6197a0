import type { Advertiser, Offer, Publisher } from '../catalog/catalog.js';
import { formatMoney } from '../money.js';
import { DEFAULT_FLAG_AT, DEFAULT_REJECT_AT } from './schemas.js';

/** What the admin API shows of stored objects. Never a secret: those are shown once, at creation. */

export function advertiserView(a: Advertiser) {
  return {
    id: a.id,
    name: a.name,
    ipAllowlist: a.ipAllowlist,
    auth: a.auth,
    jwt: a.jwt,
    rateLimit: { perS: a.rateLimitPerS },
    secrets: a.secrets.map((s) => ({ id: s.id, createdAt: s.createdAt.toISOString() })),
    createdAt: a.createdAt.toISOString(),
    updatedAt: a.updatedAt.toISOString(),
  };
}

export function publisherView(p: Publisher) {
  return {
    id: p.id,
    name: p.name,
    postbackUrl: p.postbackUrl,
    method: p.method,
    onStatusChange: p.onStatusChange,
    events: p.events,
    disabled: p.disabledAt !== null,
    disabledAt: p.disabledAt?.toISOString() ?? null,
    disabledReason: p.disabledReason,
    createdAt: p.createdAt.toISOString(),
    updatedAt: p.updatedAt.toISOString(),
  };
}

export function offerView(o: Offer) {
  const fraud = o.fraud as { flagAt?: number; rejectAt?: number; rules?: Record<string, unknown> };
  return {
    id: o.id,
    advertiserId: o.advertiserId,
    name: o.name,
    url: o.url,
    payout: formatMoney(o.payoutMinor, o.currency),
    revenue: formatMoney(o.revenueMinor, o.currency),
    currency: o.currency,
    goals: o.goalsInput,
    caps: o.capsInput,
    clickTtlS: o.clickTtlS,
    dailyCap: o.dailyCap,
    fraud: { flagAt: fraud.flagAt ?? DEFAULT_FLAG_AT, rejectAt: fraud.rejectAt ?? DEFAULT_REJECT_AT, rules: fraud.rules ?? {} },
    createdAt: o.createdAt.toISOString(),
    updatedAt: o.updatedAt.toISOString(),
  };
}
