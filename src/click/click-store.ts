import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { connect, type Sql } from '../db/database.js';
import { maintainPartitions } from '../db/partitions.js';

export type ClickRow = {
  id: string;
  createdAt: Date;
  offerId: string;
  publisherId: string;
  advertiserId: string;
  subs: (string | null)[];
  ip: string | null;
  userAgent: string | null;
};

const CLICK_COLUMNS = 'id, created_at, offer_id, publisher_id, advertiser_id, sub1, sub2, sub3, sub4, sub5, ip, user_agent';

/**
 * How long a COPY may go unconfirmed. postgres.js 3.4.9 never settles a COPY that PostgreSQL refuses
 * after the last row was sent, nor one whose connection drops then (porsager/postgres #1173, fix in
 * #1183 unmerged): without a deadline the click writer would wait forever. A healthy batch of a
 * thousand clicks is confirmed in milliseconds.
 */
export const COPY_DEADLINE_MS = 10_000;
export const COPY_UNCONFIRMED = 'COPY_UNCONFIRMED';

/**
 * Where the click batch writer's batches go. COPY, much cheaper than INSERT … unnest on both sides
 * (no array serialisation in the engine, no array parsing and projection in PostgreSQL; clicks are
 * the hottest write). COPY has no ON CONFLICT, so after any failure (which may have been a lost
 * acknowledgement of a batch that did commit) the next batch goes through the idempotent INSERT,
 * which also reports PostgreSQL's errors faithfully.
 *
 * A COPY needs its connection to itself, one batch at a time: postgres.js pipelines queries onto
 * busy connections, and a query sent behind a COPY on the same connection fails (COPY_IN_PROGRESS)
 * or resets the connection, failing the COPY too; a second COPY sent behind the first receives the
 * first one's closing CopyFail and fails (found when the simulator wrote clicks from 24 sessions at
 * once). So COPY runs on a one-connection pool of its own, for a caller that writes one batch at a
 * time (BatchWriter does), and after a failed or unconfirmed COPY that connection is dropped and the
 * next batch opens a fresh one: a COPY left unsettled by postgres.js must not hold up the batches
 * after it. The INSERT runs on the shared pool.
 */
export class ClickBatchStore {
  private copyPool: Sql | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly databaseUrl: string,
    private readonly copyDeadlineMs = COPY_DEADLINE_MS,
  ) {}

  async write(rows: ClickRow[], attempt: { afterFailure: boolean } = { afterFailure: false }): Promise<void> {
    if (attempt.afterFailure) {
      await insertClicksIdempotently(this.sql, rows);
      return;
    }
    this.copyPool ??= connect(this.databaseUrl, { max: 1 });
    const pool = this.copyPool;
    try {
      await copyClicks(pool, rows, this.copyDeadlineMs);
    } catch (err) {
      this.copyPool = undefined;
      void pool.end({ timeout: 0 }).catch(() => undefined);
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.copyPool?.end({ timeout: 5 });
    this.copyPool = undefined;
  }
}

/** A COPY that was not confirmed in time: it may or may not have committed; retrying is safe. */
export function isUnconfirmedCopy(error: unknown): boolean {
  return (error as { code?: string }).code === COPY_UNCONFIRMED;
}

