-- Clicks are written far more than they are read, and only ever read by primary key (a postback's
-- click lookup, recovery's join). The offer/publisher/time index served no query and cost every
-- click insert an index update; click counts per offer and segment live in the fraud state.
drop index if exists clicks_offer_publisher_time;
