import postgres from 'postgres';

export type Sql = postgres.Sql<{ bigint: bigint }>;
export type TxSql = postgres.TransactionSql<{ bigint: bigint }>;

/** Connection pool size per engine process; PostgreSQL's default max_connections is 100 for ~4 nodes. */
export const POOL_MAX = 20;

export function connect(url: string, opts: { max?: number; onnotice?: (n: unknown) => void } = {}): Sql {
  return postgres(url, {
    max: opts.max ?? POOL_MAX,
    // bigint columns come back as bigint: money in minor units must never pass through a float.
    types: { bigint: postgres.BigInt },
    connection: { TimeZone: 'UTC', application_name: 'postback-engine' },
    onnotice: opts.onnotice ?? (() => undefined),
    idle_timeout: 30,
    connect_timeout: 5,
  }) as unknown as Sql;
}
