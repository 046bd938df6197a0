import type { z } from 'zod';
import { invalidRequest, issuesToDetails } from '../errors.js';

/** Parse or throw the contract's 400 with every bad field listed. */
export function parse<S extends z.ZodType>(schema: S, input: unknown, prefix?: string): z.infer<S> {
  const result = schema.safeParse(input ?? {});
  if (!result.success) {
    const details = issuesToDetails(result.error.issues).map((d) => ({
      ...d,
      path: prefix ? (d.path ? `${prefix}.${d.path}` : prefix) : d.path,
    }));
    throw invalidRequest(details);
  }
  return result.data;
}
