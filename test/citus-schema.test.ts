import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/db/migrate.js';
import { citusBinOrSkip, startCitusCluster, type CitusCluster } from './helpers/citus.js';

/**
 * The migrations and the Citus step on a real cluster (a coordinator and two workers): the catalog
 * becomes reference tables, the traffic tables are sharded by advertiser or publisher with their
 * shards on both workers, and a second migrate (another engine starting) changes nothing.
 */

const bin = citusBinOrSkip();
let cluster: CitusCluster;

const REFERENCE = ['advertiser_secrets', 'advertisers', 'api_tokens', 'catalog_version', 'click_keys', 'fx_rate_days', 'fx_rates', 'offers', 'publishers'];
const BY_ADVERTISER = ['clicks', 'conversion_status_history', 'conversion_txids', 'conversions', 'message_ids', 'pixel_events', 'postback_attempts', 'postback_rate_limited'];
const BY_PUBLISHER = ['deliveries', 'delivery_attempts'];
const LOCAL = ['admin_audit', 'reconciliation_root_causes', 'reconciliation_rows', 'reconciliation_runs', 'reviews', 'schema_migrations'];

describe.skipIf(!bin)('Citus schema', () => {
  beforeAll(async () => {
    cluster = await startCitusCluster(bin as string, { shardCount: 4 });
    await migrate(cluster.sql);
  }, 120_000);
  afterAll(async () => cluster?.stop());

  it('makes the catalog reference tables and shards traffic by advertiser and by publisher, colocated', async () => {
    const rows = await cluster.sql<{ name: string; type: string; column: string; colocation: number }[]>`
      select table_name::text as name, citus_table_type as type, distribution_column as column, colocation_id as colocation
      from citus_tables where table_name::text not like '%\\_default' and table_name::text !~ '_[0-9]{8}$'`;
    const of = (type: string, column?: string) =>
      rows.filter((r) => r.type === type && (column === undefined || r.column === column)).map((r) => r.name).sort();
    expect(of('reference')).toEqual(REFERENCE);
    expect(of('distributed', 'advertiser_id')).toEqual(BY_ADVERTISER);
    expect(of('distributed', 'publisher_id')).toEqual(BY_PUBLISHER);
    expect(of('distributed', 'offer_id')).toEqual(['offer_cap_usage']);
    // One colocation group per key: a postback's writes stay on one shard, as do a publisher's deliveries.
    const groups = (names: string[]) => new Set(rows.filter((r) => names.includes(r.name)).map((r) => r.colocation));
    expect(groups(of('distributed', 'advertiser_id')).size).toBe(1);
    expect(groups(of('distributed', 'publisher_id')).size).toBe(1);
    const distributed = new Set(rows.map((r) => r.name));
    for (const name of LOCAL) expect(distributed.has(name), name).toBe(false);
  });

  it('places every distributed table shards on both workers and none on the coordinator', async () => {
    const placements = await cluster.sql<{ name: string; port: number; shards: number }[]>`
      select logicalrelid::text as name, nodeport as port, count(*)::int as shards
      from pg_dist_shard join pg_dist_placement using (shardid) join pg_dist_node using (groupid)
      join pg_dist_partition using (logicalrelid)
      where partmethod = 'h' and logicalrelid::text in ('conversions', 'deliveries', 'clicks')
      group by 1, 2 order by 1, 2`;
    for (const name of ['clicks', 'conversions', 'deliveries']) {
      const mine = placements.filter((p) => p.name === name);
      expect(mine.map((p) => p.port).sort()).toEqual([...cluster.workerPorts].sort());
      expect(mine.reduce((n, p) => n + p.shards, 0)).toBe(4);
    }
    // A shard really lives on its worker: a conversion written through the coordinator is in that table there.
    await cluster.sql`insert into advertisers (id, name, auth, rate_limit_per_s) values ('adv_1', 'A', '{hmac}', 10)`;
    await cluster.sql`insert into publishers (id, name, postback_url, method, secret) values ('pub_1', 'P', 'https://p.example/', 'GET', '\\x00')`;
    await cluster.sql`insert into offers (id, advertiser_id, name, url, payout_minor, revenue_minor, currency, click_ttl_s)
      values ('off_1', 'adv_1', 'O', 'https://a.example/', 1, 1, 'USD', 60)`;
    await cluster.sql`insert into conversions (id, advertiser_id, offer_id, publisher_id, click_id, click_created_at, txid, event,
      status, payout_minor, revenue_minor, currency, decision, score, source)
      values ('cv_1', 'adv_1', 'off_1', 'pub_1', 'clk_1', now(), 'tx_1', 'conversion', 'approved', 1, 1, 'USD', 'accepted', 0, 's2s')`;
    const [shard] = await cluster.sql<{ name: string; port: number }[]>`
      select shard_name::text as name, nodeport as port from citus_shards
      where table_name = 'conversions'::regclass and shardid = get_shard_id_for_distribution_column('conversions', 'adv_1')`;
    const worker = cluster.worker(cluster.workerPorts.indexOf(shard!.port));
    expect(await worker.unsafe(`select id, txid from ${shard!.name}`)).toEqual([{ id: 'cv_1', txid: 'tx_1' }]);
    await cluster.sql`delete from conversions where id = 'cv_1'`;
  });

  it('gives every unique key of a distributed table its distribution column', async () => {
    const keys = await cluster.sql<{ name: string; constraint: string }[]>`
      select p.logicalrelid::text as name, i.indexrelid::regclass::text as constraint
      from pg_dist_partition p join pg_index i on i.indrelid = p.logicalrelid
      where p.partmethod = 'h' and i.indisunique and not (
        select attnum from pg_attribute where attrelid = p.logicalrelid and attname = column_to_column_name(p.logicalrelid, p.partkey)
      ) = any(i.indkey)`;
    expect(keys).toEqual([]);
    // Idempotency's key, (advertiser, txid), is enforced by the shard that owns the advertiser.
    const txidKeys = await cluster.sql<{ name: string }[]>`
      select i.indrelid::regclass::text as name from pg_index i
      where i.indisunique and i.indrelid in ('conversions'::regclass, coalesce(to_regclass('conversion_txids'), 'conversions'::regclass))
        and (select array_agg(a.attname::text order by k.ord) from unnest(i.indkey::int2[]) with ordinality k(attnum, ord)
             join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum) = array['advertiser_id', 'txid']`;
    expect(txidKeys).toHaveLength(1);
  });

  it('applies the Citus step once: a second engine starting finds nothing to do', async () => {
    const before = await cluster.sql<{ name: string }[]>`select name from citus_steps order by name`;
    expect(before.length).toBeGreaterThan(0);
    const [again] = await Promise.all([migrate(cluster.sql), migrate(cluster.sql)]);
    expect(again).toEqual([]);
    expect(await cluster.sql`select name from citus_steps order by name`).toEqual(before);
  });
});
