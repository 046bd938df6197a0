-- What each cap of an offer has used in one UTC period (CONTRACT §10 caps). Written only by
-- src/postback/caps.ts, in the same transaction as the conversion it counts, under this row's lock:
-- postbacks of one capped offer commit one after another on every node, so a cap cannot be
-- over-shot. cap_key is "<period>:<per>:<event|*>", so changing a cap's limit keeps what the period
-- has used; scope_id is the publisher for per-publisher caps and '' for per-offer caps.
create table offer_cap_usage (
  offer_id text not null references offers (id),
  cap_key text not null,
  period_start date not null,
  scope_id text not null,
  conversions bigint not null default 0 check (conversions >= 0),
  payout_minor bigint not null default 0 check (payout_minor >= 0),
  primary key (offer_id, cap_key, period_start, scope_id)
);
