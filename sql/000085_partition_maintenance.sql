-- One partition-maintenance function for every day-partitioned table (src/db/partitions.ts): clicks
-- and, from 000086, conversions, their history and txids' owners, the postback attempt log,
-- deliveries and their attempts. Day partitions are named <table>_YYYYMMDD and cover one UTC day.
--
-- Creating a partition takes an ACCESS EXCLUSIVE lock on the parent. Behind a long report query that
-- lock would wait, and every insert would queue behind the waiting lock: the caller sets a short
-- lock_timeout, and a day that cannot get its lock in time is left for the next run (partitions are
-- made two weeks ahead, so a missed run costs nothing). A day whose rows already sit in the table's
-- default partition cannot get a partition (PostgreSQL refuses one the default partition's rows would
-- violate): it is skipped with a warning and its rows stay where they are (see 000041).
create function ensure_partitions(parent text, first_day date, last_day date) returns integer language plpgsql as $$
declare
  d date := first_day;
  created integer := 0;
  name text;
begin
  while d <= last_day loop
    name := parent || '_' || to_char(d, 'YYYYMMDD');
    if to_regclass(name) is null then
      begin
        execute format('create table %I partition of %I for values from (%L) to (%L)',
                       name, parent, d::timestamp at time zone 'UTC', (d + 1)::timestamp at time zone 'UTC');
        created := created + 1;
      exception
        when duplicate_table then
          null; -- another node created it first
        when check_violation then
          raise warning 'rows of % are already in %_default; that day gets no partition', d, parent;
        when lock_not_available then
          raise warning '% is busy (lock_timeout); partitions from % on are left for the next run', parent, d;
          return created;
      end;
    end if;
    d := d + 1;
  end loop;
  return created;
end
$$;

drop function ensure_click_partitions(date, date);

-- IDs that carry their creation time (src/ids.ts newTimedId), minted where rows are made inside a
-- statement: prefix, underscore, the time in milliseconds since the epoch as 6 bytes, then 12 random
-- bytes, all base64url (24 characters). A lookup by such an ID names its partition.
create function timed_id(prefix text, at timestamptz) returns text language sql volatile as $$
  select prefix || '_' || translate(encode(
    substring(int8send(floor(extract(epoch from at) * 1000)::bigint) from 3 for 6)
      || substring(uuid_send(gen_random_uuid()) from 1 for 6)
      || substring(uuid_send(gen_random_uuid()) from 1 for 6), 'base64'), '+/', '-_')
$$;
