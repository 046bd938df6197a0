-- Citus: the catalog on every node, the large tables sharded by the key their hot queries carry.
-- Runs once on the coordinator after sql/*.sql, only where the citus extension is installed
-- (src/db/citus.ts). Shard count: the database's citus.shard_count (32 unless set).
--
-- Reference tables (a full copy on every worker, joined locally by any shard): the catalog, which
-- every node reads whole and admins change rarely.
-- Distributed by advertiser_id, colocated (a postback's transaction stays on one shard): clicks,
-- conversions, conversion_txids, conversion_status_history, message_ids, postback_attempts (an
-- unknown advertiser is '', never NULL: Citus has no shard for NULL), postback_rate_limited,
-- pixel_events.
-- Distributed by publisher_id, colocated: deliveries and delivery_attempts (the worker claims one
-- publisher's due rows with FOR UPDATE SKIP LOCKED, which Citus runs only on a single shard).
-- Distributed by offer_id: offer_cap_usage (one capped offer's rows are locked together).
-- Local to the coordinator: reviews, admin_audit (append-only by triggers and DDL event triggers,
-- which Citus does not run on shards; both grow with people's actions, not with traffic) and the
-- reconciliation runs, rows and root causes (one writer, the reconciler, a few rows per run and hour).

-- Adding a foreign key to a distributed table in the transaction that distributed it needs the
-- shards' DDL on one connection per worker.
set local citus.multi_shard_modify_mode to 'sequential';

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

-- Citus 12.1 cannot distribute a partitioned table that has CHECK constraints and a foreign key to a
-- reference table ("child table is missing constraint"), nor make it a Citus local table when that
-- reference table is created. The traffic tables' keys to the catalog are taken off here and put
-- back once everything is distributed.
create temporary table saved_foreign_keys on commit drop as
  select format('alter table %s add constraint %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid)) as definition,
         conrelid::regclass as tbl, conname
  from pg_constraint
  where contype = 'f' and conparentid = 0
    and conrelid::regclass::text in ('clicks', 'conversions', 'conversion_txids', 'conversion_status_history', 'message_ids',
                                     'pixel_events', 'postback_attempts', 'postback_rate_limited', 'deliveries',
                                     'delivery_attempts', 'offer_cap_usage');
do $$
declare
  fk record;
begin
  for fk in select tbl, conname from saved_foreign_keys loop
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

-- Each group's first table starts its colocation group; the others join it, so a join or a
-- transaction over one advertiser's (or one publisher's) rows stays on one shard. A table made before
-- it had its distribution column (an older schema) stays on the coordinator, with a notice.
do $$
declare
  t record;
  anchor text;
begin
  for t in select * from (values
      (1, 'clicks', 'advertiser_id'), (2, 'conversions', 'advertiser_id'), (3, 'conversion_txids', 'advertiser_id'),
      (4, 'conversion_status_history', 'advertiser_id'), (5, 'message_ids', 'advertiser_id'), (6, 'pixel_events', 'advertiser_id'),
      (7, 'postback_attempts', 'advertiser_id'), (8, 'postback_rate_limited', 'advertiser_id'),
      (9, 'deliveries', 'publisher_id'), (10, 'delivery_attempts', 'publisher_id'),
      (11, 'offer_cap_usage', 'offer_id')) as v(n, tab, col) order by n
  loop
    if to_regclass(t.tab) is null then
      continue;
    end if;
    if not exists (select 1 from pg_attribute where attrelid = t.tab::regclass and attname = t.col and not attisdropped) then
      raise notice '% has no % column: it stays on the coordinator', t.tab, t.col;
      continue;
    end if;
    perform pg_temp.include_distribution_column(t.tab::regclass, t.col);
    anchor := case t.col when 'advertiser_id' then 'clicks' when 'publisher_id' then 'deliveries' else 'none' end;
    perform create_distributed_table(t.tab, t.col, colocate_with => case when anchor = t.tab then 'none' else anchor end);
  end loop;
end
$$;

-- Except deliveries' key to publishers: reads that join deliveries to conversions (the deliveries
-- list) run as repartition joins, whose temporary shards Citus refuses to create in parallel next to
-- a foreign key to a reference table read in the same transaction ("cannot execute parallel DDL on
-- table deliveries"). The outbox writes only publishers taken from the catalog.
do $$
declare
  fk record;
begin
  for fk in select definition from saved_foreign_keys where tbl <> 'deliveries'::regclass loop
    execute fk.definition;
  end loop;
end
$$;

-- Reads that join deliveries (by publisher) to conversions (by advertiser), such as the deliveries
-- list and the payouts report, are joins across colocation groups: Citus runs them as repartition
-- joins, which it does only when asked.
do $$
begin
  execute format('alter database %I set citus.enable_repartition_joins = on', current_database());
end
$$;

do $$
begin
  if exists (select 1 from pg_event_trigger where evtname = 'reviews_audit_guard_ddl') then
    alter event trigger reviews_audit_guard_ddl enable always;
  end if;
end
$$;
