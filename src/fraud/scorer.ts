import type { Decision, PostbackScorer, ScoreInput, ScoreResult } from '../postback/types.js';
import { userAddress } from './addresses.js';
import { bundledHostingNetworks, type HostingNetworks } from './datacenter.js';
import { storedEvidence } from './evidence.js';
import type { FraudMetrics } from './metrics.js';
import { CATEGORY_CAPS, MAX_SCORE, offerFraud, RULES, type ResolvedSettings } from './registry.js';
import { notEvaluated, type Category, type Evidence, type Rule, type RuleContext, type RuleOutcome, type UserAddress } from './rule.js';
import type { ConversionCounts, ConversionObservation, FraudState } from './state.js';

/**
 * Scores one postback: records it in the shared state and reads every count in one round trip, runs
 * every rule, then adds up points under the category caps and the total cap. Called by the intake
 * once per postback after authentication and click validation, before the commit; idempotent, so a
 * retried postback scores the same and counts once.
 *
 * The state being unreachable never fails a postback: the rules that need counts report "not
 * evaluated" with the error, and the others still score. The evidence comes back in its stored form
 * (evidence.ts); `combine` gives the full form.
 */

export type ScoredEvidence = Evidence & { fired: boolean; category: Category };

export type ScoreDeps = { state: FraudState; datacenter?: HostingNetworks; metrics?: FraudMetrics };

export class Scorer implements PostbackScorer {
  private readonly state: FraudState;
  private readonly datacenter: HostingNetworks;
  private readonly metrics: FraudMetrics | undefined;

  constructor(deps: ScoreDeps) {
    this.state = deps.state;
    this.datacenter = deps.datacenter ?? bundledHostingNetworks();
    this.metrics = deps.metrics;
  }

  async score(input: ScoreInput): Promise<ScoreResult> {
    const started = performance.now();
    const fraud = offerFraud(input.offer);
    const ctx = ruleContext(input, this.datacenter, undefined);
    try {
      ctx.counts = await this.state.observe(observation(input, fraud.settings, [ctx.clickAddress, ctx.postbackAddress], this.datacenter));
    } catch (err) {
      ctx.countsError = err instanceof Error ? err.message : String(err);
      this.metrics?.stateErrors.inc({ op: 'observe' });
    }

    const results = RULES.map((rule) => {
      const settings = fraud.settings.get(rule.code) ?? { ...rule.defaults };
      return { rule, settings, outcome: this.run(rule, ctx, settings), ignoredOverride: fraud.ignored.get(rule.code) };
    });
    const result = combine(results, fraud.flagAt, fraud.rejectAt);
    for (const e of result.evidence) if (e.fired) this.metrics?.ruleHits.inc({ code: e.code, mode: e.mode });
    this.metrics?.scoringDuration.observe((performance.now() - started) / 1000);
    return { score: result.score, decision: result.decision, reasons: result.reasons, evidence: storedEvidence(result.evidence) };
  }

