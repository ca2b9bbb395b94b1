-- 0015_lease_run_paused: extend_leases also says whether each task's run is paused.
--
-- A step context's `cancelled` becomes true when the run is paused as well as when it ends, and
-- the worker learns it at lease renewal: extend_leases grows an output column, run_paused. A
-- function's result columns cannot change under create or replace, so the old form is dropped
-- here and the function file creates the new one right after the migrations (as 0009 and 0010
-- did for start_flow). extend_lease (boolean) is unchanged.

drop function if exists workflow.extend_leases(bigint[], integer[], integer, timestamptz);
