import { z } from 'zod';

/**
 * Answers that the document describes field by field. Each one is checked against real answers in
 * test/openapi.test.ts; answers without a schema here are described in words in the operations.
 */

export const postbackResult = z
  .object({
    conversionId: z.string(),
    decision: z.enum(['accepted', 'flagged', 'rejected']),
    reasons: z.array(z.string()).meta({ description: 'Stable snake_case reason codes; the evidence behind each is in GET /v1/conversions/{id}.' }),
    duplicate: z.boolean(),
    status: z.enum(['approved', 'pending', 'rejected']),
  })
  .strict()
  .meta({ id: 'PostbackResult' });

export const health = z.object({ status: z.literal('ok') }).strict();
export const readiness = z.object({ status: z.literal('ready') }).strict();
