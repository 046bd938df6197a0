import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { parseCidrList, type Cidr } from './net/cidr.js';
import { LEASE_MS, POLL_MS, REQUEST_TIMEOUT_MS } from './delivery/limits.js';

/**
 * The environment, parsed once. A bad value stops start-up with a message naming the variable,
 * because an engine that guesses at its own tolerance windows silently pays out on forged traffic.
 */

const seconds = (name: string, fallback: number) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw.trim() === '') return fallback;
      if (!/^\d+$/.test(raw.trim())) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a whole number of seconds, got "${raw}"` });
        return z.NEVER;
      }
      return Number(raw.trim());
    });

const bool = (fallback: boolean) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw === '') return fallback;
      if (/^(true|1|yes)$/i.test(raw)) return true;
      if (/^(false|0|no)$/i.test(raw)) return false;
      ctx.addIssue({ code: 'custom', message: `expected true or false, got "${raw}"` });
      return z.NEVER;
    });

const millis = (name: string, fallback: number, min = 0) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw.trim() === '') return fallback;
      if (!/^\d+$/.test(raw.trim()) || Number(raw.trim()) < min) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a whole number of milliseconds${min > 0 ? ` (at least ${min})` : ''}, got "${raw}"` });
        return z.NEVER;
      }
      return Number(raw.trim());
    });

