-- Conversions, their status history, the refused-postback log, deliveries and delivery attempts
-- become range-partitioned by UTC day on their creation time, as clicks are, so retention drops
-- whole days (src/db/partitions.ts) instead of growing one heap and its indexes for ever.
--
-- Keys, and why they look like this:
-- - A unique key of a partitioned table must contain the partition key, so (advertiser_id, txid)
--   cannot stay unique on conversions: it moves to conversion_txids, one row per conversion, written
--   in the same statement or transaction as the conversion (postback/commit-fresh.ts, commit-batch.ts,
--   reconcile/recovery.ts) and pruned with the conversions' retention.
-- - Every primary key holds the row's ID first (lookups by ID use it), the partition key, and the
--   column a distributed database (Citus, sql/citus/) places the row by: advertiser_id for
--   conversions and their history, publisher_id for deliveries and their attempts. The history
--   gains advertiser_id and the attempt log gains publisher_id for that.
-- - Foreign keys between these large tables go: a key to a partitioned table would have to name its
--   whole primary key, and the modules that own the rows guarantee the references (the intake and
--   the reconciler write a conversion with its history and txid; delivery/outbox.ts writes a delivery
--   only for a conversion it reads in the same statement; the delivery worker logs an attempt only
--   for the delivery it updates; reviews are written under the conversion's row lock). Foreign keys
--   to the catalog (advertisers, offers, publishers) stay.
-- - IDs of new conversions and deliveries carry their creation time (src/ids.ts, timed_id), so a
--   lookup by ID names one partition; IDs issued before this migration still find their rows.
-- - A child row is never dated before its parent (history and deliveries after their conversion):
--   lookups by conversion read only the partitions from the conversion's day on. Deliveries keep their
--   conversion's time (conversion_created_at) so that joins to the conversion name its partition.
--
-- Existing rows are copied into the new tables, in this transaction: day partitions are made for
-- every day that has rows, and the old tables are dropped once copied.

-- Partitions take their table's storage parameters from its default partition (fillfactor 90 for
-- the two tables updated in place, 000010 and 000080): PARTITION OF inherits none from the parent.
create or replace function ensure_partitions(parent text, first_day date, last_day date) returns integer language plpgsql as $$
declare
  d date := first_day;
  created integer := 0;
  name text;
  storage text := (select coalesce(' with (' || array_to_string(c.reloptions, ', ') || ')', '')
                   from pg_class c where c.oid = to_regclass(parent || '_default'));
begin
  while d <= last_day loop
    name := parent || '_' || to_char(d, 'YYYYMMDD');
    if to_regclass(name) is null then
      begin
        execute format('create table %I partition of %I for values from (%L) to (%L)',
                       name, parent, d::timestamp at time zone 'UTC', (d + 1)::timestamp at time zone 'UTC') || coalesce(storage, '');
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

