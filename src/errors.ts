/**
 * Every error the engine answers with, in one registry: code -> HTTP status -> default message.
 * The body is always `{"error": {"code", "message", "details"?}}` (CONTRACT.md conventions), so a
 * sender can branch on `code` and a person can read `message`.
 */

export const ERRORS = {
  invalid_request: { status: 400, message: 'The request is invalid.' },
  unauthorized: { status: 401, message: 'A valid bearer token is required.' },
  bad_signature: { status: 401, message: 'The signature does not match.' },
  stale_signature: { status: 401, message: 'The signed timestamp is outside the accepted window.' },
  bad_token: { status: 401, message: 'The token is not valid for this advertiser.' },
  forbidden: { status: 403, message: 'This token lacks the role this route needs.' },
  ip_not_allowed: { status: 403, message: "The source address is not in the advertiser's allowlist." },
  not_found: { status: 404, message: 'Not found.' },
  unknown_advertiser: { status: 404, message: 'No such advertiser.' },
  unknown_offer: { status: 404, message: 'No such offer.' },
  unknown_publisher: { status: 404, message: 'No such publisher.' },
  method_not_allowed: { status: 405, message: 'Method not allowed.' },
  conflict: { status: 409, message: 'The request conflicts with what is already recorded.' },
  payload_too_large: { status: 413, message: 'The body is larger than 16 KiB.' },
  uri_too_long: { status: 414, message: 'The URL is too long.' },
  unsupported_media_type: { status: 415, message: 'Unsupported content type.' },
  invalid_click: { status: 422, message: 'The click ID is not valid for this advertiser.' },
  unknown_event: { status: 422, message: 'The offer has no goal for this event.' },
  rate_limited: { status: 429, message: 'Too many requests.' },
  internal_error: { status: 500, message: 'Internal error.' },
  unavailable: { status: 503, message: 'The request could not be made durable; retry it.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export type FieldIssue = { path: string; message: string };

export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: unknown;
  /** Extra top-level fields inside `error`, e.g. `reason` for invalid_click. */
  readonly extra: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    opts: { details?: unknown; extra?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    // `cause` is for the engine (metrics, logs), never for the body.
    super(message ?? ERRORS[code].message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ApiError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.details = opts.details;
    this.extra = opts.extra;
    this.headers = opts.headers;
  }

  /** `requestId` is the one in the `x-request-id` header, so a caller can quote it in a support request. */
  toBody(requestId?: string): { error: Record<string, unknown> } {
    const error: Record<string, unknown> = { code: this.code, message: this.message, ...this.extra };
    if (this.details !== undefined) error.details = this.details;
    if (requestId !== undefined) error.requestId = requestId;
    return { error };
  }
}

export function invalidRequest(details: FieldIssue[], message = 'One or more fields are invalid.'): ApiError {
  return new ApiError('invalid_request', message, { details });
}

/** zod issues to the contract's `[{path, message}]`; nested paths joined with dots. */
export function issuesToDetails(
  issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string; code?: string; keys?: readonly string[] }>,
): FieldIssue[] {
  return issues.flatMap((issue) => {
    const base = issue.path.map((p) => String(p));
    // One entry per unknown field, at the field's own path, so a client sees exactly what to remove.
    if (issue.code === 'unrecognized_keys' && issue.keys) {
      return issue.keys.map((key) => ({ path: [...base, key].join('.'), message: 'is not a known field' }));
    }
    return [{ path: base.join('.'), message: issue.message }];
  });
}
