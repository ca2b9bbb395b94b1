-- list_workflow_runs filters by status (started = running or paused, in_progress as a synonym,
-- completed, failed = failed or cancelled, paused, cancelled) and by flow, and reports each run's
-- finer state. Newest first by default.
begin;
\ir ../_helpers.psql
select plan(10);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.register_flow('{"slug": "one", "steps": [{"slug": "a", "execution": "distributed", "max_attempts": 1}]}') \g /dev/null
select workflow.start_flow('chain3', now => sw_test.at(1)) as running \gset
select workflow.start_flow('chain3', now => sw_test.at(2)) as paused \gset
select workflow.start_flow('one', now => sw_test.at(3)) as completed \gset
select workflow.start_flow('one', now => sw_test.at(4)) as failed \gset
select workflow.start_flow('chain3', now => sw_test.at(5)) as cancelled \gset
select workflow.pause_workflow_run(:'paused') \g /dev/null
select workflow.cancel_workflow_run(:'cancelled') \g /dev/null
select sw_test.complete(sw_test.task_id(:'completed', 'a'), '{}', sw_test.at(6))
from workflow.claim_tasks('default', 100, now => sw_test.at(6)) limit 1 \g /dev/null
select workflow.fail_task(sw_test.task_id(:'failed', 'a'), 1, 'broke', sw_test.at(7)) \g /dev/null

create temporary table expect (label text, run_id uuid) on commit drop;
insert into expect values ('running', :'running'), ('paused', :'paused'), ('completed', :'completed'),
    ('failed', :'failed'), ('cancelled', :'cancelled');
create function pg_temp.labels(query text) returns text[] language plpgsql as $$
declare v text[];
begin
    execute format('select array_agg(e.label order by x.ordinality) from %s with ordinality as x join expect e using (run_id)', query)
    into v;
    return v;
end $$;

select is(pg_temp.labels('workflow.list_workflow_runs()'),
    array['cancelled', 'failed', 'completed', 'paused', 'running'], 'all runs, newest first');
select is(pg_temp.labels($$workflow.list_workflow_runs('started')$$), array['paused', 'running'], 'started: running or paused');
select is(pg_temp.labels($$workflow.list_workflow_runs('in_progress')$$), array['paused', 'running'], 'in_progress is the same');
select is(pg_temp.labels($$workflow.list_workflow_runs('completed')$$), array['completed'], 'completed');
select is(pg_temp.labels($$workflow.list_workflow_runs('failed')$$), array['cancelled', 'failed'], 'failed includes cancelled runs');
select is(pg_temp.labels($$workflow.list_workflow_runs('paused')$$), array['paused'], 'paused');
select is(pg_temp.labels($$workflow.list_workflow_runs('CANCELLED')$$), array['cancelled'], 'cancelled (any case)');
select is(pg_temp.labels($$workflow.list_workflow_runs(workflow_slug => 'one')$$), array['failed', 'completed'], 'by flow');
select is(pg_temp.labels($$workflow.list_workflow_runs('started', 'chain3')$$), array['paused', 'running'], 'status and flow together');
select is((select array_agg(state order by started_at) from workflow.list_workflow_runs()),
    array['running', 'paused', 'completed', 'failed', 'cancelled'], 'each run''s state');

select * from finish();
rollback;
