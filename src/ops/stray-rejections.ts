import { isDatabaseUnavailable } from '../db/database.js';
import type { Logger } from '../logger.js';

/**
 * A promise that rejects with a PostgreSQL connection error and that nobody waits for is not a
 * reason to kill the process. Every request-path wait on PostgreSQL races a deadline (db/breaker.ts),
 * so the request was already answered (a 503 when the outcome is unknown) and the sender retries
 * idempotently; what is left is a statement's late failure inside postgres.js, which under sustained
 * load during an outage can surface unowned (rarely: once in a test of 60 senders through three
 * black-holed outages, after patches/postgres+3.4.9.patch removed the common case). Such a
 * rejection is logged and the process goes on. Anything else is rethrown: an unexpected rejection
 * still ends the process, as Node does by default.
 */
export function absorbStrayDatabaseRejections(log: Logger): void {
  process.on('unhandledRejection', (reason) => {
    if (!isDatabaseUnavailable(reason)) throw reason;
    log.warn({ err: reason }, 'a PostgreSQL connection error nobody waited for (the request had been answered); continuing');
  });
}
