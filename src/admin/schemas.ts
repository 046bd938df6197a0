import { z } from 'zod';
import { isCurrency } from '../money.js';
import { parseCidr } from '../net/cidr.js';
import { checkDestinationUrl, parseHttpUrl } from '../net/destination.js';
import { capsSchema, goalsSchema } from '../offers/terms.js';

/** Request bodies of the admin API. Objects are strict: an unknown field is a 400, never ignored. */

export const DEFAULT_RATE_LIMIT_PER_S = 200;
export const DEFAULT_CLICK_TTL_S = 2_592_000;
export const DEFAULT_FLAG_AT = 40;
export const DEFAULT_REJECT_AT = 80;
/** Asymmetric only: an HMAC algorithm here would let a public key be used as a shared secret. */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export const DEFAULT_JWT_ALGORITHMS = ['ES256', 'RS256', 'EdDSA'];

const noControl = /^[^\u0000-\u001f\u007f]*$/;
const name = z.string().trim().min(1, 'must not be empty').max(200).regex(noControl, 'must not contain control characters');

const cidr = z.string().max(64).refine((v) => parseCidr(v) !== undefined, 'must be a canonical IP address or CIDR range');

const jwkPublic = z
  .object({ kty: z.enum(['RSA', 'EC', 'OKP'], { error: 'must be RSA, EC or OKP (no symmetric keys)' }) })
  .loose()
  .refine((k) => !('d' in k) && !('p' in k) && !('q' in k), 'must be a public key (no private parts)');

const jwtSettings = z
  .object({
    jwksUrl: z.string().refine((v) => parseHttpUrl(v).ok, 'must be an http(s) URL').optional(),
    jwks: z.object({ keys: z.array(jwkPublic).min(1).max(20) }).strict().optional(),
    issuer: z.string().min(1).max(256),
    algorithms: z.array(z.enum(JWT_ALGORITHMS)).min(1).max(10).optional(),
  })
  .strict()
  .refine((j) => (j.jwksUrl === undefined) !== (j.jwks === undefined), { message: 'give exactly one of jwksUrl or jwks', path: ['jwksUrl'] });

const authList = z
  .array(z.enum(['hmac', 'jwt']))
  .min(1, 'must list at least one method')
  .max(2)
  .refine((a) => new Set(a).size === a.length, 'must not repeat a method');

const rateLimit = z.object({ perS: z.number().int().min(1).max(1_000_000) }).strict();

export const advertiserCreate = z
  .object({
    name,
    ipAllowlist: z.array(cidr).max(200).default([]),
    auth: authList,
    jwt: jwtSettings.optional(),
    rateLimit: rateLimit.optional(),
  })
  .strict()
  .refine((a) => !a.auth.includes('jwt') || a.jwt !== undefined, { message: 'is required when auth includes jwt', path: ['jwt'] });

export const advertiserPatch = z
  .object({
    name: name.optional(),
    ipAllowlist: z.array(cidr).max(200).optional(),
    auth: authList.optional(),
    jwt: jwtSettings.nullable().optional(),
    rateLimit: rateLimit.optional(),
  })
  .strict();

export function publisherSchemas(allowPrivate: boolean) {
  const postbackUrl = z.string().superRefine((v, ctx) => {
    const check = checkDestinationUrl(v, allowPrivate);
    if (!check.ok) ctx.addIssue({ code: 'custom', message: check.message });
  });
  // Event names as a postback may send them (postback/fields.ts); an empty list would silence the
  // publisher entirely, which is what deleting it or pausing the offer is for.
  const events = z
    .array(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be an event name: 1-64 characters of A-Z a-z 0-9 _ . -'))
    .min(1, 'must list at least one event (leave it out, or null in a PATCH, for all events)')
    .max(100)
    .refine((e) => new Set(e).size === e.length, 'must not repeat an event');
  return {
    create: z
      .object({ name, postbackUrl, method: z.enum(['GET', 'POST']).default('GET'), onStatusChange: z.boolean().default(false), events: events.optional() })
      .strict(),
    patch: z
      .object({
        name: name.optional(),
        postbackUrl: postbackUrl.optional(),
        method: z.enum(['GET', 'POST']).optional(),
        onStatusChange: z.boolean().optional(),
        events: events.nullable().optional(),
      })
      .strict(),
  };
}

const fraudSettings = z
  .object({
    flagAt: z.number().int().min(0).max(100).optional(),
    rejectAt: z.number().int().min(0).max(100).optional(),
    rules: z.record(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/), z.record(z.string(), z.unknown())).optional(),
  })
  .strict()
  .refine((f) => (f.flagAt ?? DEFAULT_FLAG_AT) <= (f.rejectAt ?? DEFAULT_REJECT_AT), { message: 'flagAt must not exceed rejectAt', path: ['flagAt'] });

/**
 * The shape of an amount, checked with the other fields so one 400 lists every bad field; whether its
 * decimals fit the currency is checked by parseMoney once the currency is known to be valid.
 */
const payout = z.string().max(40).regex(/^\d{1,16}(?:\.\d{1,18})?$/, 'must be a non-negative decimal string such as "2.50"');

const offerUrl = z.string().superRefine((v, ctx) => {
  const check = parseHttpUrl(v);
  if (!check.ok) ctx.addIssue({ code: 'custom', message: check.message });
});

export const offerCreate = z
  .object({
    advertiserId: z.string().min(1).max(64),
    name,
    url: offerUrl,
    payout,
    revenue: payout.optional(),
    currency: z.string().refine(isCurrency, 'must be an ISO 4217 currency code such as USD'),
    goals: goalsSchema.optional(),
    caps: capsSchema.optional(),
    clickTtlS: z.number().int().min(1).max(31_536_000).default(DEFAULT_CLICK_TTL_S),
    dailyCap: z.number().int().min(1).max(100_000_000).nullable().optional(),
    fraud: fraudSettings.optional(),
  })
  .strict();

export const offerPatch = z
  .object({
    name: name.optional(),
    url: offerUrl.optional(),
    payout: payout.optional(),
    revenue: payout.optional(),
    goals: goalsSchema.optional(),
    caps: capsSchema.optional(),
    clickTtlS: z.number().int().min(1).max(31_536_000).optional(),
    dailyCap: z.number().int().min(1).max(100_000_000).nullable().optional(),
    fraud: fraudSettings.optional(),
  })
  .strict();

export const tokenCreate = z.object({ role: z.enum(['admin', 'analyst', 'finance']), name }).strict();
