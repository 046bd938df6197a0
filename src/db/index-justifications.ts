/**
 * Why each index of the schema exists: the query (or the invariant) that needs it, and where in the
 * code that is. An index costs every insert an entry and every non-HOT update another, so one that no
 * query needs is dropped (sql/000080_index_pruning.sql). test/index-justification.test.ts fails when
 * the migrated schema has an index missing here, when an entry names an index that no longer exists,
 * or when a place named here no longer holds the name it points to; the bench's index report
 * (reports/bench/index-usage.ts) flags indexes never scanned.
 *
 * Keys are top-level index names (a partitioned table's index, never its partitions' copies).
 * `usedBy` names files relative to the repository root and an identifier (function, constant or
 * table) in each that holds the query.
 */

export type IndexJustification = {
  table: string;
  why: string;
  usedBy: readonly { file: string; name: string }[];
};

const at = (file: string, name: string) => ({ file, name });

export const INDEX_JUSTIFICATIONS: Readonly<Record<string, IndexJustification>> = {
  // The outbox and the delivery worker ----------------------------------------------------------------
  deliveries_pkey: {
    table: 'deliveries',
    why: 'a delivery by ID: claims and outcomes update by id, replay leases one, GET /v1/deliveries/:id; attempts reference it',
    usedBy: [at('src/delivery/store.ts', 'claimDue'), at('src/delivery/store.ts', 'leaseOne'), at('src/delivery/outcome-writer.ts', 'writeOutcomes')],
  },
  deliveries_conversion_sequence: {
    table: 'deliveries',
    why: 'a conversion\'s deliveries (one per status change, held by the conversion\'s row lock): the next sequence, "was it sent", the detail view, payouts',
    usedBy: [at('src/delivery/outbox.ts', 'enqueueStatusChange'), at('src/delivery/outbox.ts', 'hasDelivery'), at('src/reports/payouts.ts', 'readRows')],
  },
  deliveries_publisher_open: {
    table: 'deliveries',
    why: 'open rows per publisher by due time: the claim and the next-due timer walk it; park/resume of a publisher; queue metrics',
    usedBy: [at('src/delivery/store.ts', 'claimDue'), at('src/delivery/store.ts', 'msUntilNextDue'), at('src/delivery/rescheduling.ts', 'parkPublisherDeliveries'), at('src/delivery/metrics.ts', 'queueStats')],
  },
  deliveries_open_deadline: {
    table: 'deliveries',
    why: 'open rows by deadline: the expiry sweep reads only those past it, however large the backlog of due rows',
    usedBy: [at('src/delivery/store.ts', 'sweepExpired')],
  },
  deliveries_created: {
    table: 'deliveries',
    why: 'GET /v1/deliveries newest first, unfiltered or by publisher, conversion or state delivered (nearly every row)',
    usedBy: [at('src/delivery/views.ts', 'selectDeliveries')],
  },
  deliveries_expired_created: {
    table: 'deliveries',
    why: 'GET /v1/deliveries?state=expired newest first: expired rows pile up and are rare among the newest',
    usedBy: [at('src/delivery/views.ts', 'selectDeliveries')],
  },
  deliveries_expiry_unreported: {
    table: 'deliveries',
    why: 'expiries no reconciliation run has counted yet: a handful, among expired rows that grow for ever',
    usedBy: [at('src/delivery/rescheduling.ts', 'expiredDeliveriesCte')],
  },
  delivery_attempts_delivery: {
    table: 'delivery_attempts',
    why: "a delivery's attempts in order, for the deliveries API and the conversion detail",
    usedBy: [at('src/delivery/views.ts', 'withAttempts'), at('src/conversions/route.ts', 'registerConversionRoutes')],
  },

  // Conversions and their history ----------------------------------------------------------------------
  conversions_pkey: {
    table: 'conversions',
    why: 'a conversion by ID: detail view, review lock, outbox joins, status-change lookups',
    usedBy: [at('src/review/store.ts', 'lockConversion'), at('src/conversions/route.ts', 'registerConversionRoutes'), at('src/delivery/outbox.ts', 'enqueueStatusChange')],
  },
  conversion_txids_pkey: {
    table: 'conversion_txids',
    why: 'idempotency across conversions\' day partitions: one conversion per advertiser transaction (ON CONFLICT), and lookups of an existing txid',
    usedBy: [at('src/postback/commit-fresh.ts', 'commitFresh'), at('src/postback/commit-batch.ts', 'lockExisting'), at('src/postback/caps.ts', 'commitCapped'), at('src/reconcile/root-causes.ts', 'recordRootCauses'), at('src/db/partitions.ts', 'deleteCompanionsOf')],
  },
  conversions_created: {
    table: 'conversions',
    why: 'newest-first list and every time window: reconciliation, re-fire and expiry, reports, rule quality',
    usedBy: [at('src/conversions/query.ts', 'listConversions'), at('src/reconcile/window.ts', 'compareWindow'), at('src/fraud/rule-quality.ts', 'ruleQuality')],
  },
  conversions_unaccepted_created: {
    table: 'conversions',
    why: 'list by decision flagged or rejected, newest first (accepted ones walk conversions_created)',
    usedBy: [at('src/conversions/query.ts', 'listConversions')],
  },
  conversions_offer_publisher_created: {
    table: 'conversions',
    why: 'list by offer (and publisher), the UI conversions filter',
    usedBy: [at('src/conversions/query.ts', 'listConversions'), at('src/ui/conversions.js', 'offerId')],
  },
  conversions_publisher_created: {
    table: 'conversions',
    why: 'list by publisher; the payouts report for one publisher over a window',
    usedBy: [at('src/conversions/query.ts', 'listConversions'), at('src/reports/payouts.ts', 'filterOf')],
  },
  conversions_click: {
    table: 'conversions',
    why: 'list by clickid: support finding what became of a click',
    usedBy: [at('src/conversions/query.ts', 'listConversions')],
  },
  conversions_review_queue: {
    table: 'conversions',
    why: 'the review queue: flagged, undecided, by payout x score',
    usedBy: [at('src/review/queue.ts', 'listQueue')],
  },
  conversion_status_history_conversion: {
    table: 'conversion_status_history',
    why: "a conversion's status history in order (detail view); the undo of a refused postback deletes by conversion",
    usedBy: [at('src/conversions/route.ts', 'registerConversionRoutes'), at('src/postback/commit-batch.ts', 'commitBatch')],
  },
  reviews_conversion: {
    table: 'reviews',
    why: "a conversion's review trail in order (detail view)",
    usedBy: [at('src/conversions/route.ts', 'registerConversionRoutes')],
  },
  reviews_pkey: {
    table: 'reviews',
    why: "the append-only trail's row identity; its DDL guard refuses any ALTER of the table (a few rows per analyst action)",
    usedBy: [at('sql/000021_review_audit.sql', 'reviews_append_only')],
  },

  // Intake: clicks, message IDs, pixels, caps, refusals ------------------------------------------------
  clicks_pkey: {
    table: 'clicks',
    why: 'a click by ID and time (its partition): the postback looks its click up; a re-sent click batch is idempotent',
    usedBy: [at('src/click/click-store.ts', 'findClicks'), at('src/click/click-store.ts', 'insertClicksIdempotently')],
  },
  message_ids_pkey: {
    table: 'message_ids',
    why: 'a webhook-id or jti stands for one content (unique), checked on every signed postback',
    usedBy: [at('src/postback/commit-batch.ts', 'claimMessageIds')],
  },
  message_ids_created_brin: {
    table: 'message_ids',
    why: 'retention deletes message IDs older than the attempt log keeps, by time (BRIN: no entry per insert)',
    usedBy: [at('src/db/partitions.ts', 'trimmedTables')],
  },
  pixel_events_click_id_event_txid_key: {
    table: 'pixel_events',
    why: 'one pixel event per click, event and txid (ON CONFLICT); reconciliation looks pixels up by click and txid',
    usedBy: [at('src/pixel/pixel-store.ts', 'insertPixelEvents'), at('src/reconcile/window.ts', 'compareWindow')],
  },
  pixel_events_created: {
    table: 'pixel_events',
    why: "reconciliation reads a window's pixels by time; retention deletes the old ones",
    usedBy: [at('src/reconcile/window.ts', 'compareWindow'), at('src/reconcile/root-causes.ts', 'recordRootCauses'), at('src/db/partitions.ts', 'trimmedTables')],
  },
  offer_cap_usage_pkey: {
    table: 'offer_cap_usage',
    why: "a capped offer's usage rows, locked and counted per cap, period and scope",
    usedBy: [at('src/postback/caps.ts', 'commitCapped')],
  },
  postback_attempts_time: {
    table: 'postback_attempts',
    why: 'the refused-postback log newest first, keyset on (received_at, id)',
    usedBy: [at('src/postback/attempts-query.ts', 'listAttempts')],
  },
  postback_attempts_code_time: {
    table: 'postback_attempts',
    why: 'the log filtered by error code',
    usedBy: [at('src/postback/attempts-query.ts', 'listAttempts')],
  },
  postback_attempts_advertiser_time: {
    table: 'postback_attempts',
    why: 'the log filtered by advertiser',
    usedBy: [at('src/postback/attempts-query.ts', 'listAttempts')],
  },
  postback_attempts_click: {
    table: 'postback_attempts',
    why: "root causes: the refused attempts of a pixel-only unit's click",
    usedBy: [at('src/reconcile/root-causes.ts', 'recordRootCauses')],
  },
  postback_rate_limited_minute_brin: {
    table: 'postback_rate_limited',
    why: 'retention deletes 429 counts older than the attempt log keeps, by minute (BRIN)',
    usedBy: [at('src/db/partitions.ts', 'trimmedTables')],
  },
  postback_rate_limited_pkey: {
    table: 'postback_rate_limited',
    why: '429 counts per advertiser and minute (ON CONFLICT upsert); root causes read them',
    usedBy: [at('src/postback/attempt-log.ts', 'flushRateLimited'), at('src/reconcile/root-causes.ts', 'recordRootCauses')],
  },

  // Catalog ---------------------------------------------------------------------------------------------
  advertisers_pkey: {
    table: 'advertisers',
    why: 'an advertiser by ID: admin changes, report filters, the target of every advertiser_id',
    usedBy: [at('src/audit/admin-snapshots.ts', 'lockForChange'), at('src/reports/route.ts', 'advertisers')],
  },
  offers_pkey: {
    table: 'offers',
    why: 'an offer by ID: admin changes; the target of every offer_id',
    usedBy: [at('src/audit/admin-snapshots.ts', 'lockForChange'), at('src/admin/offers-route.ts', 'registerOfferRoutes')],
  },
  publishers_pkey: {
    table: 'publishers',
    why: 'a publisher by ID: claims and the outbox join it, endpoint enable locks it; the target of every publisher_id',
    usedBy: [at('src/delivery/endpoint.ts', 'enablePublisher'), at('src/delivery/store.ts', 'claimDue')],
  },
  advertisers_seq_key: {
    table: 'advertisers',
    why: 'the advertiser number a click ID carries names one advertiser (unique)',
    usedBy: [at('src/click/click-id.ts', 'seq')],
  },
  offers_seq_key: {
    table: 'offers',
    why: 'the offer number a click ID carries names one offer (unique)',
    usedBy: [at('src/click/click-id.ts', 'seq')],
  },
  publishers_seq_key: {
    table: 'publishers',
    why: 'the publisher number a click ID carries names one publisher (unique)',
    usedBy: [at('src/click/click-id.ts', 'seq')],
  },
  advertiser_secrets_pkey: {
    table: 'advertiser_secrets',
    why: 'a secret by ID: revoke and its audit snapshot',
    usedBy: [at('src/audit/admin-snapshots.ts', 'secretSnapshot'), at('src/admin/advertisers-route.ts', 'registerAdvertiserRoutes')],
  },
  api_tokens_pkey: {
    table: 'api_tokens',
    why: 'a token by ID: revoke; the bootstrap token is inserted once (ON CONFLICT (id))',
    usedBy: [at('src/auth/token-admin.ts', 'revokeToken'), at('src/auth/tokens.ts', 'ensureBootstrapToken')],
  },
  api_tokens_token_hash_key: {
    table: 'api_tokens',
    why: 'every authenticated request looks its token up by hash; one token per hash',
    usedBy: [at('src/auth/tokens.ts', 'TokenVerifier')],
  },
  catalog_version_pkey: {
    table: 'catalog_version',
    why: 'the single row every catalog change bumps',
    usedBy: [at('src/catalog/catalog.ts', 'bumpCatalogVersion')],
  },
  click_keys_pkey: {
    table: 'click_keys',
    why: 'one key per key number a click ID names; the first key is inserted once (ON CONFLICT (kid))',
    usedBy: [at('src/engine.ts', 'ensureClickKey')],
  },
  fx_rate_days_pkey: {
    table: 'fx_rate_days',
    why: "a day's rate set by day; the list by day",
    usedBy: [at('src/fx/fx-store.ts', 'getRates'), at('src/fx/fx-store.ts', 'putRates'), at('src/fx/fx-store.ts', 'listRates')],
  },
  fx_rates_pkey: {
    table: 'fx_rates',
    why: "a day's rates, one per currency",
    usedBy: [at('src/fx/fx-store.ts', 'readSets'), at('src/fx/fx-store.ts', 'putRates')],
  },

  // Operations: audit, reconciliation, migrations --------------------------------------------------------
  admin_audit_at: {
    table: 'admin_audit',
    why: 'the admin audit newest first, keyset on (at, id)',
    usedBy: [at('src/audit/audit-query.ts', 'listAudit')],
  },
  admin_audit_entity: {
    table: 'admin_audit',
    why: 'the audit filtered by kind of entity',
    usedBy: [at('src/audit/audit-query.ts', 'listAudit')],
  },
  admin_audit_entity_id: {
    table: 'admin_audit',
    why: "one object's history",
    usedBy: [at('src/audit/audit-query.ts', 'listAudit')],
  },
  admin_audit_pkey: {
    table: 'admin_audit',
    why: "the append-only audit's row identity; its DDL guard refuses any ALTER of the table (a few rows per admin action)",
    usedBy: [at('sql/000060_admin_audit.sql', 'admin_audit_append_only')],
  },
  reconciliation_runs_pkey: {
    table: 'reconciliation_runs',
    why: 'a run by ID; rows and root causes reference it',
    usedBy: [at('src/reconcile/runs-store.ts', 'loadRun')],
  },
  reconciliation_runs_started: {
    table: 'reconciliation_runs',
    why: 'runs newest first; the newest successful run for the alert',
    usedBy: [at('src/reconcile/runs-store.ts', 'listRuns'), at('src/reconcile/runs-store.ts', 'lastSuccessfulRunAt')],
  },
  reconciliation_rows_pkey: {
    table: 'reconciliation_rows',
    why: "a run's counts per offer, publisher and hour, added to by each step (ON CONFLICT)",
    usedBy: [at('src/reconcile/window.ts', 'compareWindow'), at('src/reconcile/refire.ts', 'refireDeliveries')],
  },
  reconciliation_root_causes_pkey: {
    table: 'reconciliation_root_causes',
    why: "a run's root causes in key order, paged after a key",
    usedBy: [at('src/reconcile/root-causes.ts', 'listRootCauses')],
  },
  reconciliation_root_causes_cause: {
    table: 'reconciliation_root_causes',
    why: "a run's root causes of one cause; counts per cause",
    usedBy: [at('src/reconcile/root-causes.ts', 'listRootCauses'), at('src/reconcile/runs-store.ts', 'finishRun')],
  },
  reconciliation_root_causes_pixel: {
    table: 'reconciliation_root_causes',
    why: "recovery reads a run's root causes one time slice at a time",
    usedBy: [at('src/reconcile/recovery.ts', 'recoverPixelOnly')],
  },
  schema_migrations_pkey: {
    table: 'schema_migrations',
    why: 'each migration applied once',
    usedBy: [at('src/db/migrate.ts', 'migrate')],
  },
};
