import type { Receiver } from './receiver.js';
import type { Attempt } from './driver.js';
import type { Evaluation } from './evaluate.js';

/** What a run writes to reports/fraud-eval.json (and renders as HTML and text). */

export type QueueItem = { id: string; priority: string; score: number; payout: string; reasons: string[]; label: string };

export type SimReport = {
  seed: number;
  requestedClicks: number;
  startedAt: string;
  durationS: number;
  target: string;
  fraudState: string;
  method: string[];
  traffic: { clicks: number; backgroundClicks?: number; postbacks: number; sessions: number };
  evaluation: Evaluation;
  deliveries: { expected: number; received: number; repeated: number; unexpected: number } | undefined;
  reviewQueueTop: QueueItem[];
  errors: string[];
};

export const METHOD = [
  'Every click is a real GET /c request behind a trusted proxy (X-Forwarded-For carries the simulated user\'s address); every postback is a real signed HTTP request (GET query HMAC or POST Standard Webhooks, half each).',
  'One step is not HTTP: a conversion converts a "twin" of its user\'s click, stamped as long ago as the simulated click-to-conversion time, minted with the engine\'s click key read from click_keys and written to the clicks table with the engine\'s own insert before the postback is sent. The contract\'s windows are real time and a run lasts about a minute; this is how hours and days between click and conversion are simulated without waiting. The engine\'s click counters still see only the real /c traffic.',
  'Addresses are drawn from real ranges by AS number (the bundled IP-to-AS table, src/simulate/networks.ts): consumer ISPs and mobile carriers for people, business broadband and a cloud security gateway for offices, commercial VPN providers for VPN users, sixteen hosting networks and AWS/DigitalOcean for scripts. Each pattern is labelled by who really sent it, never by the engine\'s own classification.',
  'Before the measured traffic, the network\'s other traffic of the hour before (10 % of the run\'s clicks): the same population clicking through the same honest publishers on a fourth offer, clicks only. A running network has that history and a fresh engine does not; it shows which carrier pool addresses and VPN exits many people share, and touches no measured offer\'s counts. Fraud publishers send none.',
  'The offers use the engine\'s default fraud settings. The traffic is the same for the same seed, while decisions at the edges of a count (the 6th conversion of an address) may move by a few between runs because sessions run concurrently; --seeds pools several seeds, each on a fresh engine and database.',
];

/** Outbound postbacks the receiver got, against the conversions that should have produced one. */
export function deliveryCheck(attempts: Attempt[], receiver: Receiver): SimReport['deliveries'] {
  const accepted = new Set(attempts.filter((a) => a.status === 200 && !a.duplicate && a.decision === 'accepted').map((a) => a.conversionId as string));
  let repeated = 0;
  let unexpected = 0;
  for (const [id, n] of receiver.deliveries) {
    if (n > 1) repeated++;
    if (!accepted.has(id)) unexpected++;
  }
  return { expected: accepted.size, received: receiver.deliveries.size, repeated, unexpected };
}
