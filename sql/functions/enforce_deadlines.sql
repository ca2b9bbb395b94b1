-- enforce_deadlines: cancel runs whose deadline has passed, with reason "deadline exceeded".
--
-- Run deadlines (start_flow's timeout_seconds, or the flow's default) are enforced in the
-- database rather than only by a waiting client: workers call it (through maintain) on every
-- polling cycle, so no pg_cron or separate reaper is needed; psql users may call it too.
-- Finds at most max_runs overdue runs through the partial index on deadline_at, locks them
-- FOR UPDATE SKIP LOCKED (a run being handled by another call is left to it) and cancels them
-- as cancel_workflow_run does. Returns the number of runs cancelled.
-- Safe to call concurrently and repeatedly.
create or replace function workflow.enforce_deadlines(
    now timestamptz default clock_timestamp(),
    max_runs integer default 100
)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_runs uuid[];
begin
    select array_agg(x.run_id) into v_runs from (
        select r.run_id from workflow.runs r
        where r.status = 'started' and r.deadline_at is not null and r.deadline_at <= enforce_deadlines.now
        order by r.deadline_at
        limit greatest(enforce_deadlines.max_runs, 1)
        for update skip locked
    ) as x;
    if v_runs is null then
        return 0;
    end if;
    perform workflow._cancel_runs(v_runs, 'deadline exceeded', enforce_deadlines.now);
    return cardinality(v_runs);
end;
$$;
