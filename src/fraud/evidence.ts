import { RULES_BY_CODE } from './registry.js';
import type { ScoredEvidence } from './scorer.js';

/**
 * Evidence as stored on `conversions.evidence`, and as the review API shows it.
 *
 * Every conversion keeps one entry per rule, so the stored form leaves out what is the same for most
 * entries and can be restored exactly: `mode` when it is `score`, `evaluated` when true, `fired` when
 * false, `points` when 0, and `category` (fixed per rule, from the registry). That halves the JSON
 * written with each conversion (about 2.3 KB to 1.1 KB), which is most of what storing evidence costs
 * the intake: serialising it, sending it, and PostgreSQL parsing a jsonb value over its compression
 * threshold. `expandEvidence` restores the documented shape for the API; entries written in full (by
 * the reconciler, or before this form existed: they carry both `mode` and `points`, which a stored
 * entry never does) pass through unchanged.
 */

export type StoredEvidence = Partial<ScoredEvidence> & { code: string };

export function storedEvidence(entries: readonly ScoredEvidence[]): StoredEvidence[] {
  // Field by field, not by rest destructuring: this runs for every rule of every postback.
  return entries.map((e) => {
    const out: StoredEvidence = { code: e.code };
    if (e.value !== undefined) out.value = e.value;
    if (e.threshold !== undefined) out.threshold = e.threshold;
    if (e.window !== undefined) out.window = e.window;
    if (e.scope !== undefined) out.scope = e.scope;
    if (e.note !== undefined) out.note = e.note;
    if (e.mode !== 'score') out.mode = e.mode;
    if (!e.evaluated) out.evaluated = false;
    if (e.fired) out.fired = true;
    if (e.points !== 0) out.points = e.points;
    return out;
  });
}

/** The documented shape: code, category, mode, evaluated, fired, points, then what was measured. */
export function expandEvidence(stored: unknown): unknown[] {
  if (!Array.isArray(stored)) return [];
  return stored.map((entry) => {
    if (typeof entry !== 'object' || entry === null || typeof (entry as { code?: unknown }).code !== 'string') return entry;
    const e = entry as StoredEvidence;
    // A stored entry never has both (a non-score mode has no points), so this one was written in full.
    if ('mode' in e && 'points' in e) return entry;
    const { code, ...measuredAndSet } = e;
    const category = e.category ?? RULES_BY_CODE.get(code)?.category;
    return {
      code,
      ...(category ? { category } : {}),
      mode: 'score',
      evaluated: true,
      fired: false,
      points: 0,
      ...measuredAndSet,
    };
  });
}
