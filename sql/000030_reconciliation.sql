-- Reconciliation (issue 6): S2S postbacks against browser pixels, recovery, re-fire, root causes.

-- IDs made inside set-based statements (recovered conversions) have the same shape as src/ids.ts:
-- prefix, underscore, 12 random bytes in base64url. A v4 UUID's first 6 bytes are fully random.
create function new_id(prefix text) returns text language sql volatile as $$
  select prefix || '_' || translate(encode(substring(uuid_send(gen_random_uuid()) from 1 for 6)
                                           || substring(uuid_send(gen_random_uuid()) from 1 for 6), 'base64'), '+/', '-_')
$$;

-- The window scans read pixels by time across every offer.
create index pixel_events_created on pixel_events (created_at);

-- What the reconciler did to a delivery, so a run repeated over the same window changes nothing:
-- refire_window is the window of the last run that made it due; expiry_reported_by is the run that
-- first counted its expiry (whether that run expired it or the delivery worker's sweep did).
alter table deliveries
  add column refired_at timestamptz,
  add column refire_window tstzrange,
  add column expiry_reported_by text;

alter table reconciliation_runs
  add column requested_by text,
  add column root_causes jsonb,
  -- Milliseconds per step, so a slow run says which statement was slow.
  add column step_ms jsonb;
create index reconciliation_runs_started on reconciliation_runs (started_at desc, id desc);

-- Why each pixel-only conversion of a run has no S2S postback, as far as the attempt log knows.
create table reconciliation_root_causes (
  run_id text not null references reconciliation_runs (id),
  advertiser_id text not null,
  txid text not null,
  click_id text not null,
  click_created_at timestamptz not null,
  offer_id text not null,
  publisher_id text not null,
  event text not null,
  pixel_at timestamptz not null,
  user_ip inet,
  user_agent text,
  -- A conversion already held this txid when the run looked: recovered earlier, or another click's.
  existing_conversion_id text,
  recovered_conversion_id text,
  cause text not null,
  error_code text,
  reason text,
  attempts integer not null,
  last_attempt_at timestamptz,
  rate_limited bigint not null,
  primary key (run_id, advertiser_id, txid, click_id)
);
create index reconciliation_root_causes_cause on reconciliation_root_causes (run_id, cause);
