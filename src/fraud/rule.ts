import { z } from 'zod';
import type { IpAddress } from '../net/cidr.js';
import type { HostingNetworks } from './datacenter.js';
import type { Evidence, ScoreInput } from '../postback/types.js';
import type { ConversionCounts } from './state.js';

/**
 * Terminology:
 * - rule: one named check with a stable reason code, pure: (context, settings) -> outcome.
 * - settings: a rule's thresholds plus `mode` and `points`; defaults here, per-offer overrides in
 *   `offer.fraud.rules[code]`.
 * - mode: `off` (not run), `monitor` (run and recorded, worth no points, not a reason), `score`.
 * - category: rules that measure correlated things share a points cap (registry.ts).
 * - outcome: whether the rule could run (`evaluated`), whether it fired, and what it measured.
 */

export type Mode = 'off' | 'monitor' | 'score';
export type Category = 'timing' | 'client' | 'velocity' | 'attribution' | 'integrity';
export type { Evidence, ScoreInput };

export type Measurement = {
  value?: unknown;
  threshold?: unknown;
  window?: string;
  scope?: string;
  note?: string;
  /** What this hit is worth when it is a weaker or stronger form of the rule's signal; the rule's `points` otherwise. */
  points?: number;
};

export type RuleOutcome = ({ evaluated: false; fired: false; note: string } | { evaluated: true; fired: boolean }) & Measurement;

/** A user address as the rules see it; `countKey` is undefined for addresses that are never a user's own. */
export type UserAddress = { text: string; addr: IpAddress; countKey: string | undefined };

export type RuleContext = {
  input: ScoreInput;
  /** Click-to-conversion time in seconds; negative when the click is stamped slightly in the future. */
  ctitS: number;
  /** undefined: the click row was not found; null: the click carried no usable address. */
  clickAddress: UserAddress | null | undefined;
  /** The postback's `ip` field, when sent. */
  postbackAddress: UserAddress | undefined;
  /** The hosting and VPN networks (datacenter.ts). */
  datacenter: HostingNetworks;
  /** Shared counters after recording this conversion; undefined when the state could not be reached. */
  counts: ConversionCounts | undefined;
  countsError: string | undefined;
};

export type CommonSettings = { mode: Mode; points: number };

export type Rule = {
  code: string;
  category: Category;
  description: string;
  /** Human names of the inputs the rule needs; missing ones make it "not evaluated". */
  inputs: readonly string[];
  defaults: Readonly<CommonSettings & Record<string, unknown>>;
  /** Strict and all-optional: what `offer.fraud.rules[code]` may contain. */
  overrides: z.ZodType<Record<string, unknown>>;
  /** JSON Schema of the settings with their defaults, for GET /v1/fraud/rules. */
  settingsSchema: Record<string, unknown>;
  evaluate(ctx: RuleContext, settings: CommonSettings & Record<string, unknown>): RuleOutcome;
};

export const modeSchema = z.enum(['off', 'monitor', 'score'], { error: 'must be off, monitor or score' });
export const pointsSchema = z.number().int().min(0).max(100).describe('points added to the score when the rule fires in score mode');

type Shape = Record<string, z.ZodType>;
type Settings<S extends Shape> = CommonSettings & { [K in keyof S]: z.output<S[K]> };

export function defineRule<S extends Shape>(def: {
  code: string;
  category: Category;
  description: string;
  inputs: readonly string[];
  mode?: Mode;
  points: number;
  settings: S;
  defaults: { [K in keyof S]: z.output<S[K]> };
  evaluate(ctx: RuleContext, settings: Settings<S>): RuleOutcome;
}): Rule {
  const mode = def.mode ?? 'score';
  const keys = Object.keys(def.settings) as (keyof S & string)[];
  const optional = Object.fromEntries(keys.map((k) => [k, (def.settings[k] as z.ZodType).optional()]));
  const documented = Object.fromEntries(keys.map((k) => [k, (def.settings[k] as z.ZodType).default(def.defaults[k] as never)]));
  const overrides = z.object({ mode: modeSchema.optional(), points: pointsSchema.optional(), ...optional }).strict();
  const { $schema: _drop, ...settingsSchema } = z.toJSONSchema(
    z.object({ mode: modeSchema.default(mode).describe('off, monitor or score'), points: pointsSchema.default(def.points), ...documented }).strict(),
    { io: 'input' },
  ) as Record<string, unknown>;
  return {
    code: def.code,
    category: def.category,
    description: def.description,
    inputs: def.inputs,
    defaults: Object.freeze({ mode, points: def.points, ...def.defaults }),
    overrides: overrides as unknown as z.ZodType<Record<string, unknown>>,
    settingsSchema,
    evaluate: (ctx, settings) => def.evaluate(ctx, settings as Settings<S>),
  };
}

// Built field by field rather than by spreading `m`: every postback makes one outcome per rule, and
// a spread with extra properties is several times slower than a literal of one shape.
export const notEvaluated = (note: string, m: Omit<Measurement, 'note'> = {}): RuleOutcome => ({
  evaluated: false,
  fired: false,
  note,
  value: m.value,
  threshold: m.threshold,
  window: m.window,
  scope: m.scope,
  points: m.points,
});
export const measured = (fired: boolean, m: Measurement = {}): RuleOutcome => ({
  evaluated: true,
  fired,
  value: m.value,
  threshold: m.threshold,
  window: m.window,
  scope: m.scope,
  note: m.note,
  points: m.points,
});

/** For rules that read shared counters: the reason they could not run, if they could not. */
export function countsUnavailable(ctx: RuleContext): RuleOutcome | undefined {
  if (ctx.counts) return undefined;
  return notEvaluated(`shared counters unavailable: ${ctx.countsError ?? 'unknown error'}`);
}

export const seconds = (s: number): string => `${s}s`;

/** The offer's conversion rate over its baseline days, once it has the clicks to be a rate at all. */
export function offerBaselineRate(ctx: RuleContext, minClicks: number): { rate: number; conversions: number; clicks: number } | undefined {
  const b = ctx.counts?.offerBaseline;
  if (!b || b.clicks < minClicks) return undefined;
  // Half a conversion when there were none: a rate of exactly 0 would make any conversion infinitely unlikely.
  return { rate: Math.max(b.conversions, 0.5) / b.clicks, conversions: b.conversions, clicks: b.clicks };
}
