-- The whole mission's schema. Money is bigint minor units beside an ISO 4217 code; every time is
-- timestamptz (the server runs in UTC). User-visible IDs are prefixed text; advertisers, publishers
-- and offers also carry a small integer `seq`, which is what a click ID embeds to stay short.

create table api_tokens (
  id text primary key,
  name text not null,
  role text not null check (role in ('admin', 'analyst', 'finance')),
  -- SHA-256 of the token: a leaked table does not leak bearer tokens.
  token_hash bytea not null unique,
  created_at timestamptz not null default now(),
  revoked_at timestamptz
);

-- Keys that authenticate click IDs. The newest active key mints; every key that is not retired verifies.
create table click_keys (
  kid smallint primary key check (kid between 0 and 255),
  secret bytea not null check (octet_length(secret) = 32),
  created_at timestamptz not null default now(),
  retired_at timestamptz
);

-- Bumped by every admin change to advertisers, secrets, publishers, offers or click keys; each node
-- polls this one row and reloads its in-memory catalog when it moves (changes visible within 5 s).
create table catalog_version (
  singleton boolean primary key default true check (singleton),
  version bigint not null
);
insert into catalog_version (version) values (1);

create table advertisers (
  id text primary key,
  seq integer generated always as identity unique,
  name text not null,
  ip_allowlist text[] not null default '{}',
  auth text[] not null,
  jwt jsonb,
  rate_limit_per_s integer not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- Webhook secrets are HMAC keys: the engine must hold them to verify, so they are stored, never shown again.
create table advertiser_secrets (
  id text primary key,
  advertiser_id text not null references advertisers (id),
  secret bytea not null,
  created_at timestamptz not null default now(),
  revoked_at timestamptz
);
create index advertiser_secrets_active on advertiser_secrets (advertiser_id) where revoked_at is null;

create table publishers (
  id text primary key,
  seq integer generated always as identity unique,
  name text not null,
  postback_url text not null,
  method text not null check (method in ('GET', 'POST')),
  secret bytea not null,
  disabled_at timestamptz,
  disabled_reason text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table offers (
  id text primary key,
  seq integer generated always as identity unique,
  advertiser_id text not null references advertisers (id),
  name text not null,
  url text not null,
  payout_minor bigint not null check (payout_minor >= 0),
  currency char(3) not null,
  click_ttl_s integer not null check (click_ttl_s > 0),
  daily_cap integer check (daily_cap > 0),
  fraud jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index offers_advertiser on offers (advertiser_id);

-- Clicks are the largest table: range-partitioned by day on created_at (which the click ID also
-- carries, so a lookup by ID prunes to one partition). Old partitions are dropped for retention.
create table clicks (
  id text not null,
  created_at timestamptz not null,
  offer_id text not null,
  publisher_id text not null,
  advertiser_id text not null,
  sub1 text, sub2 text, sub3 text, sub4 text, sub5 text,
  ip inet,
  user_agent text,
  primary key (id, created_at)
) partition by range (created_at);
create table clicks_default partition of clicks default;
create index clicks_offer_publisher_time on clicks (offer_id, publisher_id, created_at);

create table conversions (
  id text primary key,
  advertiser_id text not null references advertisers (id),
  offer_id text not null references offers (id),
  publisher_id text not null references publishers (id),
  click_id text not null,
  click_created_at timestamptz not null,
  txid text not null,
  event text not null,
  status text not null check (status in ('approved', 'pending', 'rejected')),
  -- Copied from the click at commit: outbound macros need them even if the click row was lost or expired.
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
  -- Idempotency is the database's job: one conversion per advertiser transaction, on every node.
  unique (advertiser_id, txid)
);
create index conversions_created on conversions (created_at desc, id desc);
create index conversions_decision_created on conversions (decision, created_at desc);
create index conversions_offer_publisher_created on conversions (offer_id, publisher_id, created_at);
create index conversions_click on conversions (click_id);
create index conversions_publisher_created on conversions (publisher_id, created_at);

create table conversion_status_history (
  id bigint generated always as identity primary key,
  conversion_id text not null references conversions (id),
  from_status text,
  to_status text not null,
  payout_minor bigint not null,
  currency char(3) not null,
  source text not null,
  created_at timestamptz not null default now()
);
create index conversion_status_history_conversion on conversion_status_history (conversion_id, id);

-- A webhook-id or JWT jti, once committed, stands for exactly one content hash: a reuse with other
-- content is a replay attack (409), a reuse with the same content is a retry.
create table message_ids (
  advertiser_id text not null,
  kind text not null check (kind in ('webhook', 'jti')),
  message_id text not null,
  content_hash bytea not null,
  txid text not null,
  created_at timestamptz not null default now(),
  primary key (advertiser_id, kind, message_id)
);
create index message_ids_created on message_ids (created_at);

-- Every postback the engine refused, with why: finance and advertisers need root causes.
create table postback_attempts (
  id bigint generated always as identity primary key,
  advertiser_id text,
  received_at timestamptz not null default now(),
  source_ip inet,
  http_status smallint not null,
  error_code text not null,
  reason text,
  click_id text,
  txid text,
  detail jsonb
);
create index postback_attempts_advertiser_time on postback_attempts (advertiser_id, received_at);
create index postback_attempts_click on postback_attempts (click_id) where click_id is not null;

-- 429s are counted per advertiser and minute, not logged one by one (a flood must not become a write flood).
create table postback_rate_limited (
  advertiser_id text not null,
  minute timestamptz not null,
  count bigint not null,
  primary key (advertiser_id, minute)
);

create table pixel_events (
  id bigint generated always as identity primary key,
  click_id text not null,
  click_created_at timestamptz not null,
  advertiser_id text not null,
  offer_id text not null,
  publisher_id text not null,
  event text not null,
  txid text not null,
  ip inet,
  user_agent text,
  created_at timestamptz not null default now(),
  unique (click_id, event, txid)
);
create index pixel_events_offer_publisher_created on pixel_events (offer_id, publisher_id, created_at);

-- The outbox: one row per outbound postback, written in the conversion's own transaction.
create table deliveries (
  id text primary key,
  conversion_id text not null references conversions (id),
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
  updated_at timestamptz not null default now()
);
create index deliveries_due on deliveries (next_attempt_at) where state in ('pending', 'failed');
create index deliveries_conversion on deliveries (conversion_id);
create index deliveries_publisher_state on deliveries (publisher_id, state);

create table delivery_attempts (
  id bigint generated always as identity primary key,
  delivery_id text not null references deliveries (id),
  attempted_at timestamptz not null default now(),
  status_code integer,
  latency_ms integer not null,
  error text,
  response_snippet text
);
create index delivery_attempts_delivery on delivery_attempts (delivery_id, id);

create table reconciliation_runs (
  id text primary key,
  window_from timestamptz not null,
  window_to timestamptz not null,
  trigger text not null check (trigger in ('cron', 'api', 'cli')),
  state text not null check (state in ('running', 'done', 'failed')),
  totals jsonb,
  error text,
  started_at timestamptz not null default now(),
  finished_at timestamptz
);

create table reconciliation_rows (
  run_id text not null references reconciliation_runs (id),
  offer_id text not null,
  publisher_id text not null,
  hour timestamptz not null,
  s2s integer not null,
  pixel integer not null,
  matched integer not null,
  s2s_only integer not null,
  pixel_only integer not null,
  recovered integer not null,
  refired integer not null,
  expired integer not null,
  primary key (run_id, offer_id, publisher_id, hour)
);

-- Analysts' decisions. Append-only, and the database itself refuses UPDATE, DELETE and TRUNCATE.
create table reviews (
  id bigint generated always as identity primary key,
  conversion_id text not null references conversions (id),
  decision text not null check (decision in ('approve', 'reject')),
  note text,
  reviewer_token_id text not null,
  reviewer_name text not null,
  created_at timestamptz not null default now()
);
create index reviews_conversion on reviews (conversion_id, id);

create function refuse_audit_change() returns trigger language plpgsql as $$
begin
  raise exception 'the review audit trail is append-only (% refused)', tg_op using errcode = 'insufficient_privilege';
end
$$;
create trigger reviews_append_only before update or delete on reviews
  for each row execute function refuse_audit_change();
create trigger reviews_no_truncate before truncate on reviews
  for each statement execute function refuse_audit_change();

-- Day partitions for clicks, created ahead by the engine; rows outside them fall into clicks_default.
create function ensure_click_partitions(first_day date, last_day date) returns integer language plpgsql as $$
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
      exception when duplicate_table then
        null; -- another node created it first
      end;
    end if;
    d := d + 1;
  end loop;
  return created;
end
$$;
