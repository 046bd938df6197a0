-- Status changes reach publishers (issue 12, CONTRACT §10). A publisher opts in to a re-fire on every
-- later status change, and may name the events it wants (null: all of them).
alter table publishers add column on_status_change boolean not null default false;
alter table publishers add column events text[];
alter table publishers add constraint publishers_events_not_empty check (events is null or cardinality(events) > 0);

-- A conversion may now have several deliveries: the first (sequence 0) and one per status change
-- (1, 2, ...), each its own webhook-id. Each carries the status it announces, fixed when it is
-- queued, so one webhook-id always means one message. Rows queued before this migration have no
-- status and keep announcing the conversion's current one, as they did.
alter table deliveries add column status text check (status in ('approved', 'pending', 'rejected'));
alter table deliveries add column sequence integer not null default 0 check (sequence >= 0);
-- Should a conversion already have two rows (nothing queues that today), they are numbered in the
-- order they were queued rather than refusing the migration.
update deliveries d set sequence = n.seq
from (select id, row_number() over (partition by conversion_id order by created_at, id) - 1 as seq from deliveries) n
where n.id = d.id and n.seq > 0;
-- One delivery per change, whatever the concurrency: a second insert of the same change fails
-- instead of sending the publisher the change twice.
create unique index deliveries_conversion_sequence on deliveries (conversion_id, sequence);
drop index deliveries_conversion;
