import type { Catalog } from '../catalog/catalog.js';
import type { Sql } from '../db/database.js';
import type { Logger } from '../logger.js';
import { checkDestinationUrl } from '../net/destination.js';
import { disableOnGone } from './endpoint.js';
import type { HttpSender } from './http-sender.js';
import { buildRequest } from './message.js';
import type { DeliveryMetrics } from './metrics.js';
import { classify, type AttemptResult, type SendResult, type Verdict } from './outcome.js';
import type { GateOutcome, PublisherGate } from './publisher-gate.js';
import { nextDelayMs } from './schedule.js';
import type { AttemptRecord, OutcomeWriter } from './outcome-writer.js';
import type { ClaimedDelivery } from './store.js';

/**
 * One try of one claimed delivery: build and sign the request, send it, decide, record. The HTTP call
 * happens with no transaction open; the outcome is written afterwards by the batching OutcomeWriter
 * (or in one short transaction for a 410, which also disables the endpoint).
 */

export type AttemptDeps = {
  sql: Sql;
  /** Transactions only (the 410 path). */
  txSql: Sql;
  catalog: Catalog;
  log: Logger;
  metrics: DeliveryMetrics;
  sender: HttpSender;
  outcomes: OutcomeWriter;
  gate: PublisherGate;
  workerId: string;
  backoffS: readonly number[];
  allowPrivate: boolean;
};

export type AttemptSummary = {
  deliveryId: string;
  result: AttemptResult;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
};

export async function performAttempt(
  deps: AttemptDeps,
  row: ClaimedDelivery,
  opts: { replay: boolean; stop: AbortSignal; onSent?: () => void },
): Promise<AttemptSummary> {
  // Taken synchronously, before the first await, so the next claim already sees this slot as used.
  deps.gate.acquire(row.publisherId);
  const attemptedAt = new Date();
  let sent: SendResult;
  try {
    sent = await send(deps, row, opts.stop);
  } catch (err) {
    sent = { kind: 'error', reason: 'network', message: `internal: ${(err as Error).message}`, latencyMs: 0 };
  }
  const verdict = classify(sent);
  // Released before the outcome write: the publisher's slot guards its sockets, not our database.
  deps.gate.release(row.publisherId, gateOutcomeOf(verdict));
  opts.onSent?.();

  const statusCode = sent.kind === 'response' ? sent.statusCode : null;
  const error = verdict.kind === 'delivered' ? null : verdict.error;
  const record: AttemptRecord = {
    deliveryId: row.id,
    attemptedAt,
    statusCode,
    latencyMs: sent.latencyMs,
    error,
    snippet: sent.kind === 'response' ? sent.snippet : null,
    replay: opts.replay,
  };
  deps.metrics.attempts.inc({ result: verdict.result });
  deps.metrics.attemptDuration.observe({ result: verdict.result }, sent.latencyMs / 1000);

  await persist(deps, row, verdict, record);
  return { deliveryId: row.id, result: verdict.result, statusCode, latencyMs: sent.latencyMs, error };
}

async function send(deps: AttemptDeps, row: ClaimedDelivery, stop: AbortSignal): Promise<SendResult> {
  let publisher = deps.catalog.publishers.get(row.publisherId);
  if (!publisher) {
    // Created on another node less than a catalog poll ago.
    await deps.catalog.refresh();
    publisher = deps.catalog.publishers.get(row.publisherId);
  }
  if (!publisher) return { kind: 'error', reason: 'network', message: 'publisher not found in catalog', latencyMs: 0 };
  const request = buildRequest(publisher, row.conversion, row.id);
  // Literal private addresses and local names are refused before any socket exists; hostnames are
  // checked again at connect time by the sender's guard, against the address actually used.
  const check = checkDestinationUrl(request.url, deps.allowPrivate);
  if (!check.ok) return { kind: 'error', reason: 'refused', message: `destination refused: ${check.message}`, latencyMs: 0 };
  return deps.sender.send(row.publisherId, request, stop);
}

function gateOutcomeOf(verdict: Verdict): GateOutcome {
  if (verdict.kind === 'retry') {
    if (verdict.endpointFailure) return 'failure';
    if (verdict.result === 'refused' || verdict.result === 'aborted') return 'neutral';
  }
  // Any other HTTP answer, even a 4xx or a 410, shows the endpoint is alive.
  return 'success';
}

async function persist(deps: AttemptDeps, row: ClaimedDelivery, verdict: Verdict, record: AttemptRecord): Promise<void> {
  const failedAttempts = row.attempts + 1;
  if (verdict.kind === 'delivered') {
    await deps.outcomes.write({ attempt: record, delivered: true, retryInMs: 0 });
    deps.metrics.finished.inc({ state: 'delivered' });
    return;
  }
  if (verdict.kind === 'gone') {
    const reason = `HTTP 410 Gone on delivery ${row.id} at ${record.attemptedAt.toISOString()}`;
    const delay = nextDelayMs(failedAttempts, deps.backoffS, undefined);
    const disabledNow = await disableOnGone(deps.txSql, row.publisherId, reason, deps.workerId, record, delay);
    if (disabledNow) {
      deps.metrics.endpointDisabled.inc();
      deps.log.error(
        { publisherId: row.publisherId, deliveryId: row.id },
        'publisher endpoint answered 410 Gone: disabled; its deliveries wait until an admin calls POST /v1/publishers/:id/enable',
      );
      await deps.catalog.refresh().catch(() => undefined);
    }
    return;
  }
  const delay = verdict.immediate ? 0 : nextDelayMs(failedAttempts, deps.backoffS, verdict.retryAfterMs);
  await deps.outcomes.write({ attempt: record, delivered: false, retryInMs: delay });
  deps.log.debug({ deliveryId: row.id, publisherId: row.publisherId, result: verdict.result, error: verdict.error, delayMs: delay }, 'delivery attempt failed');
}