  private run(rule: Rule, ctx: RuleContext, settings: ResolvedSettings): RuleOutcome {
    if (settings.mode === 'off') return notEvaluated('the rule is off for this offer');
    try {
      return rule.evaluate(ctx, settings);
    } catch (err) {
      // A faulty rule must cost its own verdict, never the postback.
      this.metrics?.ruleErrors.inc({ code: rule.code });
      return notEvaluated(`the rule failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

/** What every rule sees of one postback. */
export function ruleContext(
  input: ScoreInput,
  datacenter: RuleContext['datacenter'],
  counts: ConversionCounts | undefined,
  countsError?: string,
): RuleContext {
  return {
    input,
    ctitS: (input.now.getTime() - input.clickCreatedAt.getTime()) / 1000,
    clickAddress: input.click === undefined ? undefined : (userAddress(input.click.ip) ?? null),
    postbackAddress: userAddress(input.userIp),
    datacenter,
    counts,
    countsError,
  };
}

function observation(
  input: ScoreInput,
  settings: ReadonlyMap<string, ResolvedSettings>,
  users: (UserAddress | null | undefined)[],
  datacenter: HostingNetworks,
): ConversionObservation {
  const windowMs = (code: string) => Number(settings.get(code)?.windowS) * 1000;
  const addresses: string[] = [];
  // datacenter_ip asks whether a hosting or VPN address is a shared exit; no other address needs its publishers read.
  const spreadOf: string[] = [];
  for (const user of users) {
    const key = user?.countKey;
    if (!user || key === undefined || addresses.includes(key)) continue;
    addresses.push(key);
    if (datacenter.lookup(user.addr)) spreadOf.push(key);
  }
  return {
    advertiserId: input.advertiserId,
    txid: input.txid,
    at: input.now.getTime(),
    addresses,
    spreadOf,
    addressWindowMs: windowMs('ip_burst'),
    clickId: input.clickId,
    clickAt: input.clickCreatedAt.getTime(),
    event: input.event,
    clickExpiresAt: input.clickCreatedAt.getTime() + input.offer.clickTtlS * 1000,
    offerId: input.offer.id,
    segment: input.click
      ? { publisherId: input.publisherId, sub1: input.click.subs[0] ?? null, windowMs: windowMs('conversion_rate_spike') }
      : undefined,
  };
}

export type RuleResult = { rule: Rule; settings: ResolvedSettings; outcome: RuleOutcome; ignoredOverride?: string | undefined };

/**
 * Points under the caps. Fired score-mode rules are paid in order of their points (largest first,
 * ties in registry order), each up to what its category and the total still allow; a rule cut by a
 * cap says so in its note, so the evidence always adds up to the score.
 */
export function combine(results: RuleResult[], flagAt: number, rejectAt: number): Omit<ScoreResult, 'evidence'> & { evidence: ScoredEvidence[] } {
  const awarded = new Map<string, { points: number; note?: string }>();
  const categoryLeft = { ...CATEGORY_CAPS };
  let totalLeft = MAX_SCORE;
  // No spread of each result into a new object: that alone was most of the scoring's CPU time.
  const payable: { rule: Rule; index: number; worth: number }[] = [];
  results.forEach((r, index) => {
    if (r.outcome.fired && r.settings.mode === 'score') payable.push({ rule: r.rule, index, worth: worth(r) });
  });
  payable.sort((a, b) => b.worth - a.worth || a.index - b.index);
  for (const { rule, worth: full } of payable) {
    const category = rule.category;
    const byCategory = categoryLeft[category];
    const points = Math.min(full, byCategory, totalLeft);
    let note: string | undefined;
    if (points < full) {
      note =
        byCategory <= totalLeft
          ? `${full} points cut to ${points}: the ${category} category is capped at ${CATEGORY_CAPS[category]}`
          : `${full} points cut to ${points}: the total is capped at ${MAX_SCORE}`;
    }
    categoryLeft[category] -= points;
    totalLeft -= points;
    awarded.set(rule.code, { points, note });
  }

  const evidence: ScoredEvidence[] = results.map((r) => {
    const { rule, settings, outcome, ignoredOverride } = r;
    const { evaluated, fired, value, threshold, window, scope, note } = outcome;
    const award = awarded.get(rule.code);
    const notes = [note, award?.note, ignoredOverride];
    if (fired && settings.mode === 'monitor') notes.push(`monitor mode: would add ${worth(r)} points`);
    const e: ScoredEvidence = { code: rule.code, category: rule.category, mode: settings.mode, evaluated, fired, points: award?.points ?? 0 };
    if (value !== undefined) e.value = value;
    if (threshold !== undefined) e.threshold = threshold;
    if (window !== undefined) e.window = window;
    if (scope !== undefined) e.scope = scope;
    const joined = notes.filter((n): n is string => Boolean(n)).join('; ');
    if (joined) e.note = joined;
    return e;
  });

  const score = evidence.reduce((sum, e) => sum + e.points, 0);
  const reasons = evidence.filter((e) => e.fired && e.mode === 'score').map((e) => e.code);
  return { score, decision: decide(score, flagAt, rejectAt), reasons, evidence };
}

function worth(r: RuleResult): number {
  return r.outcome.points ?? r.settings.points;
}

export function decide(score: number, flagAt: number, rejectAt: number): Decision {
  if (score >= rejectAt) return 'rejected';
  if (score >= flagAt) return 'flagged';
  return 'accepted';
}
