import { strictIsoTime } from '../http/utc-day.js';

/**
 * Times in finance queries and bodies: ISO 8601, a date (midnight UTC) or a date-time with an
 * explicit zone (`Z` or `+02:00`). A date-time without a zone is refused: read as the server's local
 * time it would shift a whole report by the server's offset.
 */

// One parsing path with the audit and attempt listings: a date that does not exist (2026-02-30) is
// refused rather than rolled over into March by JavaScript's Date.
export const isoTime = strictIsoTime;

/**
 * zod 4 still runs an object's refinements when a field failed, with that field's raw input, so a
 * refinement comparing two times first checks that both became dates.
 */
export const bothDates = (a: unknown, b: unknown): [Date, Date] | undefined => (a instanceof Date && b instanceof Date ? [a, b] : undefined);
