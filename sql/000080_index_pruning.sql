-- Every index serves a query in src/ (src/db/index-justifications.ts names it; test/index-justification.test.ts
-- fails on an index without an entry there). The rest go: each costs every insert an index entry, and
-- every update that is not HOT one more. Rows that change state leave the indexes of open work when
-- they finish (partial indexes), and tables updated in place keep free room on their pages (fillfactor).
--
-- Per durable conversion that is delivered at the first try, index entries written:
--   before: conversions 7, status history 2, deliveries 7 on insert + 5 on `delivered`, attempt log 2 = 23
--   after:  conversions 6, status history 1, deliveries 5 on insert + 3 on `delivered`, attempt log 1 = 16

-- conversions -------------------------------------------------------------------------------------
-- GET /v1/conversions?decision= (conversions/query.ts listConversions) lists flagged and rejected
-- ones newest first; accepted ones are nearly every row, which conversions_created walks to as fast.
-- So accepted conversions (the common case) get no entry, and the list's tiebreak (id) is in the index.
drop index conversions_decision_created;
create index conversions_unaccepted_created on conversions (decision, created_at desc, id desc) where decision <> 'accepted';
-- Status changes (commit-batch.ts resolveRepeat: status, updated_at, no indexed column) update a
-- conversion in place when its page has room: HOT, no new index entry. New pages keep 10 % free.
alter table conversions set (fillfactor = 90);

-- conversion_status_history -------------------------------------------------------------------------
-- Read only by conversion (conversions/route.ts, via conversion_status_history_conversion) and
-- deleted only by conversion (commit-batch.ts undo); no query names a history row by its id, which
-- stays as the order within a conversion.
alter table conversion_status_history drop constraint conversion_status_history_pkey;

-- deliveries ----------------------------------------------------------------------------------------
-- (publisher_id, state) served no query: listDeliveries?publisherId= walks deliveries_created (it
-- needs created order, which this index cannot give), and the endpoint's park/resume statements use
-- deliveries_publisher_open. Every delivery paid it twice (insert and `delivered`).
drop index deliveries_publisher_state;
-- listDeliveries?state= newest first (delivery/views.ts selectDeliveries): `delivered` is nearly
-- every row, found as fast by walking deliveries_created; `pending` and `failed` are the open rows,
-- which deliveries_publisher_open already holds (a bounded set: at most REFIRE_WINDOW_S of traffic);
-- `expired` rows pile up for ever and are rare among the newest, so they keep an index of their own.
-- It gets an entry when a delivery expires (rare), none when one is queued or delivered.
drop index deliveries_state_created;
create index deliveries_expired_created on deliveries (created_at desc, id desc) where state = 'expired';

-- delivery_attempts ---------------------------------------------------------------------------------
-- Read only per delivery in id order (delivery/views.ts withAttempts, via delivery_attempts_delivery);
-- nothing names an attempt by its id.
alter table delivery_attempts drop constraint delivery_attempts_pkey;

-- postback_attempts ---------------------------------------------------------------------------------
-- Listed by time, code or advertiser (postback/attempts-query.ts listAttempts) and looked up by click
-- (reconcile/root-causes.ts); the keyset's id is in postback_attempts_time. Nothing reads one by id.
alter table postback_attempts drop constraint postback_attempts_pkey;

-- message_ids ---------------------------------------------------------------------------------------
-- No query reads message IDs by time (there is no pruning job); every signed webhook postback paid it.
drop index message_ids_created;

-- pixel_events --------------------------------------------------------------------------------------
-- Reconciliation reads pixels by time (pixel_events_created) and by click and txid (the unique key);
-- nothing reads them by offer and publisher, nor one by its id (the id only breaks ties in
-- reconcile/root-causes.ts's sort). Every pixel fire paid both.
drop index pixel_events_offer_publisher_created;
alter table pixel_events drop constraint pixel_events_pkey;

-- catalog -------------------------------------------------------------------------------------------
-- The catalog (catalog/catalog.ts load) reads offers and active secrets whole; no query filters
-- offers by advertiser or secrets by advertiser.
drop index offers_advertiser;
drop index advertiser_secrets_active;
