import { z } from 'zod';

/**
 * UTC calendar days and times in query strings, checked against the calendar: JavaScript's Date reads
 * `2026-02-30` as 2 March, so a day is only accepted when it survives the round trip.
 */

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIME = /^(\d{4}-\d{2}-\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/;

/** The day as `YYYY-MM-DD` when it is a real calendar day from year 1900 on, else undefined. */
export function parseUtcDay(text: string): string | undefined {
  const match = DAY.exec(text);
  if (!match) return undefined;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (year < 1900) return undefined;
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day ? text : undefined;
}

export const utcDay = z.string().meta({ description: 'A calendar day, YYYY-MM-DD (UTC).' }).refine((v) => parseUtcDay(v) !== undefined, 'must be a calendar day YYYY-MM-DD (UTC)');

/** An ISO 8601 date (midnight UTC) or date-time with an explicit zone, on a real calendar day. */
export const strictIsoTime = z.string().meta({ description: 'ISO 8601: a date (midnight UTC) or a date-time with a zone, e.g. 2026-01-31T00:00:00Z.' }).transform((v, ctx) => {
  const match = TIME.exec(v);
  const at = match && parseUtcDay(match[1] as string) ? new Date(v) : undefined;
  if (!at || Number.isNaN(at.getTime())) {
    ctx.addIssue({ code: 'custom', message: 'must be an ISO 8601 date or date-time with a zone, such as 2026-01-31T00:00:00Z' });
    return z.NEVER;
  }
  return at;
});