-- The review trail's DDL guard (000021) refuses any ALTER of `reviews`; it is lifted for this one
-- change (its foreign key to conversions' old primary key) inside this transaction.
do $$
begin
  if exists (select 1 from pg_event_trigger where evtname = 'reviews_audit_guard_ddl') then
    alter event trigger reviews_audit_guard_ddl disable;
    alter event trigger reviews_audit_guard_drop disable;
  end if;
end
$$;
alter table reviews drop constraint reviews_conversion_id_fkey;
do $$
begin
  if exists (select 1 from pg_event_trigger where evtname = 'reviews_audit_guard_ddl') then
    alter event trigger reviews_audit_guard_ddl enable always;
    alter event trigger reviews_audit_guard_drop enable always;
  end if;
end
$$;

-- The old tables step aside, with their indexes and identity sequences (whose names the new tables take).
alter table delivery_attempts rename to legacy_delivery_attempts;
alter table deliveries rename to legacy_deliveries;
alter table conversion_status_history rename to legacy_conversion_status_history;
alter table conversions rename to legacy_conversions;
alter table postback_attempts rename to legacy_postback_attempts;
alter table legacy_delivery_attempts alter column id drop identity;
alter table legacy_conversion_status_history alter column id drop identity;
alter table legacy_postback_attempts alter column id drop identity;
do $$
declare
  i record;
begin
  for i in select c.relname from pg_index x join pg_class c on c.oid = x.indexrelid join pg_class t on t.oid = x.indrelid
           where t.relname in ('legacy_delivery_attempts', 'legacy_deliveries', 'legacy_conversion_status_history',
                               'legacy_conversions', 'legacy_postback_attempts') loop
    execute format('alter index %I rename to %I', i.relname, left('legacy_' || i.relname, 63));
  end loop;
end
$$;

create table conversions (
  id text not null,
  advertiser_id text not null references advertisers (id),
  offer_id text not null references offers (id),
  publisher_id text not null references publishers (id),
  click_id text not null,
  click_created_at timestamptz not null,
  txid text not null,
  event text not null,
  status text not null check (status in ('approved', 'pending', 'rejected')),
  sub1 text, sub2 text, sub3 text, sub4 text, sub5 text,
  payout_minor bigint not null check (payout_minor >= 0),
  currency char(3) not null,
  decision text not null check (decision in ('accepted', 'flagged', 'rejected')),
  score smallint not null check (score between 0 and 100),
  reasons text[] not null default '{}',
  evidence jsonb not null default '[]',
  source text not null check (source in ('s2s', 'pixel')),
  user_ip inet,
  user_agent text,
  source_ip inet,
  review_state text not null default 'none' check (review_state in ('none', 'approved', 'rejected')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  revenue_minor bigint not null check (revenue_minor >= 0),
  amount_minor bigint check (amount_minor >= 0),
  primary key (id, created_at, advertiser_id)
) partition by range (created_at);
create table conversions_default partition of conversions default with (fillfactor = 90);

-- Idempotency (CONTRACT §4): one conversion per advertiser transaction, on every node and across
-- every partition. created_at is the conversion's, which names its partition.
create table conversion_txids (
  advertiser_id text not null,
  txid text not null,
  conversion_id text not null,
  created_at timestamptz not null,
  primary key (advertiser_id, txid)
);

create sequence conversion_status_history_id_seq as bigint;
create table conversion_status_history (
  id bigint not null default nextval('conversion_status_history_id_seq'),
  conversion_id text not null,
  advertiser_id text not null,
  from_status text,
  to_status text not null,
  payout_minor bigint not null,
  currency char(3) not null,
  source text not null,
  created_at timestamptz not null default now()
) partition by range (created_at);
alter sequence conversion_status_history_id_seq owned by conversion_status_history.id;
create table conversion_status_history_default partition of conversion_status_history default;

-- advertiser_id is '' for a postback that named no advertiser the engine knows of the path's: the
-- distribution column is never null.
create sequence postback_attempts_id_seq as bigint;
create table postback_attempts (
  id bigint not null default nextval('postback_attempts_id_seq'),
  advertiser_id text not null,
  received_at timestamptz not null default now(),
  source_ip inet,
  http_status smallint not null,
  error_code text not null,
  reason text,
  click_id text,
  txid text,
  detail jsonb
) partition by range (received_at);
alter sequence postback_attempts_id_seq owned by postback_attempts.id;
create table postback_attempts_default partition of postback_attempts default;

create table deliveries (
  id text not null,
  conversion_id text not null,
  conversion_created_at timestamptz not null,
  publisher_id text not null references publishers (id),
  state text not null check (state in ('pending', 'delivered', 'failed', 'expired')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  deadline_at timestamptz not null,
  lease_until timestamptz,
  leased_by text,
  last_status_code integer,
  last_error text,
  created_at timestamptz not null default now(),
  delivered_at timestamptz,
  updated_at timestamptz not null default now(),
  refired_at timestamptz,
  refire_window tstzrange,
  expiry_reported_by text,
  status text check (status in ('approved', 'pending', 'rejected')),
  sequence integer not null default 0 check (sequence >= 0),
  primary key (id, created_at, publisher_id)
) partition by range (created_at);
create table deliveries_default partition of deliveries default with (fillfactor = 90);

create sequence delivery_attempts_id_seq as bigint;
create table delivery_attempts (
  id bigint not null default nextval('delivery_attempts_id_seq'),
  delivery_id text not null,
  publisher_id text not null,
  attempted_at timestamptz not null default now(),
  status_code integer,
  latency_ms integer not null,
  error text,
  response_snippet text,
  replay boolean not null default false
) partition by range (attempted_at);
alter sequence delivery_attempts_id_seq owned by delivery_attempts.id;
create table delivery_attempts_default partition of delivery_attempts default;

-- A day partition for every day that has rows, and from yesterday to two weeks ahead (what the
-- engine keeps; it makes the rest as days pass).
do $$
declare
  t record;
  d date;
begin
  for t in select * from (values
             ('conversions', 'select distinct (created_at at time zone ''UTC'')::date from legacy_conversions'),
             ('conversion_status_history', 'select distinct (created_at at time zone ''UTC'')::date from legacy_conversion_status_history'),
             ('postback_attempts', 'select distinct (received_at at time zone ''UTC'')::date from legacy_postback_attempts'),
             ('deliveries', 'select distinct (created_at at time zone ''UTC'')::date from legacy_deliveries'),
             ('delivery_attempts', 'select distinct (attempted_at at time zone ''UTC'')::date from legacy_delivery_attempts'))
           as v(tab, days) loop
    for d in execute t.days loop
      perform ensure_partitions(t.tab, d, d);
    end loop;
    perform ensure_partitions(t.tab, (now() at time zone 'UTC')::date - 1, (now() at time zone 'UTC')::date + 14);
  end loop;
end
$$;

insert into conversions (id, advertiser_id, offer_id, publisher_id, click_id, click_created_at, txid, event, status,
  sub1, sub2, sub3, sub4, sub5, payout_minor, currency, decision, score, reasons, evidence, source, user_ip, user_agent,
  source_ip, review_state, created_at, updated_at, revenue_minor, amount_minor)
select id, advertiser_id, offer_id, publisher_id, click_id, click_created_at, txid, event, status,
  sub1, sub2, sub3, sub4, sub5, payout_minor, currency, decision, score, reasons, evidence, source, user_ip, user_agent,
  source_ip, review_state, created_at, updated_at, revenue_minor, amount_minor
from legacy_conversions;

insert into conversion_txids (advertiser_id, txid, conversion_id, created_at)
select advertiser_id, txid, id, created_at from legacy_conversions;

-- The history's rows were written after (or with) their conversion, so no row needs re-dating.
insert into conversion_status_history (id, conversion_id, advertiser_id, from_status, to_status, payout_minor, currency, source, created_at)
select h.id, h.conversion_id, c.advertiser_id, h.from_status, h.to_status, h.payout_minor, h.currency, h.source,
       greatest(h.created_at, c.created_at)
from legacy_conversion_status_history h join legacy_conversions c on c.id = h.conversion_id;

insert into postback_attempts (id, advertiser_id, received_at, source_ip, http_status, error_code, reason, click_id, txid, detail)
select id, coalesce(advertiser_id, ''), received_at, source_ip, http_status, error_code, reason, click_id, txid, detail
from legacy_postback_attempts;

insert into deliveries (id, conversion_id, conversion_created_at, publisher_id, state, attempts, next_attempt_at, deadline_at,
  lease_until, leased_by, last_status_code, last_error, created_at, delivered_at, updated_at, refired_at, refire_window,
  expiry_reported_by, status, sequence)
select d.id, d.conversion_id, c.created_at, d.publisher_id, d.state, d.attempts, d.next_attempt_at, d.deadline_at,
  d.lease_until, d.leased_by, d.last_status_code, d.last_error, greatest(d.created_at, c.created_at), d.delivered_at, d.updated_at,
  d.refired_at, d.refire_window, d.expiry_reported_by, d.status, d.sequence
from legacy_deliveries d join legacy_conversions c on c.id = d.conversion_id;

insert into delivery_attempts (id, delivery_id, publisher_id, attempted_at, status_code, latency_ms, error, response_snippet, replay)
select a.id, a.delivery_id, d.publisher_id, a.attempted_at, a.status_code, a.latency_ms, a.error, a.response_snippet, a.replay
from legacy_delivery_attempts a join legacy_deliveries d on d.id = a.delivery_id;

-- Later rows continue the old numbering (the history and the attempts are ordered by id).
select setval('conversion_status_history_id_seq', coalesce((select max(id) from legacy_conversion_status_history), 0) + 1, false);
select setval('postback_attempts_id_seq', coalesce((select max(id) from legacy_postback_attempts), 0) + 1, false);
select setval('delivery_attempts_id_seq', coalesce((select max(id) from legacy_delivery_attempts), 0) + 1, false);

drop table legacy_delivery_attempts;
drop table legacy_deliveries;
drop table legacy_conversion_status_history;
drop table legacy_conversions;
drop table legacy_postback_attempts;

-- The index set of 000080 (src/db/index-justifications.ts says which query needs each), on the
-- partitioned tables. Unique keys other than the primary keys cannot hold across partitions:
-- (advertiser_id, txid) is conversion_txids' primary key, and one delivery per (conversion, sequence)
-- is held by the conversion's row lock, under which every status change queues its delivery
-- (delivery/outbox.ts enqueueStatusChange).
create index conversions_created on conversions (created_at desc, id desc);
create index conversions_unaccepted_created on conversions (decision, created_at desc, id desc) where decision <> 'accepted';
create index conversions_offer_publisher_created on conversions (offer_id, publisher_id, created_at);
create index conversions_publisher_created on conversions (publisher_id, created_at);
create index conversions_click on conversions (click_id);
create index conversions_review_queue on conversions ((-(payout_minor * score)), created_at, id)
  where decision = 'flagged' and review_state = 'none';
-- Retention deletes a day's txids with its conversions' partition.
create index conversion_txids_created on conversion_txids (created_at);
create index conversion_status_history_conversion on conversion_status_history (conversion_id, id);
create index deliveries_conversion_sequence on deliveries (conversion_id, sequence);
create index deliveries_publisher_open on deliveries (publisher_id, next_attempt_at) where state in ('pending', 'failed');
create index deliveries_open_deadline on deliveries (deadline_at) where state in ('pending', 'failed');
create index deliveries_created on deliveries (created_at desc, id desc);
create index deliveries_expired_created on deliveries (created_at desc, id desc) where state = 'expired';
create index deliveries_expiry_unreported on deliveries (created_at) where state = 'expired' and expiry_reported_by is null;
create index delivery_attempts_delivery on delivery_attempts (delivery_id, id);
create index postback_attempts_time on postback_attempts (received_at, id);
create index postback_attempts_code_time on postback_attempts (error_code, received_at, id);
create index postback_attempts_advertiser_time on postback_attempts (advertiser_id, received_at);
create index postback_attempts_click on postback_attempts (click_id) where click_id is not null;
