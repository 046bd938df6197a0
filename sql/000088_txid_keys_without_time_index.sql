-- Retention removes a day's txid keys through that day's conversions partition, just before dropping
-- it (src/db/partitions.ts deleteCompanionsOf walks the partition's primary key), so the keys need no
-- index on their time: one index entry less for every conversion written.
drop index conversion_txids_created;
