-- Citus: the catalog on every node, the large tables sharded by the key their hot queries carry.
-- Runs once on the coordinator after sql/*.sql, only where the citus extension is installed
-- (src/db/citus.ts). Shard count: the database's citus.shard_count (32 unless set).
--
-- Reference tables (a full copy on every worker, joined locally by any shard): the catalog, which
-- every node reads whole and admins change rarely.
-- Distributed by advertiser_id, colocated (a postback's transaction stays on one shard): clicks,
-- conversions, conversion_status_history, message_ids, postback_attempts, postback_rate_limited,
-- pixel_events.
-- Distributed by publisher_id, colocated: deliveries and delivery_attempts (the worker claims one
-- publisher's due rows with FOR UPDATE SKIP LOCKED, which Citus runs only on a single shard).
-- Distributed by offer_id: offer_cap_usage (one capped offer's rows are locked together).
-- Local to the coordinator: reviews, admin_audit (append-only by triggers and DDL event triggers,
-- which Citus does not run on shards; both grow with people's actions, not with traffic) and the
-- reconciliation runs, rows and root causes (one writer, the reconciler, a few rows per run and hour).

-- The review audit's DDL guard (000021) refuses every ALTER of `reviews`; this file's one change to
-- it (dropping its foreign key to conversions) is the sanctioned kind, made with the guard off inside
-- this transaction.
do $$
begin
  if exists (select 1 from pg_event_trigger where evtname = 'reviews_audit_guard_ddl') then
    alter event trigger reviews_audit_guard_ddl disable;
  end if;
end
$$;

-- Foreign keys between tables that end up on different shards cannot hold in Citus. Those from a
-- distributed or local table to another distributed one go; those to reference tables stay.
do $$
declare
  fk record;
  reference_tables text[] := array['api_tokens', 'click_keys', 'catalog_version', 'advertisers', 'advertiser_secrets',
                                   'publishers', 'offers', 'fx_rate_days', 'fx_rates'];
begin
  for fk in
    select c.conrelid::regclass as tbl, c.conname
    from pg_constraint c
    where c.contype = 'f' and c.conparentid = 0
      and c.confrelid::regclass::text <> all(reference_tables)
      and c.conrelid::regclass::text not in ('reconciliation_rows', 'reconciliation_root_causes')
  loop
    execute format('alter table %s drop constraint %I', fk.tbl, fk.conname);
  end loop;
end
$$;

select create_reference_table(t) from unnest(array['api_tokens', 'click_keys', 'catalog_version', 'advertisers',
  'advertiser_secrets', 'publishers', 'offers', 'fx_rate_days', 'fx_rates']) as t;


-- Citus requires every primary key and unique constraint of a distributed table to include its
-- distribution column (each shard enforces its own). Where the column is determined by the others
-- (a conversion's advertiser, a delivery's publisher, a pixel's click) the wider key means the same.
create function pg_temp.include_distribution_column(tbl regclass, col name) returns void language plpgsql as $fn$
declare
  con record;
  idx record;
  colnum smallint := (select attnum from pg_attribute where attrelid = tbl and attname = col);
begin
  for con in
    select c.conname, c.contype,
           (select string_agg(quote_ident(a.attname), ', ' order by k.ord)
            from unnest(c.conkey) with ordinality k(attnum, ord)
            join pg_attribute a on a.attrelid = tbl and a.attnum = k.attnum) as cols
    from pg_constraint c
    where c.conrelid = tbl and c.contype in ('p', 'u') and c.conparentid = 0 and not colnum = any(c.conkey)
  loop
    execute format('alter table %s drop constraint %I', tbl, con.conname);
    execute format('alter table %s add constraint %I %s (%s, %I)', tbl, con.conname,
                   case con.contype when 'p' then 'primary key' else 'unique' end, con.cols, col);
  end loop;
  for idx in
    select i.indexrelid::regclass as name, pg_get_indexdef(i.indexrelid) as def
    from pg_index i
    where i.indrelid = tbl and i.indisunique and not colnum = any(i.indkey)
      and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)
  loop
    execute format('drop index %s', idx.name);
    execute regexp_replace(replace(idx.def, ' ON ONLY ', ' ON '), '\)( WHERE .*)?$', ', ' || quote_ident(col) || ')\1');
  end loop;
end
$fn$;

select pg_temp.include_distribution_column(t::regclass, c)
from (values ('clicks', 'advertiser_id'), ('conversions', 'advertiser_id'), ('message_ids', 'advertiser_id'),
             ('pixel_events', 'advertiser_id'), ('postback_rate_limited', 'advertiser_id'),
             ('deliveries', 'publisher_id'), ('offer_cap_usage', 'offer_id')) as d(t, c);

select create_distributed_table('clicks', 'advertiser_id', colocate_with => 'none');
select create_distributed_table(t, 'advertiser_id', colocate_with => 'clicks')
from unnest(array['conversions', 'message_ids', 'pixel_events', 'postback_rate_limited']) as t;
select create_distributed_table('deliveries', 'publisher_id', colocate_with => 'none');
select create_distributed_table('offer_cap_usage', 'offer_id', colocate_with => 'none');

do $$
begin
  if exists (select 1 from pg_event_trigger where evtname = 'reviews_audit_guard_ddl') then
    alter event trigger reviews_audit_guard_ddl enable always;
  end if;
end
$$;
