import type { OpenAPIRegistry, ResponseConfig, RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z, type ZodObject, type ZodType } from 'zod';
import type { Role } from '../auth/tokens.js';
import { ERRORS, type ErrorCode } from '../errors.js';

/**
 * One operation of the OpenAPI document, in the terms the routes use (fastify paths, roles, error
 * codes), turned into zod-to-openapi's route config. Request schemas are the handlers' own zod objects;
 * the error responses come from the error registry, so a code's status can never drift from errors.ts.
 */

const ERROR_CODES = Object.keys(ERRORS) as [ErrorCode, ...ErrorCode[]];

/** The contract's error body (CONTRACT conventions); some codes add fields of their own beside these (reason, runId). */
export const errorBody = z
  .object({
    error: z
      .object({
        code: z.enum(ERROR_CODES),
        message: z.string(),
        details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
        requestId: z.string().optional().describe("the request's x-request-id: the caller's X-Request-Id or traceparent trace-id when valid, else the engine's own"),
      })
      .loose(),
  })
  .strict()
  .meta({ id: 'Error', description: 'Every refusal: a machine-readable `code`, a sentence for people, and for `invalid_request` every bad field.' });

export const TAGS = {
  Catalog: 'Advertisers, publishers and offers (admin).',
  Tokens: 'API bearer tokens and their roles (admin).',
  Tracking: 'The public edge: click redirects, postbacks from advertisers, the conversion pixel.',
  Conversions: 'Conversions as recorded, their review by analysts, and refused postback attempts.',
  Finance: 'Payout and advertiser reports, reconciliation runs, exchange rates.',
  Deliveries: 'Outbound postbacks to publishers: the log, replay, re-enabling an endpoint.',
  Fraud: 'The fraud rules, their defaults and what applies to an offer.',
  Audit: 'Who changed what in the catalog and tokens.',
  Operations: 'Health, readiness, metrics, this reference and the web UI.',
} as const;

export type Tag = keyof typeof TAGS;

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type Content = Record<string, ZodType | undefined>;

export type Operation = {
  method: Method;
  /** As registered with fastify (`/v1/offers/:id`). */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: Tag;
  /** Bearer-token roles that may call it (admin always may); absent: public, or `security` says how it is authenticated. */
  roles?: readonly Role[];
  security?: RouteConfig['security'];
  params?: ZodObject;
  query?: ZodObject;
  body?: { content: Content; description?: string };
  /** Success statuses with a sentence each and, where the answer has one, its media types (a schema where one exists). */
  ok: Record<number, { description: string; content?: Content; headers?: Record<string, string> }>;
  /** Refusals beyond the implied ones: 400 (every route refuses a `__proto__` query key), 401/403/503 with roles. */
  errors?: readonly ErrorCode[];
  /** Answers success to every request, whatever it holds (the pixel), so not even the implied 400. */
  neverRefuses?: true;
};

export const openApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

const toContent = (content: Content) =>
  Object.fromEntries(Object.entries(content).map(([type, schema]) => [type, schema ? { schema } : {}]));

/** Codes grouped by their status, one response each: the registry is the single source of statuses. */
function errorResponses(codes: readonly ErrorCode[]): Record<string, ResponseConfig> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) byStatus.set(ERRORS[code].status, [...(byStatus.get(ERRORS[code].status) ?? []), code]);
  return Object.fromEntries(
    [...byStatus].map(([status, list]) => [
      String(status),
      { description: list.map((code) => `\`${code}\``).join(', '), content: { 'application/json': { schema: errorBody } } },
    ]),
  );
}

export function registerOperation(registry: OpenAPIRegistry, op: Operation): void {
  const names = [...op.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1] as string);
  const params = op.params ?? (names.length > 0 ? z.object(Object.fromEntries(names.map((n) => [n, z.string().min(1)]))) : undefined);
  const implied: ErrorCode[] = op.neverRefuses ? [] : ['invalid_request'];
  if (op.roles) implied.push('unauthorized', 'forbidden', 'unavailable');
  const roles = op.roles ? ['admin', ...op.roles.filter((r) => r !== 'admin')] : undefined;
  const description = [op.description, roles ? `Roles: ${roles.join(', ')}.` : undefined].filter(Boolean).join('\n\n');
  registry.registerPath({
    method: op.method,
    path: openApiPath(op.path),
    operationId: op.operationId,
    summary: op.summary,
    ...(description ? { description } : {}),
    tags: [op.tag],
    security: op.security ?? (roles ? [{ apiToken: [] }] : []),
    ...(roles ? { 'x-roles': roles } : {}),
    request: {
      ...(params ? { params } : {}),
      ...(op.query ? { query: op.query } : {}),
      ...(op.body ? { body: { required: true, description: op.body.description, content: toContent(op.body.content) } } : {}),
    },
    responses: {
      ...Object.fromEntries(
        Object.entries(op.ok).map(([status, r]) => [
          status,
          {
            description: r.description,
            ...(r.content ? { content: toContent(r.content) } : {}),
            ...(r.headers
              ? { headers: Object.fromEntries(Object.entries(r.headers).map(([name, text]) => [name, { description: text, schema: { type: 'string' as const } }])) }
              : {}),
          },
        ]),
      ),
      ...errorResponses([...implied, ...(op.errors ?? [])]),
    },
  });
}
