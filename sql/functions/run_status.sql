-- run_status: the status name clients see for a run's stored status.
--
-- The Elixir library's three statuses: the stored 'started' and 'scheduled' (a run waiting for
-- its start_at) are reported as 'in_progress';
-- 'completed' and 'failed' are themselves. Called by get_run_status and the dashboard's
-- queries, per row. Sets no search_path so the planner can inline it (see run_state, whose
-- reasons are the same).
-- Locks nothing. Raises nothing. Immutable.
create or replace function workflow.run_status(status text)
returns text
language sql
immutable
parallel safe
as $$
    select case when run_status.status operator(pg_catalog.=) any (array['started', 'scheduled']) then 'in_progress' else run_status.status end
$$;
