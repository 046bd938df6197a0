import { DEFAULT_DELIVERY_BACKOFF_S } from '../config.js';
import { JITTER_FRACTION, MIN_RETRY_DELAY_MS } from './limits.js';

/**
 * When the next try happens. Pure: the worker feeds it the attempt count and the response, and the
 * store caps the result at the delivery's deadline.
 */

/** Delay after the `failedAttempts`-th failure: schedule[n-1], the last entry repeating, plus upward jitter. */
export function backoffDelayMs(failedAttempts: number, scheduleS: readonly number[], random: () => number = Math.random): number {
  const schedule = scheduleS.length > 0 ? scheduleS : DEFAULT_DELIVERY_BACKOFF_S;
  const index = Math.min(Math.max(failedAttempts, 1), schedule.length) - 1;
  const baseMs = (schedule[index] as number) * 1000;
  return Math.round(baseMs * (1 + JITTER_FRACTION * random()));
}

/**
 * Retry-After as milliseconds from `nowMs`: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
 * Anything else is ignored (undefined), so a malformed header falls back to the schedule.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d{1,10}$/.test(text)) return Number(text) * 1000;
  // Only the IMF-fixdate family parses here; a bare number with a sign or decimals is not a date either.
  if (!/[A-Za-z]/.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/**
 * The delay before the next try: the receiver's Retry-After when it sent one on 429/503 (it knows
 * when it will have capacity, and an earlier try would only be refused again), else the schedule.
 */
export function nextDelayMs(
  failedAttempts: number,
  scheduleS: readonly number[],
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== undefined) return Math.max(MIN_RETRY_DELAY_MS, retryAfterMs);
  return backoffDelayMs(failedAttempts, scheduleS, random);
}
