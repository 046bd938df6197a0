-- Outbound delivery (issue 5). A replay is an operator's extra try outside the schedule; the attempt
-- log says which tries were replays.
alter table delivery_attempts add column replay boolean not null default false;

-- The worker walks publishers with open deliveries (a skip scan) and takes each one's oldest due rows,
-- so one publisher's backlog never has to be scanned through to reach another's. The single-column
-- due index goes: given the choice, the planner walked it through every publisher's rows instead.
create index deliveries_publisher_open on deliveries (publisher_id, next_attempt_at) where state in ('pending', 'failed');
drop index deliveries_due;
-- The sweep that expires open deliveries at their deadline.
create index deliveries_open_deadline on deliveries (deadline_at) where state in ('pending', 'failed');

-- The list API pages deliveries newest first, optionally by state.
create index deliveries_created on deliveries (created_at desc, id desc);
create index deliveries_state_created on deliveries (state, created_at desc, id desc);

-- Claims only set the lease (no indexed column), so with free space on the page PostgreSQL updates the
-- row in place (HOT) instead of adding an entry to every index of this busy table.
alter table deliveries set (fillfactor = 90);
