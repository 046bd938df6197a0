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

/** Retry delays for outbound postbacks: fast at first for blips, then hourly-ish for a publisher outage. */
export const DEFAULT_DELIVERY_BACKOFF_S = [10, 60, 300, 900, 3600, 7200, 14400];

const envSchema = z.object({
  PORT: z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw === '') return 8080;
      const port = Number(raw);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        ctx.addIssue({ code: 'custom', message: `must be a port number 0-65535, got "${raw}"` });
        return z.NEVER;
      }
      return port;
    }),
  HOST: z.string().optional().transform((v) => (v && v.length > 0 ? v : '127.0.0.1')),
  DATABASE_URL: z
    .string()
    .optional()
    .refine((v) => v === undefined || v === '' || /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// URL')
    .transform((v) => (v ? v : undefined)),
  REDIS_URL: z
    .string()
    .optional()
    .refine((v) => v === undefined || v === '' || /^rediss?:\/\//.test(v), 'must be a redis:// URL')
    .transform((v) => (v ? v : undefined)),
  ADMIN_TOKEN: z
    .string()
    .optional()
    .refine((v) => v === undefined || v === '' || v.length >= 16, 'must be at least 16 characters')
    .transform((v) => (v ? v : undefined)),
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
  RECONCILE_CRON: z.string().optional().transform((v) => (v && v.trim() ? v.trim() : '*/15 * * * *')),
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
  DATA_DIR: z.string().optional().transform((v) => (v ? v : '.data')),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional().default('info'),
});

export type Config = {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
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
  dataDir: string;
  logLevel: string;
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
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
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
    dataDir: e.DATA_DIR,
    logLevel: e.LOG_LEVEL,
  };
}

/** A config for tests and tools: defaults plus overrides, without reading process.env. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return { ...loadConfig({}), reconcileCron: 'off', logLevel: 'silent', ...overrides };
}
