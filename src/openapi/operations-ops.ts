import type { Operation } from './operation.js';
import { health, readiness } from './responses.js';

/** Operations (CONTRACT §9), the web UI's page (§8) and this reference itself: all unauthenticated. */

export const opsOperations: Operation[] = [
  {
    method: 'get', path: '/healthz', operationId: 'healthz', tag: 'Operations', summary: 'Liveness',
    description: 'The process answers; says nothing about PostgreSQL.',
    ok: { 200: { description: 'Alive.', content: { 'application/json': health } } },
  },
  {
    method: 'get', path: '/readyz', operationId: 'readyz', tag: 'Operations', summary: 'Readiness',
    description: 'PostgreSQL reachable (through the circuit breaker, within its deadline) and every migration applied.',
    ok: { 200: { description: 'Ready for traffic.', content: { 'application/json': readiness } } },
    errors: ['unavailable'],
  },
  {
    method: 'get', path: '/metrics', operationId: 'metrics', tag: 'Operations', summary: 'Prometheus metrics',
    description: 'Open unless METRICS_TOKEN is set; with METRICS_PORT set it is served on that listener instead of this one.',
    security: [{}, { metricsToken: [] }],
    ok: { 200: { description: 'The Prometheus text exposition format.', content: { 'text/plain': undefined } } },
    errors: ['unauthorized'],
  },
  {
    method: 'get', path: '/ui/', operationId: 'webUi', tag: 'Operations', summary: 'The web UI',
    description: 'For analysts and finance; it signs in with an API token and calls only this origin. `/ui` redirects here.',
    ok: { 200: { description: 'The single-page UI.', content: { 'text/html': undefined } }, 301: { description: 'From `/ui` to `/ui/`.' } },
  },
  {
    method: 'get', path: '/openapi.json', operationId: 'openapiDocument', tag: 'Operations', summary: 'This OpenAPI 3.1 document',
    description: "Generated at start-up from the same zod schemas the routes validate with.",
    ok: { 200: { description: 'The document.', content: { 'application/json': undefined } } },
  },
  {
    method: 'get', path: '/docs', operationId: 'apiReference', tag: 'Operations', summary: 'API reference page',
    description: 'Renders /openapi.json with Redoc, served by the engine itself: the page makes no request to any other origin.',
    ok: { 200: { description: 'The reference page.', content: { 'text/html': undefined } } },
  },
  {
    method: 'get', path: '/docs/redoc.js', operationId: 'apiReferenceScript', tag: 'Operations', summary: "The reference page's script",
    description: "Redoc's standalone bundle, from the engine's own dependencies.",
    ok: { 200: { description: 'JavaScript.', content: { 'text/javascript': undefined } } },
  },
];
