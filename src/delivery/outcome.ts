import { parseRetryAfter } from './schedule.js';

/**
 * What one try means, decided from what the sender saw. Pure, so the whole retry policy of
 * CONTRACT §6 (2xx ends it, 3xx is a failure, 410 disables, Retry-After on 429/503) is unit-tested
 * without a socket.
 */

export type SendResult =
  | {
      kind: 'response';
      statusCode: number;
      retryAfter: string | undefined;
      location: string | undefined;
      snippet: string;
      latencyMs: number;
    }
  | { kind: 'error'; reason: 'timeout' | 'refused' | 'network' | 'aborted'; message: string; latencyMs: number };

/** Closed set used as a metric label and in logs. */
export type AttemptResult =
  | 'delivered'
  | 'gone'
  | 'redirect'
  | 'rate_limited'
  | 'http_error'
  | 'timeout'
  | 'network_error'
  | 'refused'
  | 'aborted';

export type Verdict =
  | { kind: 'delivered'; result: AttemptResult }
  | { kind: 'gone'; result: AttemptResult; error: string }
  | {
      kind: 'retry';
      result: AttemptResult;
      error: string;
      retryAfterMs: number | undefined;
      /** Counts toward the circuit breaker: the endpoint itself is unhealthy, not merely refusing this message. */
      endpointFailure: boolean;
      /** Our own shutdown cut it short: retry at once, without the backoff the publisher did not earn. */
      immediate: boolean;
    };

export function classify(sent: SendResult, nowMs: number = Date.now()): Verdict {
  if (sent.kind === 'error') {
    const result: AttemptResult = sent.reason === 'network' ? 'network_error' : sent.reason;
    return {
      kind: 'retry',
      result,
      error: sent.message,
      retryAfterMs: undefined,
      endpointFailure: sent.reason === 'timeout' || sent.reason === 'network',
      immediate: sent.reason === 'aborted',
    };
  }
  const code = sent.statusCode;
  if (code >= 200 && code < 300) return { kind: 'delivered', result: 'delivered' };
  if (code === 410) return { kind: 'gone', result: 'gone', error: 'HTTP 410 Gone: endpoint disabled until an admin re-enables it' };
  if (code >= 300 && code < 400) {
    const to = sent.location ? ` to ${sent.location.slice(0, 200)}` : '';
    return { kind: 'retry', result: 'redirect', error: `HTTP ${code}: redirect not followed${to}`, retryAfterMs: undefined, endpointFailure: false, immediate: false };
  }
  const honoursRetryAfter = code === 429 || code === 503;
  return {
    kind: 'retry',
    result: code === 429 ? 'rate_limited' : 'http_error',
    error: `HTTP ${code}`,
    retryAfterMs: honoursRetryAfter ? parseRetryAfter(sent.retryAfter, nowMs) : undefined,
    endpointFailure: code >= 500 || code === 429,
    immediate: false,
  };
}
