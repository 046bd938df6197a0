import pino from 'pino';

/**
 * JSON logs. Headers and fields that carry secrets are redacted at the source, so no code path can
 * log a bearer token, a signature or a webhook secret by accident.
 */
export function createLogger(level: string) {
  return pino({
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers["webhook-signature"]',
        'req.headers.cookie',
        '*.secret',
        '*.token',
        '*.password',
      ],
      censor: '[redacted]',
    },
  });
}

export type Logger = ReturnType<typeof createLogger>;
