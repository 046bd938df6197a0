import type { IncomingMessage } from 'node:http';

/**
 * Request IDs: a caller's own ID is kept so one ID follows a request through its proxies, its logs
 * and ours; otherwise one is made here. `X-Request-Id` wins over `traceparent` because it names the
 * request itself, where a trace ID may span many requests. Called for every request (the click
 * redirect included), so it reads two headers and tests one short regex at most.
 */

/** Short enough for a log field and a header, and nothing that needs escaping in either. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:@+=/-]{1,128}$/;

/** W3C Trace Context: version-traceid-parentid-flags, lowercase hex; version ff and all-zero IDs are invalid. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-|$)/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_PARENT_ID = '0'.repeat(16);

export function traceIdOf(traceparent: string): string | undefined {
  const m = TRACEPARENT.exec(traceparent);
  if (!m) return undefined;
  const [, version, traceId, parentId] = m as unknown as [string, string, string, string];
  // Version 00 has exactly four fields; later versions may append more after a dash.
  if (version === 'ff' || (version === '00' && traceparent.length !== 55)) return undefined;
  if (traceId === ZERO_TRACE_ID || parentId === ZERO_PARENT_ID) return undefined;
  return traceId;
}

export function acceptedRequestId(headers: IncomingMessage['headers']): string | undefined {
  const given = headers['x-request-id'];
  if (typeof given === 'string' && SAFE_REQUEST_ID.test(given)) return given;
  const traceparent = headers.traceparent;
  if (typeof traceparent === 'string') return traceIdOf(traceparent);
  return undefined;
}

/** IDs made here need to be unique, not secret: a process prefix and a counter. */
export function requestIdGenerator(): (request: IncomingMessage) => string {
  const prefix = `${process.pid.toString(36)}-${Date.now().toString(36)}-`;
  let counter = 0;
  return (request) => acceptedRequestId(request.headers) ?? prefix + (++counter).toString(36);
}
