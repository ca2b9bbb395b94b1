-- run_state: the state a run is in, from its status and its pause and cancel marks.
--
-- The one home of the run-state rule: 'cancelled' when cancelled_at is set (a cancelled run's
-- status is failed), 'paused' for a started run with paused_at set, 'running' for any other
-- started run, else the status itself ('completed', 'failed'). Called by get_run_status,
-- list_workflow_runs and the dashboard's queries, per row.
-- Why it sets no search_path (the only functions of the schema without one, listed in
-- tests/sql/catalogue): a SET clause stops the planner from inlining a SQL function, and inlined
-- it costs nothing per row and can be matched by an expression index. It reads no table and
-- names its one operator by schema (operator(pg_catalog.=)), so a caller's search_path cannot
-- redirect it.
-- Locks nothing. Raises nothing. Immutable: same arguments, same answer.
create or replace function workflow.run_state(status text, paused_at timestamptz, cancelled_at timestamptz)
returns text
language sql
immutable
parallel safe
as $$
    select case
        when run_state.cancelled_at is not null then 'cancelled'
        when run_state.status operator(pg_catalog.=) 'started' and run_state.paused_at is not null then 'paused'
        when run_state.status operator(pg_catalog.=) 'started' then 'running'
        else run_state.status
    end
$$;
