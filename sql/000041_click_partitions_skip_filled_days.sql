-- A day whose clicks already sit in clicks_default (its partition was not created in time: the
-- engine was down longer than it creates partitions ahead, or a clock jumped) cannot get a partition:
-- PostgreSQL refuses one that the default partition's rows would violate. That refusal used to abort
-- the whole call, so no later day got a partition either and every click from then on went to the
-- default partition. Such a day is now skipped (its rows stay in the default partition) and the
-- others are still created.
create or replace function ensure_click_partitions(first_day date, last_day date) returns integer language plpgsql as $$
declare
  d date := first_day;
  created integer := 0;
  name text;
begin
  while d <= last_day loop
    name := 'clicks_' || to_char(d, 'YYYYMMDD');
    if to_regclass(name) is null then
      begin
        execute format('create table %I partition of clicks for values from (%L) to (%L)',
                       name, d::timestamp at time zone 'UTC', (d + 1)::timestamp at time zone 'UTC');
        created := created + 1;
      exception
        when duplicate_table then
          null; -- another node created it first
        when check_violation then
          raise warning 'clicks of % are already in clicks_default; that day gets no partition', d;
      end;
    end if;
    d := d + 1;
  end loop;
  return created;
end
$$;
