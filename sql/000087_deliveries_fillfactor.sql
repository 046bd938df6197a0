-- Deliveries' day partitions leave half of each page free (fillfactor 50, conversions keep 90). A
-- claim only sets the lease (no indexed column), but a HOT update needs room for the new row version
-- on the same page: at 90 a burst of claims finds none, and each claim then writes an entry in every
-- index of the table. Measured with reports/bench/write-path-indexes.ts over 2,000 conversions: at 90,
-- 12 % of claims were HOT, 20.4 index entries and 3,362 WAL bytes per conversion; at 50, 93 %, 16.4
-- and 2,802. ensure_partitions copies the default partition's setting to every day partition it
-- makes; the ones already made get it here (it applies to the pages they fill from now on).
do $$
declare
  p record;
begin
  for p in select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
           where i.inhparent = 'deliveries'::regclass loop
    execute format('alter table %I set (fillfactor = 50)', p.relname);
  end loop;
end
$$;
