import { z } from 'zod';

/**
 * Times in finance queries and bodies: ISO 8601, a date (midnight UTC) or a date-time with an
 * explicit zone (`Z` or `+02:00`). A date-time without a zone is refused: read as the server's local
 * time it would shift a whole report by the server's offset.
 */

const ISO = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/;

export const isoTime = z.string().transform((v, ctx) => {
  const at = ISO.test(v) ? new Date(v) : undefined;
  if (!at || Number.isNaN(at.getTime())) {
    ctx.addIssue({ code: 'custom', message: 'must be an ISO 8601 date or date-time with a zone, such as 2026-01-31T00:00:00Z' });
    return z.NEVER;
  }
  return at;
});

/**
 * zod 4 still runs an object's refinements when a field failed, with that field's raw input, so a
 * refinement comparing two times first checks that both became dates.
 */
export const bothDates = (a: unknown, b: unknown): [Date, Date] | undefined => (a instanceof Date && b instanceof Date ? [a, b] : undefined);
