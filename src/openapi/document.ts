import { readFileSync } from 'node:fs';
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { registerOperation, TAGS, type Operation } from './operation.js';
import { catalogOperations } from './operations-catalog.js';
import { financeOperations } from './operations-finance.js';
import { opsOperations } from './operations-ops.js';
import { trackingOperations } from './operations-tracking.js';

/**
 * The OpenAPI 3.1 document of every route, generated from the routes' own zod schemas, so the
 * reference cannot describe a field the handler does not check. Built once and kept: it depends on
 * no configuration (the publisher URL rule is the production one).
 */

export const OPERATIONS: readonly Operation[] = [...opsOperations, ...catalogOperations, ...trackingOperations, ...financeOperations];

const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string; license: string };

type OpenApiDocument = ReturnType<OpenApiGeneratorV31['generateDocument']>;

let built: OpenApiDocument | undefined;

export function openApiDocument(): OpenApiDocument {
  if (built) return built;
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'apiToken', {
    type: 'http',
    scheme: 'bearer',
    description: 'An API token (POST /v1/tokens, or ADMIN_TOKEN). `admin` may call everything; the other roles what each operation lists.',
  });
  registry.registerComponent('securitySchemes', 'metricsToken', {
    type: 'http',
    scheme: 'bearer',
    description: 'METRICS_TOKEN, when it is set.',
  });
  registry.registerComponent('securitySchemes', 'postbackJwt', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: "Signed by a key in the advertiser's JWKS; `iss`, `aud` = postback-engine, `iat`, `exp`, `jti` required; the postback fields are claims.",
  });
  registry.registerComponent('securitySchemes', 'querySignature', {
    type: 'apiKey',
    in: 'query',
    name: 'sig',
    description: 'HMAC-SHA256 (lowercase hex) with the webhook secret over `<path>?<query up to &sig=>`, the query ending `&ts=<unix seconds>&sig=`.',
  });
  registry.registerComponent('securitySchemes', 'webhookSignature', {
    type: 'apiKey',
    in: 'header',
    name: 'webhook-signature',
    description: 'Standard Webhooks: `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64>` over `id.timestamp.rawBody`.',
  });
  for (const op of OPERATIONS) registerOperation(registry, op);
  built = new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Postback engine',
      version: PACKAGE.version,
      license: { name: PACKAGE.license, identifier: PACKAGE.license },
      description:
        'Fraud-resistant postback validation and reconciliation. Every refusal is `{"error": {"code", "message", "details"?, "requestId"}}`; money is a decimal string with its ISO 4217 currency; times are ISO 8601 UTC.',
    },
    servers: [{ url: '/', description: 'The engine serving this document.' }],
    tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
  });
  return built;
}
