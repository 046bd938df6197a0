import { BatchWriter } from '../db/batch-writer.js';
import { isDatabaseUnavailable, type Sql } from '../db/database.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';

/**
 * The log of refused postbacks (bad signature, address, click, validation, conflict) with why, so
 * finance and the advertiser can find the root cause of a missing conversion. Written in batches
 * off the request path. Rate-limited requests are only counted per advertiser and minute: logging
 * each one would turn a flood into a write flood.
 */

export type AttemptRow = {
  advertiserId: string | null;
  receivedAt: Date;
  sourceIp: string | null;
  httpStatus: number;
  errorCode: string;
  reason: string | null;
  clickId: string | null;
  txid: string | null;
  detail: unknown;
};

const RATE_LIMITED_FLUSH_MS = 1000;

export class AttemptLog {
  readonly writer: BatchWriter<AttemptRow>;
  private rateLimited = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly sql: Sql, metrics: Metrics, log: Logger) {
    this.writer = new BatchWriter<AttemptRow>({
      name: 'postback_attempts',
      maxDelayMs: 50,
      write: (rows) => insertAttempts(sql, rows),
      isTransient: isDatabaseUnavailable,
      onFlush: (size, ms) => {
        metrics.batchSize.observe({ writer: 'postback_attempts' }, size);
        metrics.batchDuration.observe({ writer: 'postback_attempts' }, ms / 1000);
      },
      onError: (err, buffered) => log.error({ err, buffered }, 'attempt log write failed; will retry'),
      onDrop: (count) => metrics.batchDropped.inc({ writer: 'postback_attempts' }, count),
    });
    metrics.sources.bufferedRows.set('postback_attempts', () => this.writer.pending);
    this.timer = setInterval(() => {
      this.flushRateLimited().catch((err) => log.error({ err }, 'rate-limit counter write failed'));
    }, RATE_LIMITED_FLUSH_MS);
    this.timer.unref();
  }

  record(row: AttemptRow): void {
    // Attempts carry what an attacker sent; PostgreSQL text cannot hold NUL, so it is removed here.
    this.writer.add({
      ...row,
      reason: stripNul(row.reason),
      clickId: stripNul(row.clickId),
      txid: stripNul(row.txid),
      detail: withoutNul(row.detail),
    });
  }

  countRateLimited(advertiserId: string, at: Date): void {
    const minute = new Date(Math.floor(at.getTime() / 60_000) * 60_000).toISOString();
    const k = `${advertiserId}|${minute}`;
    this.rateLimited.set(k, (this.rateLimited.get(k) ?? 0) + 1);
  }

  async flush(): Promise<void> {
    await Promise.all([this.writer.flush(), this.flushRateLimited()]);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([this.writer.close(), this.flushRateLimited()]);
  }

  private async flushRateLimited(): Promise<void> {
    if (this.rateLimited.size === 0) return;
    const counts = this.rateLimited;
    this.rateLimited = new Map();
    const entries = [...counts.entries()].map(([k, n]) => ({ advertiserId: k.split('|')[0] as string, minute: k.split('|')[1] as string, n }));
    try {
      await this.sql`
        insert into postback_rate_limited (advertiser_id, minute, count)
        select * from unnest(${entries.map((e) => e.advertiserId)}::text[], ${entries.map((e) => e.minute)}::timestamptz[], ${entries.map((e) => e.n)}::bigint[])
        on conflict (advertiser_id, minute) do update set count = postback_rate_limited.count + excluded.count`;
    } catch (err) {
      for (const [k, n] of counts) this.rateLimited.set(k, (this.rateLimited.get(k) ?? 0) + n);
      throw err;
    }
  }
}

async function insertAttempts(sql: Sql, rows: AttemptRow[]): Promise<void> {
  await sql`
    insert into postback_attempts (advertiser_id, received_at, source_ip, http_status, error_code, reason, click_id, txid, detail)
    -- '' for a postback that named no advertiser: the column is the attempt log's distribution key, never null.
    select * from unnest(${rows.map((r) => r.advertiserId ?? '')}::text[], ${rows.map((r) => r.receivedAt.toISOString())}::timestamptz[],
                         ${rows.map((r) => r.sourceIp)}::inet[], ${rows.map((r) => r.httpStatus)}::smallint[], ${rows.map((r) => r.errorCode)}::text[],
                         ${rows.map((r) => r.reason)}::text[], ${rows.map((r) => r.clickId)}::text[], ${rows.map((r) => r.txid)}::text[],
                         ${rows.map((r) => (r.detail === undefined ? null : JSON.stringify(r.detail)))}::text[]::jsonb[])`;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** NUL and lone surrogates are not text PostgreSQL stores; an attacker's bytes must not fail the batch. */
function stripNul(text: string | null): string | null {
  return text === null ? null : text.replaceAll('\u0000', '').replace(LONE_SURROGATE, '\ufffd');
}

function withoutNul(value: unknown): unknown {
  if (typeof value === 'string') return stripNul(value);
  if (Array.isArray(value)) return value.map(withoutNul);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [stripNul(k), withoutNul(v)]));
  }
  return value;
}
