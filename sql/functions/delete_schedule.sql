-- delete_schedule: remove a schedule; the runs it started stay (they keep its name).
--
-- Called by psql users, clients and the CLI. Locks: the schedules row (waits for a
-- fire_due_schedules holding it). Returns true when it deleted one, false when there was none
-- (deleting twice is not an error). Errors: none. Safe to repeat.
create or replace function workflow.delete_schedule(schedule_name text)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
    delete from workflow.schedules s where s.schedule_name = delete_schedule.schedule_name;
    return found;
end;
$$;
