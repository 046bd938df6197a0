-- GET /v1/postback-attempts lists newest first with a (received_at, id) keyset. The advertiser filter
-- is served by postback_attempts_advertiser_time (000001). The unfiltered listing and a time range need
-- an index on time itself, or every page would sort the whole log; the `code` filter ("every
-- bad_signature this week") needs one led by the code, since one code can be a tiny share of a large
-- log. Both end in id so the keyset comparison is an index condition. Two more btrees on an
-- insert-only, batch-written table: the write cost is one index entry each per refused postback.
create index postback_attempts_time on postback_attempts (received_at, id);
create index postback_attempts_code_time on postback_attempts (error_code, received_at, id);
