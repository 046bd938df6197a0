import { DatabaseUnavailableError, unavailableReason, type DatabaseBreaker } from '../db/breaker.js';
import { ApiError } from '../errors.js';

/** Lock-order races between nodes are resolved by PostgreSQL aborting one side; retry it. */
const RETRYABLE = new Set(['40P01', '40001']);
const MAX_RETRIES = 3;

/**
 * The 503 for a postback that could not be made durable. After a deadline miss the statement may
 * still commit: the sender is told to retry, and the retry meets the unique key (a duplicate).
 */
export function unavailableError(err: unknown): ApiError {
  if (err instanceof ApiError && err.code === 'unavailable') return err;
  const reason = unavailableReason(err);
  const message =
    reason === 'timeout'
      ? 'PostgreSQL did not confirm the commit in time, so it may or may not be recorded; retry it (a retry with the same txid is idempotent).'
      : reason === 'circuit_open'
        ? 'PostgreSQL is unreachable; nothing was recorded. Retry later.'
        : 'The conversion could not be made durable; retry it (a retry with the same txid is idempotent).';
  return new ApiError('unavailable', message, { cause: err, headers: { 'retry-after': '1' } });
}

/** Runs a commit again when PostgreSQL aborted it for a deadlock or a serialization failure. */
export async function retryingAbortedCommits<T>(commit: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await commit();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (attempt >= MAX_RETRIES || !code || !RETRYABLE.has(code)) throw err;
    }
  }
}

/**
 * Answers 503 to the postbacks whose deadline has passed and returns the rest: sending an expired
 * one's statement now would only make its outcome unknown.
 */
export function withoutExpired<W extends { deadlineAt: number; reject: (e: unknown) => void }>(batch: W[], breaker: DatabaseBreaker): W[] {
  return batch.filter((w) => {
    if (!breaker.isPast(w.deadlineAt)) return true;
    w.reject(unavailableError(new DatabaseUnavailableError('timeout')));
    return false;
  });
}
