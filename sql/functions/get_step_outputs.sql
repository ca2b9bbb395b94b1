-- get_step_outputs: every completed step's output of a run, as one JSON object by step slug.
--
-- Called by psql users and clients (get_step_outputs; the testing helper run_to_completion
-- returns it beside the status). A step's output is what its dependents see: the task's output
-- for a single step, the array of task outputs in index order for a map step. Steps that did
-- not complete (failed, pending, cancelled) are left out; a run with none gives {}.
-- get_run_status carries only the run's output (its leaf steps'), so this is the read for the
-- inner steps.
-- Locks nothing; read-only, safe to repeat. Errors: WF011 unknown run.
create or replace function workflow.get_step_outputs(run_id uuid)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
    v_result jsonb;
begin
    -- GUARD: an unknown run is an error, not an empty object.
    if not exists (select 1 from workflow.runs r where r.run_id = get_step_outputs.run_id) then
        raise exception 'run % not found', get_step_outputs.run_id
            using errcode = 'WF011', hint = 'List runs with workflow.list_workflow_runs().';
    end if;
    select coalesce(jsonb_object_agg(ss.step_slug, ss.output), '{}'::jsonb) into v_result
    from workflow.step_states ss
    where ss.run_id = get_step_outputs.run_id and ss.status = 'completed';
    return v_result;
end;
$$;