async function copyClicks(sql: Sql, rows: ClickRow[], deadlineMs: number): Promise<void> {
  let text = '';
  for (const r of rows) {
    text += `${copyField(r.id)}\t${r.createdAt.toISOString()}\t${copyField(r.offerId)}\t${copyField(r.publisherId)}\t${copyField(r.advertiserId)}\t`;
    text += `${copyField(r.subs[0])}\t${copyField(r.subs[1])}\t${copyField(r.subs[2])}\t${copyField(r.subs[3])}\t${copyField(r.subs[4])}\t`;
    text += `${copyField(r.ip)}\t${copyField(r.userAgent)}\n`;
  }
  const stream = await sql.unsafe(`copy clicks (${CLICK_COLUMNS}) from stdin`).writable();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(Object.assign(new Error(`COPY into clicks was not confirmed within ${deadlineMs} ms`), { code: COPY_UNCONFIRMED }));
    }, deadlineMs);
  });
  // Failures are reported once, through the race below. What the stream or the pipeline says after
  // the race is settled (postgres.js destroys a finished COPY stream, and a late error can follow a
  // deadline) must not surface as an unhandled 'error' event or rejection, which would end the process.
  stream.on('error', () => undefined);
  const copied = pipeline(Readable.from([text]), stream);
  copied.catch(() => undefined);
  try {
    await Promise.race([copied, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** COPY's text format: NULL is \N, and backslash, tab, newline and carriage return are escaped. PostgreSQL text cannot hold NUL. */
function copyField(value: string | null | undefined): string {
  if (value === null || value === undefined) return '\\N';
  return COPY_SPECIAL.test(value) ? value.replace(COPY_SPECIAL_ALL, (c) => COPY_ESCAPES[c] ?? '') : value;
}
const COPY_SPECIAL = /[\\\t\n\r\0]/;
const COPY_SPECIAL_ALL = /[\\\t\n\r\0]/g;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** INSERT … ON CONFLICT DO NOTHING: safe to repeat, and safe beside other queries on any pool. */
export async function insertClicksIdempotently(sql: Sql, rows: ClickRow[]): Promise<void> {
  const col = <K>(f: (r: ClickRow) => K) => rows.map(f);
  await sql`
    insert into clicks (${sql.unsafe(CLICK_COLUMNS)})
    select * from unnest(
      ${col((r) => r.id)}::text[], ${col((r) => r.createdAt.toISOString())}::timestamptz[],
      ${col((r) => r.offerId)}::text[], ${col((r) => r.publisherId)}::text[], ${col((r) => r.advertiserId)}::text[],
      ${col((r) => r.subs[0] ?? null)}::text[], ${col((r) => r.subs[1] ?? null)}::text[], ${col((r) => r.subs[2] ?? null)}::text[],
      ${col((r) => r.subs[3] ?? null)}::text[], ${col((r) => r.subs[4] ?? null)}::text[],
      ${col((r) => r.ip)}::inet[], ${col((r) => r.userAgent)}::text[])
    on conflict do nothing`;
}

export type StoredClick = {
  id: string;
  createdAt: Date;
  advertiserId: string;
  offerId: string;
  publisherId: string;
  subs: (string | null)[];
  ip: string | null;
  userAgent: string | null;
};

/** The click ID carries its own time, so the lookup names the exact partition. */
export async function findClick(sql: Sql, id: string, createdAt: Date, advertiserId: string): Promise<StoredClick | undefined> {
  const [click] = await findClicks(sql, [{ id, createdAt, advertiserId }]);
  return click;
}

/** A click is its ID at its time (the primary key), of its advertiser (where Citus places it). */
export const clickKey = (id: string, createdAt: Date, advertiserId: string): string => `${id}@${createdAt.getTime()}@${advertiserId}`;

/**
 * The stored clicks among `keys`, in one query; each row must match its own (ID, time) pair.
 * The time range (not a list of times) lets PostgreSQL prune partitions when the executor starts,
 * so the statement can run its one cached generic plan. With a list, every call was planned anew to
 * prune at plan time: about 80 µs of PostgreSQL CPU per call, four times the query itself, and
 * growing with the number of day partitions. Run it on a pool with `plan_cache_mode =
 * force_generic_plan` (database.ts): left to choose, PostgreSQL keeps planning.
 */
export async function findClicks(sql: Sql, keys: { id: string; createdAt: Date; advertiserId: string }[]): Promise<StoredClick[]> {
  if (keys.length === 0) return [];
  let first = Infinity;
  let last = -Infinity;
  for (const k of keys) {
    first = Math.min(first, k.createdAt.getTime());
    last = Math.max(last, k.createdAt.getTime());
  }
  // The advertisers (the click ID's signed claim, checked before any lookup) name the shards on Citus,
  // where clicks are distributed by advertiser_id; on one PostgreSQL the predicate is a filter on rows
  // already found by their primary key.
  const advertisers = [...new Set(keys.map((k) => k.advertiserId))];
  const rows = await sql`
    select id, created_at, advertiser_id, offer_id, publisher_id, sub1, sub2, sub3, sub4, sub5, host(ip) as ip, user_agent
    from clicks
    where id = any(${keys.map((k) => k.id)}::text[]) and created_at >= ${new Date(first).toISOString()}::timestamptz and created_at <= ${new Date(last).toISOString()}::timestamptz
      and advertiser_id = any(${advertisers}::text[])`;
  const wanted = new Set(keys.map((k) => clickKey(k.id, k.createdAt, k.advertiserId)));
  return rows
    .map((row) => ({
      id: row.id as string,
      createdAt: row.created_at as Date,
      advertiserId: row.advertiser_id as string,
      offerId: row.offer_id as string,
      publisherId: row.publisher_id as string,
      subs: [row.sub1, row.sub2, row.sub3, row.sub4, row.sub5] as (string | null)[],
      ip: row.ip as string | null,
      userAgent: row.user_agent as string | null,
    }))
    .filter((c) => wanted.has(clickKey(c.id, c.createdAt, c.advertiserId)));
}

/** The clicks table alone (db/partitions.ts does every partitioned table): partitions made ahead, old ones dropped. */
export async function maintainClickPartitions(sql: Sql, retentionDays: number, now = new Date()): Promise<{ created: number; dropped: string[] }> {
  const { created, dropped } = await maintainPartitions(sql, [{ table: 'clicks', retentionDays }], now);
  return { created, dropped };
}
