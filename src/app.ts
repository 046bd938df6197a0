import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type RouteOptions } from 'fastify';
import { registerAdvertiserRoutes } from './admin/advertisers-route.js';
import { registerOfferRoutes } from './admin/offers-route.js';
import { registerPublisherRoutes } from './admin/publishers-route.js';
import { registerTokenRoutes } from './auth/tokens-route.js';
import { registerAuditRoutes } from './audit/audit-route.js';
import { registerFxRoutes } from './fx/fx-route.js';
import { registerAttemptRoutes } from './postback/attempts-route.js';
import { registerClickRoutes } from './click/route.js';
import type { Engine } from './engine.js';
import { unavailableReason } from './db/breaker.js';
import { isDatabaseUnavailable } from './db/database.js';
import { ApiError } from './errors.js';
import { BODY_LIMIT, registerBodyParsers } from './http/body-parsers.js';
import { serverLimits } from './http/server-limits.js';
import { registerAccessLog } from './http/access-log.js';
import { requestIdGenerator } from './http/request-id.js';
import { forbiddenFlatKey, forbiddenKeyError } from './http/safe-parse.js';
import { registerConversionRoutes } from './conversions/route.js';
import { registerDeliveryRoutes } from './delivery/route.js';
import { registerFraudRoutes } from './fraud/route.js';
import { registerOpsRoutes } from './ops/route.js';
import { registerPostbackRoutes } from './postback/route.js';
import { registerPixelRoutes } from './pixel/route.js';
import { registerReconcileRoutes } from './reconcile/route.js';
import { registerReportRoutes } from './reports/route.js';
import { registerReviewRoutes } from './review/route.js';
import { registerUiRoutes } from './ui/route.js';
import { registerOpenApiRoutes } from './openapi/route.js';

// One per process, so two apps in one process (tests) never hand out the same ID.
const nextRequestId = requestIdGenerator();

export type AppOptions = {
  /** Told of every route as it is registered (fastify's onRoute), so a test can cover routes added later without a list of its own. */
  onRoute?: (route: RouteOptions) => void;
};

/** Builds the HTTP layer over an engine; tests use `inject()`, main.ts listens. */
export async function buildApp(engine: Engine, opts: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: engine.log as unknown as FastifyBaseLogger,
    // Per-request log lines would cost more than a click redirect itself; metrics cover traffic.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // Never fastify's trustProxy: the source address is resolved by net/source-address.ts from TRUST_PROXY.
    trustProxy: false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    requestIdHeader: false,
    // Request IDs correlate logs and errors: the caller's X-Request-Id or traceparent trace-id when valid (http/request-id.ts).
    genReqId: nextRequestId,
    ...serverLimits(engine.config),
    // Fastify answers a path it cannot route (bad percent-encoding, an over-long parameter) with a body of its own; give it the contract's.
    frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      const apiError =
        error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? new ApiError('uri_too_long', 'A path segment is longer than any ID this engine issues or accepts.')
          : new ApiError('invalid_request', 'The URL path is not valid percent-encoded UTF-8.');
      // Routing failed before any hook ran, so the onRequest hook below never set the header.
      return reply.code(apiError.status).header('x-request-id', request.id).send(apiError.toBody(request.id));
    },
  });

  app.server.maxConnections = engine.config.httpMaxConnections;
  registerBodyParsers(app);
  const { onRoute } = opts;
  if (onRoute) app.addHook('onRoute', (route) => onRoute(route));

  // Set before the handler so every reply carries it, error replies included; hooks are sync
  // (callback style) because a promise per request per hook showed in the click redirect's profile.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    const forbidden = forbiddenFlatKey(request.query as object);
    if (forbidden !== undefined && !request.routeOptions.config.ownsFieldChecks) return done(forbiddenKeyError(forbidden));
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    engine.metrics.httpRequests.inc({ route, method: request.method, status: String(reply.statusCode) });
    engine.metrics.httpDuration.observe({ route, method: request.method }, reply.elapsedTime / 1000);
    done();
  });

  app.setErrorHandler((error: FastifyError | ApiError, request, reply) => {
    const apiError = toApiError(error);
    if (apiError.code === 'unavailable') {
      engine.metrics.unavailable.inc({ route: request.routeOptions.url ?? 'unmatched', reason: unavailableReason(error) });
    }
    if (apiError.status >= 500 && apiError.code !== 'unavailable') request.log.error({ err: error }, 'unhandled error');
    if (apiError.headers) reply.headers(apiError.headers);
    return reply.code(apiError.status).send(apiError.toBody(request.id));
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new ApiError('not_found', `No route ${request.method} ${request.url.split('?')[0]}.`);
    return reply.code(404).send(error.toBody(request.id));
  });

  registerAccessLog(app, engine);
  registerOpsRoutes(app, engine);
  registerTokenRoutes(app, engine);
  registerAdvertiserRoutes(app, engine);
  registerPublisherRoutes(app, engine);
  registerOfferRoutes(app, engine);
  registerClickRoutes(app, engine);
  registerPostbackRoutes(app, engine, engine.intake);
  registerConversionRoutes(app, engine);
  registerReviewRoutes(app, engine);
  registerPixelRoutes(app, engine);
  registerReconcileRoutes(app, engine);
  registerReportRoutes(app, engine);
  registerDeliveryRoutes(app, engine);
  registerFraudRoutes(app, engine);
  registerAuditRoutes(app, engine);
  registerAttemptRoutes(app, engine);
  registerFxRoutes(app, engine);
  registerUiRoutes(app, engine);
  registerOpenApiRoutes(app);
  return app;
}

/** Maps framework and driver errors to the registry; anything unknown is a generic 500, never leaked. */
function toApiError(error: FastifyError | ApiError): ApiError {
  if (error instanceof ApiError) return error;
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('payload_too_large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError('unsupported_media_type', 'Send application/json or application/x-www-form-urlencoded.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError('invalid_request', 'The body is not valid JSON.');
    default:
      break;
  }
  if (isDatabaseUnavailable(error)) return new ApiError('unavailable');
  // PostgreSQL text cannot hold NUL ("invalid byte sequence", 22021): a NUL in an ID, query or body value is the sender's error.
  if ((error as { code?: unknown }).code === '22021') return new ApiError('invalid_request', 'The request holds a NUL character, which no field may contain.');
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    return new ApiError('invalid_request', error.message);
  }
  return new ApiError('internal_error');
}
