-- Review audit trail, hardened (issue 4). 000001 makes `reviews` refuse UPDATE, DELETE and TRUNCATE by
-- trigger. Two ways around a plain trigger are closed here:
--
-- 1. `set session_replication_role = replica` skips ordinary triggers (it exists for logical
--    replication). ENABLE ALWAYS makes both triggers fire in every replication role.
-- 2. DDL: `alter table reviews disable trigger ...`, `drop trigger`, `drop table`, or replacing the
--    trigger or its function with a no-op. Event triggers refuse every ALTER or DROP of the table, any
--    CREATE/ALTER of a trigger on it, and any change to the trigger function. A later migration that
--    must alter `reviews` disables them inside its own transaction
--    (`alter event trigger reviews_audit_guard_ddl disable; ...; alter event trigger ... enable always`).
--
-- Creating an event trigger needs a superuser. When the migrating role is not one, the guard is
-- skipped (with a notice) and the DDL path stays open to the table's owner: then run this file's
-- guard part as a superuser once. Against a superuser nothing inside the database is a wall (it can
-- drop the event trigger first); the guarantee is complete for an engine role that is neither a
-- superuser nor the owner of the guard.

alter table reviews enable always trigger reviews_append_only;
alter table reviews enable always trigger reviews_no_truncate;

create function guard_review_audit() returns event_trigger language plpgsql as $$
declare
  -- Found through its triggers, which follow the table through a rename.
  audit_table oid := coalesce((select tgrelid from pg_trigger where tgname in ('reviews_append_only', 'reviews_no_truncate') limit 1),
                              to_regclass('reviews'));
  audit_function oid := to_regprocedure('refuse_audit_change()');
begin
  if tg_event = 'ddl_command_end' then
    if exists (select 1 from pg_event_trigger_ddl_commands() c
               where (c.classid = 'pg_class'::regclass and c.objid = audit_table)
                  or (c.classid = 'pg_trigger'::regclass and c.objid in (select oid from pg_trigger where tgrelid = audit_table))
                  or (c.classid = 'pg_proc'::regclass and c.objid = audit_function)) then
      raise exception 'the review audit trail is append-only (% on it refused)', tg_tag using errcode = 'insufficient_privilege';
    end if;
  elsif exists (select 1 from pg_event_trigger_dropped_objects() d
                where (d.object_type = 'table' and d.object_name = 'reviews')
                   or (d.object_type = 'trigger' and split_part(d.object_identity, ' on ', 1) in ('reviews_append_only', 'reviews_no_truncate'))
                   or (d.object_type = 'function' and d.object_name = 'refuse_audit_change')) then
    raise exception 'the review audit trail is append-only (% on it refused)', tg_tag using errcode = 'insufficient_privilege';
  end if;
end
$$;

do $$
begin
  if current_setting('is_superuser') = 'on' then
    create event trigger reviews_audit_guard_ddl on ddl_command_end
      when tag in ('ALTER TABLE', 'CREATE FUNCTION', 'ALTER FUNCTION', 'CREATE TRIGGER', 'ALTER TRIGGER')
      execute function guard_review_audit();
    create event trigger reviews_audit_guard_drop on sql_drop execute function guard_review_audit();
    alter event trigger reviews_audit_guard_ddl enable always;
    alter event trigger reviews_audit_guard_drop enable always;
  else
    raise notice 'not a superuser: the review audit DDL guard was not installed (see 000021_review_audit.sql)';
  end if;
end
$$;
