-- Retention for the traffic tables that are not partitioned (src/db/partitions.ts trimmedTables):
-- their old rows are deleted in batches by time. BRIN, not B-tree: the rows arrive in time order,
-- so a block range summary finds the old ones, and an insert adds no index entry (000080 dropped
-- message_ids' B-tree on created_at because every signed webhook postback paid for it).
create index message_ids_created_brin on message_ids using brin (created_at);
create index postback_rate_limited_minute_brin on postback_rate_limited using brin (minute);
