import type { Offer } from '../catalog/catalog.js';

/** The contract between the intake and the fraud scorer (src/fraud/scorer.ts implements it). */

export type Decision = 'accepted' | 'flagged' | 'rejected';

export type ScoreInput = {
  advertiserId: string;
  offer: Offer;
  publisherId: string;
  clickId: string;
  clickCreatedAt: Date;
  /** undefined: the click row was not found (not yet flushed, lost in a crash, or past retention). */
  click: { ip: string | null; userAgent: string | null; subs: (string | null)[] } | undefined;
  userIp: string | undefined;
  userAgent: string | undefined;
  txid: string;
  event: string;
  status: 'approved' | 'pending' | 'rejected';
  payoutMinor: bigint;
  currency: string;
  /** false when the postback omitted payout and the offer's was used. */
  payoutSent: boolean;
  now: Date;
};

export type Evidence = {
  code: string;
  mode: 'off' | 'monitor' | 'score';
  evaluated: boolean;
  points: number;
  value?: unknown;
  threshold?: unknown;
  window?: string;
  scope?: string;
  note?: string;
};

/**
 * `evidence` is stored on the conversion as given; the scorer hands it over in its stored form
 * (src/fraud/evidence.ts), and the review API expands it to the documented shape.
 */
export type ScoreResult = { score: number; decision: Decision; reasons: string[]; evidence: readonly object[] };

export type PostbackScorer = { score(input: ScoreInput): Promise<ScoreResult> };
