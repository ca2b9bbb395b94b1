-- trigger_schedule: start a run of a schedule now, outside its ticks ("run now").
--
-- Called by psql users, clients and the CLI (schedules trigger). The run has the schedule's
-- flow and input, records the schedule in runs.schedule_name and no tick (scheduled_for null);
-- the schedule's next tick and last_fired_at are unchanged. Works on a disabled schedule too.
-- Locks: the schedules row FOR SHARE (a concurrent update or delete waits), then as
-- start_flows. Errors: WF029 unknown schedule, and those of start_flows. Returns the run id.
-- A repeated call starts another run.
create or replace function workflow.trigger_schedule(schedule_name text, now timestamptz default clock_timestamp())
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_s workflow.schedules;
    v_run uuid;
begin
    select * into v_s from workflow.schedules s where s.schedule_name = trigger_schedule.schedule_name for share;
    if not found then
        raise exception 'schedule % does not exist', coalesce(trigger_schedule.schedule_name, 'null')
            using errcode = 'WF029';
    end if;
    v_run := workflow.start_flow(v_s.flow_slug, v_s.input, now => trigger_schedule.now);
    update workflow.runs r set schedule_name = v_s.schedule_name where r.run_id = v_run;
    return v_run;
end;
$$;