const count = (name: string, fallback: number) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw.trim() === '') return fallback;
      if (!/^\d+$/.test(raw.trim())) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a whole number, got "${raw}"` });
        return z.NEVER;
      }
      return Number(raw.trim());
    });

const port = (fallback: number | undefined) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw === '') return fallback;
      const value = Number(raw);
      if (!Number.isInteger(value) || value < 0 || value > 65535) {
        ctx.addIssue({ code: 'custom', message: `must be a port number 0-65535, got "${raw}"` });
        return z.NEVER;
      }
      return value;
    });

const bearerToken = () =>
  z
    .string()
    .optional()
    .refine((v) => v === undefined || v === '' || v.length >= 16, 'must be at least 16 characters')
    .transform((v) => (v ? v : undefined));

/** Retry delays for outbound postbacks: fast at first for blips, then hourly-ish for a publisher outage. */
export const DEFAULT_DELIVERY_BACKOFF_S = [10, 60, 300, 900, 3600, 7200, 14400];

const envSchema = z.object({
  PORT: port(8080).transform((v) => v as number),
  HOST: z.string().optional().transform((v) => (v && v.length > 0 ? v : '127.0.0.1')),
  DATABASE_URL: z
    .string()
    .optional()
    .refine((v) => v === undefined || v === '' || /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// URL')
    .transform((v) => (v ? v : undefined)),
  REDIS_URL: z
    .string()
    .optional()
    .refine((v) => v === undefined || v === '' || v.split(',').every((part) => /^rediss?:\/\//.test(part.trim())), 'must be a redis:// URL (or, with REDIS_CLUSTER=true, comma-separated redis:// URLs of seed nodes)')
    .transform((v) => (v ? v : undefined)),
  REDIS_CLUSTER: bool(false),
  ADMIN_TOKEN: bearerToken(),
  TRUST_PROXY: z
    .string()
    .optional()
    .transform((raw, ctx): Cidr[] => {
      if (!raw) return [];
      const parsed = parseCidrList(raw.split(',').map((s) => s.trim()).filter(Boolean));
      if (!parsed.ok) {
        ctx.addIssue({ code: 'custom', message: parsed.error });
        return z.NEVER;
      }
      return parsed.value;
    }),
  SIGNATURE_TOLERANCE_S: seconds('SIGNATURE_TOLERANCE_S', 300),
  REFIRE_WINDOW_S: seconds('REFIRE_WINDOW_S', 259200),
  DELIVERY_BACKOFF_S: z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (!raw) return DEFAULT_DELIVERY_BACKOFF_S;
      const parts = raw.split(',').map((s) => s.trim());
      if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p))) {
        ctx.addIssue({ code: 'custom', message: `must be comma-separated whole seconds, got "${raw}"` });
        return z.NEVER;
      }
      return parts.map(Number);
    }),
  PIXEL_GRACE_S: seconds('PIXEL_GRACE_S', 1800),
  RECONCILE_CRON: z.string().optional().transform((v) => (v?.trim() ? v.trim() : '*/15 * * * *')),
  PUBLIC_URL: z
    .string()
    .optional()
    .refine((v) => !v || /^https?:\/\/[^\s]+$/.test(v), 'must be an http(s) URL')
    .transform((v) => (v ? v.replace(/\/+$/, '') : undefined)),
  ALLOW_PRIVATE_DESTINATIONS: bool(false),
  // Outbound delivery tuning (engine extension): production keeps the defaults; tests shrink them.
  DELIVERY_LEASE_S: seconds('DELIVERY_LEASE_S', LEASE_MS / 1000),
  DELIVERY_POLL_S: seconds('DELIVERY_POLL_S', POLL_MS / 1000),
  DELIVERY_TIMEOUT_S: seconds('DELIVERY_TIMEOUT_S', REQUEST_TIMEOUT_MS / 1000),
  ADDRESS_RATE_LIMIT_PER_S: seconds('ADDRESS_RATE_LIMIT_PER_S', 1000),
  // Outages and hostile clients (engine extensions, README "Outages and slow clients").
  DB_DEADLINE_MS: millis('DB_DEADLINE_MS', 4000, 1),
  HTTP_HEADERS_TIMEOUT_MS: millis('HTTP_HEADERS_TIMEOUT_MS', 10_000, 1),
  HTTP_REQUEST_TIMEOUT_MS: millis('HTTP_REQUEST_TIMEOUT_MS', 30_000, 1),
  HTTP_IDLE_TIMEOUT_MS: millis('HTTP_IDLE_TIMEOUT_MS', 60_000, 1),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: millis('HTTP_KEEP_ALIVE_TIMEOUT_MS', 72_000, 1),
  HTTP_MAX_REQUESTS_PER_SOCKET: count('HTTP_MAX_REQUESTS_PER_SOCKET', 0),
  HTTP_MAX_CONNECTIONS: count('HTTP_MAX_CONNECTIONS', 4096),
  // Operations (engine extensions, README "Operations").
  METRICS_TOKEN: bearerToken(),
  METRICS_PORT: port(undefined),
  METRICS_HOST: z.string().optional().transform((v) => (v ? v : undefined)),
  SHUTDOWN_DELAY_S: seconds('SHUTDOWN_DELAY_S', 0),
  ACCESS_LOG: bool(false),
  // Retention per family of day-partitioned tables (engine extensions, README "Partitions and retention").
  CLICK_RETENTION_DAYS: count('CLICK_RETENTION_DAYS', 90),
  CONVERSION_RETENTION_DAYS: count('CONVERSION_RETENTION_DAYS', 400),
  DELIVERY_RETENTION_DAYS: count('DELIVERY_RETENTION_DAYS', 400),
  ATTEMPT_LOG_RETENTION_DAYS: count('ATTEMPT_LOG_RETENTION_DAYS', 35),
  DATA_DIR: z.string().optional().transform((v) => (v ? v : '.data')),
  REPORTS_DIR: z.string().optional().transform((v) => (v ? v : undefined)),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional().default('info'),
  WORKERS: z
    .string()
    .optional()
    .transform((raw, ctx) => {
      const value = raw?.trim() ?? '';
      if (value === '') return 1;
      if (value === 'auto') return availableParallelism();
      if (!/^\d+$/.test(value) || Number(value) < 1) {
        ctx.addIssue({ code: 'custom', message: `WORKERS must be a whole number ≥ 1 or "auto", got "${raw}"` });
        return z.NEVER;
      }
      return Number(value);
    }),
});

/**
 * What each variable means and what it is when unset: `default` is the literal value an unset
 * variable behaves as (a test parses it and compares with the unset result); `unset` describes a
 * default that is not a value. `--help` prints this and a test holds the README table to it; the
 * mapped type makes a variable added to the schema without its documentation a compile error.
 */
export type EnvDoc = { meaning: string } & ({ default: string } | { unset: string });

export const ENV_DOCS: { [K in keyof typeof envSchema.shape]: EnvDoc } = {
  PORT: { meaning: 'port the HTTP server listens on', default: '8080' },
  HOST: { meaning: 'address the HTTP server listens on', default: '127.0.0.1' },
  DATABASE_URL: { meaning: 'PostgreSQL connection string', unset: 'embedded PostgreSQL, data under `DATA_DIR/pg`' },
  REDIS_URL: { meaning: 'Redis for shared counters, rate limits, replay and result caches', unset: 'in-process memory (one node only)' },
  REDIS_CLUSTER: { meaning: '`true`: `REDIS_URL` is a Redis Cluster, given as one or more comma-separated seed node URLs (extension)', default: 'false' },
  ADMIN_TOKEN: { meaning: 'bearer token with every role (≥ 16 characters)', unset: 'generated on first start, stored hashed, printed once' },
  TRUST_PROXY: { meaning: 'comma-separated proxy addresses/CIDRs whose `X-Forwarded-For` is believed', unset: 'never believed' },
  SIGNATURE_TOLERANCE_S: { meaning: 'accepted clock skew for signed timestamps', default: '300' },
  REFIRE_WINDOW_S: { meaning: 'how long after a conversion its outbound postback may still be (re)delivered (72 h)', default: '259200' },
  DELIVERY_BACKOFF_S: { meaning: 'comma-separated retry delays for outbound postbacks, the last one repeating', default: DEFAULT_DELIVERY_BACKOFF_S.join(',') },
  PIXEL_GRACE_S: { meaning: 'how long a pixel-only conversion waits for its S2S postback', default: '1800' },
  RECONCILE_CRON: { meaning: 'node-cron expression for the reconciler; `off` disables it', default: '*/15 * * * *' },
  PUBLIC_URL: { meaning: 'base URL of the engine itself', unset: '`http://HOST:PORT`' },
  ALLOW_PRIVATE_DESTINATIONS: { meaning: 'let outbound postbacks reach loopback, private and link-local addresses', default: 'false' },
  DELIVERY_LEASE_S: { meaning: 'how long a claimed delivery stays with its worker before another node may take it over (extension)', default: String(LEASE_MS / 1000) },
  DELIVERY_POLL_S: { meaning: 'polling backstop of the delivery worker; NOTIFY and timers do the prompt waking (extension)', default: String(POLL_MS / 1000) },
  DELIVERY_TIMEOUT_S: { meaning: 'outbound postback request timeout; the contract fixes 10 s, overridable for tests (extension)', default: String(REQUEST_TIMEOUT_MS / 1000) },
  ADDRESS_RATE_LIMIT_PER_S: { meaning: 'postbacks per second from one source address, over all advertisers', default: '1000' },
  DB_DEADLINE_MS: { meaning: 'how long a request may wait on PostgreSQL before it is answered 503 (extension)', default: '4000' },
  HTTP_HEADERS_TIMEOUT_MS: { meaning: 'request line and headers must arrive within it, or the connection is cut (408) (extension)', default: '10000' },
  HTTP_REQUEST_TIMEOUT_MS: { meaning: 'the whole request, body included, must arrive within it (extension)', default: '30000' },
  HTTP_IDLE_TIMEOUT_MS: { meaning: 'a socket with no traffic either way is closed (extension)', default: '60000' },
  HTTP_KEEP_ALIVE_TIMEOUT_MS: { meaning: 'an idle keep-alive connection between requests is closed (extension)', default: '72000' },
  HTTP_MAX_REQUESTS_PER_SOCKET: { meaning: 'requests on one keep-alive connection; `0` is unlimited (extension)', default: '0' },
  HTTP_MAX_CONNECTIONS: { meaning: 'open connections per process; more are closed at once (extension)', default: '4096' },
  METRICS_TOKEN: { meaning: 'bearer token `/metrics` requires (≥ 16 characters) (extension)', unset: '`/metrics` needs no token' },
  METRICS_PORT: { meaning: 'serve `/metrics` on its own listener at this port instead of the main one (extension)', unset: '`/metrics` on `PORT`' },
  METRICS_HOST: { meaning: 'address the `METRICS_PORT` listener binds, e.g. an internal interface (extension)', unset: 'the value of `HOST`' },
  SHUTDOWN_DELAY_S: { meaning: 'after SIGTERM, seconds `/readyz` answers 503 while requests are still served, so load balancers drain the node (extension)', default: '0' },
  ACCESS_LOG: { meaning: 'one JSON log line per request: method, route, status, duration, request ID, source address (extension)', default: 'false' },
  CLICK_RETENTION_DAYS: { meaning: 'days of clicks kept; older day partitions are dropped (extension)', default: '90' },
  CONVERSION_RETENTION_DAYS: { meaning: 'days of conversions, their status history and txid keys kept (extension)', default: '400' },
  DELIVERY_RETENTION_DAYS: { meaning: 'days of outbound deliveries kept; the payout report counts their re-fires and expiries (extension)', default: '400' },
  ATTEMPT_LOG_RETENTION_DAYS: { meaning: 'days of the refused-postback log and the delivery attempt log kept (extension)', default: '35' },
  DATA_DIR: { meaning: 'where the embedded PostgreSQL keeps its data (extension)', default: '.data' },
  REPORTS_DIR: { meaning: 'where `npm run reconcile` writes each run\'s CSV and HTML report, e.g. a volume in the production image (extension)', unset: '`reports/` beside `src/` and `sql/`' },
  LOG_LEVEL: { meaning: 'pino level: fatal, error, warn, info, debug, trace or silent (extension)', default: 'info' },
  WORKERS: { meaning: 'engine processes on this box sharing `PORT` (node:cluster); `auto` is one per core; more than 1 needs `REDIS_URL` (extension)', default: '1' },
};

