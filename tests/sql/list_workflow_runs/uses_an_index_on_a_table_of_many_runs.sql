-- On a table of 20,000 runs the listings a dashboard makes (newest first: all runs, by status, by
-- flow) read through an index, never a sequential scan of every run. The query is dynamic SQL
-- inside the function, so its plan is checked by what it did: this transaction's scan counters
-- for workflow.runs (pg_stat_xact_user_tables), which count the scans the function's plan made.
-- Runs are inserted directly (start_flow for each would take ~10 s): the listing reads only runs.
begin;
\ir ../_helpers.psql
select plan(6);

select workflow.register_flow('{"slug": "f1", "steps": [{"slug": "a"}]}') \g /dev/null
select workflow.register_flow('{"slug": "f2", "steps": [{"slug": "a"}]}') \g /dev/null
insert into workflow.runs (run_id, flow_slug, version_id, status, remaining_steps, input, started_at)
select gen_random_uuid(), case when i % 2 = 0 then 'f1' else 'f2' end,
    (select f.current_version_id from workflow.flows f where f.flow_slug = case when i % 2 = 0 then 'f1' else 'f2' end),
    (array['started', 'completed', 'failed'])[1 + i % 3], 1, '{}', sw_test.t0() - make_interval(secs => i)
from generate_series(1, 20000) as i;
analyze workflow.runs;

create function pg_temp.scans() returns bigint[] language sql volatile as $$
    select array[seq_scan, coalesce(idx_scan, 0)] from pg_stat_xact_user_tables where relid = 'workflow.runs'::regclass
$$;
create function pg_temp.scans_of(query text) returns bigint[] language plpgsql volatile as $$
declare
    v_before bigint[] := pg_temp.scans();
    v_after bigint[];
    v_rows bigint;
begin
    execute format('select count(*) from %s', query) into v_rows;
    if v_rows <> 20 then
        raise exception 'expected a page of 20 runs, got %', v_rows;
    end if;
    v_after := pg_temp.scans();
    return array[v_after[1] - v_before[1], v_after[2] - v_before[2]];
end $$;

select is(pg_temp.scans_of('workflow.list_workflow_runs(limit_rows => 20)'), array[0, 1]::bigint[],
    'all runs, newest first: one index scan, no sequential scan');
select is(pg_temp.scans_of($$workflow.list_workflow_runs('completed', limit_rows => 20)$$), array[0, 1]::bigint[],
    'by status: one index scan, no sequential scan');
select is(pg_temp.scans_of($$workflow.list_workflow_runs(workflow_slug => 'f1', limit_rows => 20)$$), array[0, 1]::bigint[],
    'by flow: one index scan, no sequential scan');

select is(pg_temp.scans_of($$workflow.list_workflow_runs(order_by => 'started_at', order_dir => 'asc', limit_rows => 20)$$),
    array[0, 1]::bigint[], 'oldest first: one index scan, no sequential scan');
select is(
    (select array_agg(run_id) from workflow.list_workflow_runs(limit_rows => 3)),
    (select array_agg(run_id) from (select run_id from workflow.runs order by started_at desc, run_id limit 3) as x),
    'and the newest come first');
select cmp_ok((select count(*) from workflow.runs), '=', 20000::bigint, 'over 20,000 runs');

select * from finish();
rollback;
