import { z } from 'zod';
import { invalidRequest, issuesToDetails, type FieldIssue } from '../errors.js';
import { EXTERNAL_ID_MAX, isTxid, TXID_RULE } from '../ids.js';
import { forbiddenKeyError, forbiddenKeyIn } from '../http/safe-parse.js';
import { isCurrency } from '../money.js';
import { parseAddress } from '../net/cidr.js';

/**
 * The fields of a postback, from a query string, a JSON or form body, or JWT claims. Everything is
 * bounded and free of control characters before it reaches fraud rules, logs or the database.
 */

export type PostbackStatus = 'approved' | 'pending' | 'rejected';

export type PostbackFields = {
  clickid: string;
  txid: string;
  event: string;
  status: PostbackStatus;
  payout: string | undefined;
  revenue: string | undefined;
  amount: string | undefined;
  currency: string | undefined;
  ip: string | undefined;
  ua: string | undefined;
};

const noControl = /^[^\u0000-\u001f\u007f]*$/;
const noLoneSurrogate = /^(?:[^\ud800-\udfff]|[\ud800-\udbff][\udc00-\udfff])*$/;

export const fieldSchema = z.object({
  // Any present click ID is judged by click validity (422 malformed), an unexpanded {clickid} macro
  // included: the advertiser needs to hear "not our click ID", not a lesson in URL-safe characters.
  clickid: z.string({ error: 'is required' }).min(1, 'is required').max(EXTERNAL_ID_MAX, `must be at most ${EXTERNAL_ID_MAX} characters`),
  txid: z.string({ error: 'is required' }).refine(isTxid, TXID_RULE),
  event: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ . -').default('conversion'),
  status: z.enum(['approved', 'pending', 'rejected'], { error: 'must be approved, pending or rejected' }).default('approved'),
  payout: z.string().max(40).optional(),
  revenue: z.string().max(40).optional(),
  amount: z.string().max(40).optional(),
  currency: z.string().refine(isCurrency, 'must be an ISO 4217 currency code such as USD').optional(),
  ip: z
    .string()
    .max(64)
    .refine((v) => parseAddress(v) !== undefined, 'must be a canonical IPv4 or IPv6 address')
    .optional(),
  ua: z
    .string()
    .max(1024)
    .regex(noControl, 'must not contain control characters')
    // A lone UTF-16 surrogate (possible in a JSON body or JWT claim) is not text PostgreSQL can store.
    .regex(noLoneSurrogate, 'must be valid Unicode text')
    .optional(),
});

/** Keys that carry signatures or tokens, not postback fields. */
const TRANSPORT_KEYS = new Set(['ts', 'sig', 'token']);
/**
 * A JSON body or JWT may send these as numbers; they are read from their shortest decimal text, never
 * used as floats. That text is what the sender wrote only up to 15 significant digits (a double holds
 * 15 exactly); a longer number may already have been rounded by the parse, so it is refused with a
 * request for a decimal string instead of being stored as some other amount.
 */
const MONEY_KEYS = new Set(['payout', 'revenue', 'amount']);
const EXACT_DOUBLE_DIGITS = 15;

function moneyNumberText(value: number): string | undefined {
  const text = String(value);
  const digits = text.replace(/^-?0*\.?0*/, '').replace('.', '').replace(/e.*$/i, '');
  return /e/i.test(text) || digits.length > EXACT_DOUBLE_DIGITS ? undefined : text;
}

/**
 * Validates raw key/value input. A repeated key is refused rather than resolved: two parsers that pick
 * different copies (first vs last) are how signed and processed content are made to disagree.
 */
export function parseFields(input: Record<string, unknown>): PostbackFields {
  const forbidden = forbiddenKeyIn(input);
  if (forbidden !== undefined) throw forbiddenKeyError(forbidden);
  const issues: FieldIssue[] = [];
  // Null prototype: no key sent by a client can reach Object.prototype through this object.
  const flat: Record<string, unknown> = Object.create(null);
  for (const [key, value] of Object.entries(input)) {
    if (TRANSPORT_KEYS.has(key)) continue;
    if (Array.isArray(value)) {
      issues.push({ path: key, message: 'must be given once' });
      continue;
    }
    // Empty optional values ("&payout=") mean "not sent", as every tracker's macro expansion produces them.
    if (value === '' && key !== 'clickid' && key !== 'txid') continue;
    if (typeof value === 'number' && MONEY_KEYS.has(key)) {
      const text = moneyNumberText(value);
      if (text === undefined) issues.push({ path: key, message: `must be a decimal string such as "2.50": a JSON number of more than ${EXACT_DOUBLE_DIGITS} digits cannot be read exactly` });
      else flat[key] = text;
      continue;
    }
    flat[key] = value;
  }
  const result = fieldSchema.safeParse(flat);
  if (!result.success) issues.push(...issuesToDetails(result.error.issues));
  if (issues.length > 0 || !result.success) throw invalidRequest(issues);
  const d = result.data;
  return {
    clickid: d.clickid,
    txid: d.txid,
    event: d.event,
    status: d.status,
    payout: d.payout,
    revenue: d.revenue,
    amount: d.amount,
    currency: d.currency,
    ip: d.ip ? parseAddress(d.ip)?.toString() : undefined,
    ua: d.ua,
  };
}
