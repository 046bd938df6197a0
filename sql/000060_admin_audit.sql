-- The audit of admin changes (CONTRACT §10): one row per admin API write, inserted in the write's own
-- transaction. Append-only exactly as the review trail (000001, 000021): UPDATE, DELETE and TRUNCATE
-- refused by triggers that fire in every replication role, and, when the migrating role is a
-- superuser, event triggers that refuse DDL against the table, its triggers and their function.
-- Without a superuser the DDL guard is skipped with a notice; run its part of this file as one.

create table admin_audit (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  actor_token_id text not null,
  actor_name text not null,
  action text not null,
  entity text not null check (entity in ('advertiser', 'advertiser_secret', 'publisher', 'offer', 'token', 'fx_rates')),
  entity_id text not null,
  before jsonb,
  after jsonb
);
-- Newest first over everything, and over a time range.
create index admin_audit_at on admin_audit (at, id);
-- One object's history; an entity id is unique across kinds in practice (prefixed ids, dates for fx_rates).
create index admin_audit_entity_id on admin_audit (entity_id, at, id);
create index admin_audit_entity on admin_audit (entity, at, id);

create function refuse_admin_audit_change() returns trigger language plpgsql as $$
begin
  raise exception 'the admin audit is append-only (% refused)', tg_op using errcode = 'insufficient_privilege';
end
$$;
create trigger admin_audit_append_only before update or delete on admin_audit
  for each row execute function refuse_admin_audit_change();
create trigger admin_audit_no_truncate before truncate on admin_audit
  for each statement execute function refuse_admin_audit_change();
alter table admin_audit enable always trigger admin_audit_append_only;
alter table admin_audit enable always trigger admin_audit_no_truncate;

create function guard_admin_audit() returns event_trigger language plpgsql as $$
declare
  audit_table oid := coalesce((select tgrelid from pg_trigger where tgname in ('admin_audit_append_only', 'admin_audit_no_truncate') limit 1),
                              to_regclass('admin_audit'));
  audit_function oid := to_regprocedure('refuse_admin_audit_change()');
begin
  if tg_event = 'ddl_command_end' then
    if exists (select 1 from pg_event_trigger_ddl_commands() c
               where (c.classid = 'pg_class'::regclass and c.objid = audit_table)
                  or (c.classid = 'pg_trigger'::regclass and c.objid in (select oid from pg_trigger where tgrelid = audit_table))
                  or (c.classid = 'pg_proc'::regclass and c.objid = audit_function)) then
      raise exception 'the admin audit is append-only (% on it refused)', tg_tag using errcode = 'insufficient_privilege';
    end if;
  elsif exists (select 1 from pg_event_trigger_dropped_objects() d
                where (d.object_type = 'table' and d.object_name = 'admin_audit')
                   or (d.object_type = 'trigger' and split_part(d.object_identity, ' on ', 1) in ('admin_audit_append_only', 'admin_audit_no_truncate'))
                   or (d.object_type = 'function' and d.object_name = 'refuse_admin_audit_change')) then
    raise exception 'the admin audit is append-only (% on it refused)', tg_tag using errcode = 'insufficient_privilege';
  end if;
end
$$;

do $$
begin
  if current_setting('is_superuser') = 'on' then
    create event trigger admin_audit_guard_ddl on ddl_command_end
      when tag in ('ALTER TABLE', 'CREATE FUNCTION', 'ALTER FUNCTION', 'CREATE TRIGGER', 'ALTER TRIGGER')
      execute function guard_admin_audit();
    create event trigger admin_audit_guard_drop on sql_drop execute function guard_admin_audit();
    alter event trigger admin_audit_guard_ddl enable always;
    alter event trigger admin_audit_guard_drop enable always;
  else
    raise notice 'not a superuser: the admin audit DDL guard was not installed (see 000060_admin_audit.sql)';
  end if;
end
$$;
