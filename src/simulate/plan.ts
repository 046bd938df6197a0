/**
 * What the simulator sends, as data: sessions of steps, each postback labelled with the pattern that
 * produced it. Terminology:
 * - session: what one actor does, in order (a user clicks, later converts; a bot clicks and converts
 *   at once; an attacker replays a captured postback). Sessions run concurrently; steps in a session run
 *   in order.
 * - label: honest, or the fraud pattern (and variant) that made an attempt, with the reason codes that
 *   pattern should produce when its postback is committed.
 * - per-conversion pattern: every attempt carries its own evidence (a forged signature, an impossible
 *   click-to-conversion time, a bot on a cloud server, an inflated payout, a click converting twice).
 * - aggregate pattern: only visible in counts (one address converting over and over, a sub-source
 *   converting far above the offer, a flood of clicks); judged once past the rule's minimum volume.
 */

/** The three measured offers, and `other`: the rest of the network's traffic, clicks only (honest.ts, backgroundClicks). */
export type OfferKey = 'app' | 'lead' | 'shop' | 'other';
export type PatternKind = 'honest' | 'per-conversion' | 'aggregate';

export type Label = {
  pattern: string;
  kind: PatternKind;
  variant: string;
  /** Reason codes this attempt should carry if it is committed as a conversion. */
  expected: string[];
  /**
   * Aggregate patterns: the attempt counts as "past minimum volume" when at least `min` earlier
   * attempts with the same `key` were committed before it was sent (and, with `offerClicks`, the
   * offer had that many clicks: a baseline the rule needs before it can judge a rate).
   */
  volume?: { key: string; min: number; offerClicks?: number };
  /** Reported, but not counted in the pass/fail targets, for this reason. */
  outsideTarget?: string;
};

/** A click as the user's browser (or a bot) makes it: offer, publisher, sub1, address, user agent. */
export type ClickSpec = { offer: OfferKey; publisher: string; sub1: string | null; ip: string; ua: string | null };

export type PostbackSpec = {
  txid: string;
  event: string;
  status: 'approved' | 'pending';
  /** Sent payout as a decimal string; omitted means the offer's. */
  payout?: string;
  /** The converting user's address and user agent as the advertiser saw them, when it forwards them. */
  ip?: string;
  ua?: string;
  method: 'GET' | 'POST';
};

export type ReplayHow = 'exact' | 'stale' | 'tamper' | 'new-txid';
export type ForgeHow = 'wrong-key' | 'unsigned' | 'fabricated-click' | 'wrong-address';

export type Step =
  /** A real GET /c. */
  | { t: 'click'; click: ClickSpec }
  /**
   * A conversion `ctitS` after its click. The click it converts is stamped that long ago (see
   * twin-clicks.ts); 'previous' converts the session's last converted click again (another event).
   */
  | { t: 'convert'; click: ClickSpec | 'previous'; ctitS: number; postback: PostbackSpec; label: Label }
  /** Something done with the session's last postback request. */
  | { t: 'replay'; how: ReplayHow; label: Label; txid?: string }
  /** A postback the advertiser never signed, for the session's last /c click. */
  | { t: 'forge'; how: ForgeHow; postback: PostbackSpec; label: Label };

export type Session = Step[];

/** A flood's clicks as sessions of twenty: floods come in bursts, and it keeps the session count small. */
export function clickBursts(count: number, click: () => ClickSpec): Session[] {
  const sessions: Session[] = [];
  for (let i = 0; i < count; i += 20) sessions.push(Array.from({ length: Math.min(20, count - i) }, (): Step => ({ t: 'click', click: click() })));
  return sessions;
}

export const HONEST: Label = { pattern: 'honest', kind: 'honest', variant: 'user', expected: [] };

/** A click's publisher segment (publisher and sub1), as the volume key of a rate pattern. */
export const segmentKey = (c: ClickSpec) => `seg:${c.publisher}:${c.sub1 ?? ''}`;
/** A click's publisher, as the volume key of a pattern judged over a whole publisher. */
export const publisherKey = (c: ClickSpec) => `pub:${c.publisher}`;

/** Requests a session makes (for the progress bar). */
export function requestCount(sessions: Session[]): number {
  return sessions.reduce((n, s) => n + s.length, 0);
}