export type Config = {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  /** REDIS_URL names seed nodes of a Redis Cluster (src/state/redis.ts). */
  redisCluster: boolean;
  adminToken: string | undefined;
  trustProxy: Cidr[];
  signatureToleranceS: number;
  refireWindowS: number;
  deliveryBackoffS: number[];
  pixelGraceS: number;
  reconcileCron: string | 'off';
  publicUrl: string;
  allowPrivateDestinations: boolean;
  /** How long a claimed delivery stays with its worker before another node may take it over. */
  deliveryLeaseS: number;
  /** Polling backstop of the delivery worker (NOTIFY and timers do the prompt waking). */
  deliveryPollS: number;
  /** Outbound request timeout; CONTRACT §6 fixes it at 10 s, overridable only so tests stay fast. */
  deliveryTimeoutS: number;
  /** Postbacks per second from one source address, over all advertisers (engine extension). */
  addressRateLimitPerS: number;
  /** How long a request may wait on PostgreSQL before it is answered 503 (CONTRACT §4: within 5 s). */
  dbDeadlineMs: number;
  /** Slow and abusive clients (src/http/server-limits.ts). */
  httpHeadersTimeoutMs: number;
  httpRequestTimeoutMs: number;
  httpIdleTimeoutMs: number;
  httpKeepAliveTimeoutMs: number;
  /** 0: unlimited. */
  httpMaxRequestsPerSocket: number;
  httpMaxConnections: number;
  /** Bearer token for /metrics; undefined leaves it open (CONTRACT §9 names no credential). */
  metricsToken: string | undefined;
  /** Own listener for /metrics; undefined serves it on the main port. */
  metricsPort: number | undefined;
  metricsHost: string;
  /** Seconds between SIGTERM and closing the listener, during which /readyz answers 503. */
  shutdownDelayS: number;
  accessLog: boolean;
  /** Days kept per family of day-partitioned tables (db/partitions.ts). */
  retentionDays: { clicks: number; conversions: number; deliveries: number; attemptLogs: number };
  dataDir: string;
  /** undefined: the repository's reports/ (reconcile/reconciler.ts REPORTS_DIR). */
  reportsDir: string | undefined;
  logLevel: string;
  /** Engine processes on this box (node:cluster workers sharing PORT); 1 runs the engine in this process. */
  workers: number;
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = result.data;
  if (e.HTTP_HEADERS_TIMEOUT_MS > e.HTTP_REQUEST_TIMEOUT_MS) {
    throw new ConfigError('invalid configuration:\n  HTTP_HEADERS_TIMEOUT_MS must not exceed HTTP_REQUEST_TIMEOUT_MS (the headers are part of the request)');
  }
  if (!e.REDIS_CLUSTER && e.REDIS_URL?.includes(',')) {
    throw new ConfigError('invalid configuration:\n  REDIS_URL lists several nodes: set REDIS_CLUSTER=true for a Redis Cluster, or give one URL');
  }
  if (e.REDIS_CLUSTER && !e.REDIS_URL) {
    throw new ConfigError('invalid configuration:\n  REDIS_CLUSTER=true needs REDIS_URL: the cluster\'s seed nodes');
  }
  if (e.REDIS_CLUSTER && e.REDIS_URL?.split(',').some((part) => !/^rediss?:\/\/[^/]+\/?(0)?$/.test(part.trim()))) {
    throw new ConfigError('invalid configuration:\n  REDIS_URL: a Redis Cluster has only database 0; give seed nodes as redis://host:port');
  }
  for (const name of ['CLICK_RETENTION_DAYS', 'CONVERSION_RETENTION_DAYS', 'DELIVERY_RETENTION_DAYS', 'ATTEMPT_LOG_RETENTION_DAYS'] as const) {
    // Today's and yesterday's partitions are the ones being written.
    if (e[name] < 2) throw new ConfigError(`invalid configuration:\n  ${name} must be at least 2 days, got ${e[name]}`);
  }
  if (e.DELIVERY_RETENTION_DAYS * 86_400 <= e.REFIRE_WINDOW_S || e.CONVERSION_RETENTION_DAYS * 86_400 <= e.REFIRE_WINDOW_S) {
    // A delivery still inside its refire window, or its conversion, must not be dropped before it is sent.
    throw new ConfigError('invalid configuration:\n  CONVERSION_RETENTION_DAYS and DELIVERY_RETENTION_DAYS must be longer than REFIRE_WINDOW_S');
  }
  if (e.METRICS_PORT !== undefined && e.METRICS_PORT !== 0 && e.METRICS_PORT === e.PORT) {
    throw new ConfigError('invalid configuration:\n  METRICS_PORT must differ from PORT (leave it unset to serve /metrics on PORT)');
  }
  if (e.WORKERS > 1 && !e.REDIS_URL) {
    throw new ConfigError(
      `invalid configuration:\n  WORKERS=${e.WORKERS} needs REDIS_URL: without it each process keeps its own rate limits, replay cache and fraud counters, which holds for a single node only (CONTRACT §1)`,
    );
  }
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisCluster: e.REDIS_CLUSTER,
    adminToken: e.ADMIN_TOKEN,
    trustProxy: e.TRUST_PROXY,
    signatureToleranceS: e.SIGNATURE_TOLERANCE_S,
    refireWindowS: e.REFIRE_WINDOW_S,
    deliveryBackoffS: e.DELIVERY_BACKOFF_S,
    pixelGraceS: e.PIXEL_GRACE_S,
    reconcileCron: e.RECONCILE_CRON,
    publicUrl: e.PUBLIC_URL ?? `http://${e.HOST.includes(':') ? `[${e.HOST}]` : e.HOST}:${e.PORT}`,
    allowPrivateDestinations: e.ALLOW_PRIVATE_DESTINATIONS,
    deliveryLeaseS: e.DELIVERY_LEASE_S,
    deliveryPollS: e.DELIVERY_POLL_S,
    deliveryTimeoutS: e.DELIVERY_TIMEOUT_S,
    addressRateLimitPerS: e.ADDRESS_RATE_LIMIT_PER_S,
    dbDeadlineMs: e.DB_DEADLINE_MS,
    httpHeadersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
    httpRequestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
    httpIdleTimeoutMs: e.HTTP_IDLE_TIMEOUT_MS,
    httpKeepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    httpMaxRequestsPerSocket: e.HTTP_MAX_REQUESTS_PER_SOCKET,
    httpMaxConnections: e.HTTP_MAX_CONNECTIONS,
    metricsToken: e.METRICS_TOKEN,
    metricsPort: e.METRICS_PORT,
    metricsHost: e.METRICS_HOST ?? e.HOST,
    shutdownDelayS: e.SHUTDOWN_DELAY_S,
    accessLog: e.ACCESS_LOG,
    retentionDays: {
      clicks: e.CLICK_RETENTION_DAYS,
      conversions: e.CONVERSION_RETENTION_DAYS,
      deliveries: e.DELIVERY_RETENTION_DAYS,
      attemptLogs: e.ATTEMPT_LOG_RETENTION_DAYS,
    },
    dataDir: e.DATA_DIR,
    reportsDir: e.REPORTS_DIR,
    logLevel: e.LOG_LEVEL,
    workers: e.WORKERS,
  };
}

/** A config for tests and tools: defaults plus overrides, without reading process.env. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return { ...loadConfig({}), reconcileCron: 'off', logLevel: 'silent', ...overrides };
}
