-- Only whitelisted order columns and directions reach the ORDER BY: anything else, including an
-- injection attempt, is WF010 and runs no SQL of the caller's. Bad status filters, limits and
-- offsets are WF010 too. Orders and pages are consistent.
begin;
\ir ../_helpers.psql
select plan(14);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.register_flow('{"slug": "one", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow(case when i % 2 = 0 then 'chain3' else 'one' end, now => sw_test.at(i))
from generate_series(1, 6) as i \g /dev/null

select throws_ok($$select * from workflow.list_workflow_runs(order_by => 'started_at; drop table workflow.runs; --')$$,
    'WF010', null, 'an injection attempt in the order column is WF010');
select has_table('workflow', 'runs', 'and the table is still there');
select throws_ok($$select * from workflow.list_workflow_runs(order_by => 'run_id')$$, 'WF010', null,
    'a real column that is not whitelisted is WF010');
select throws_ok($$select * from workflow.list_workflow_runs(order_dir => 'desc, (select pg_sleep(1))')$$, 'WF010', null,
    'an injection attempt in the direction is WF010');
select throws_ok($$select * from workflow.list_workflow_runs('running; --')$$, 'WF010', null, 'an unknown status filter is WF010');
select throws_ok($$select * from workflow.list_workflow_runs(limit_rows => 0)$$, 'WF010', null, 'limit 0 is WF010');
select throws_ok($$select * from workflow.list_workflow_runs(limit_rows => 1001)$$, 'WF010', null, 'limit over 1000 is WF010');
select throws_ok($$select * from workflow.list_workflow_runs(offset_rows => -1)$$, 'WF010', null, 'a negative offset is WF010');

select is((select array_agg(extract(epoch from started_at - sw_test.t0())::int) from workflow.list_workflow_runs()),
    array[6, 5, 4, 3, 2, 1], 'inserted_at desc by default');
select is((select array_agg(extract(epoch from started_at - sw_test.t0())::int) from workflow.list_workflow_runs(order_by => 'started_at', order_dir => 'ASC')),
    array[1, 2, 3, 4, 5, 6], 'started_at asc');
select is((select array_agg(flow_slug) from workflow.list_workflow_runs(order_by => 'flow_slug', order_dir => 'asc')),
    array['chain3', 'chain3', 'chain3', 'one', 'one', 'one'], 'flow_slug asc');
select is(
    (select array_agg(run_id) from (
        select run_id from workflow.list_workflow_runs(limit_rows => 4, offset_rows => 0)
        union all
        select run_id from workflow.list_workflow_runs(limit_rows => 4, offset_rows => 4)) as pages),
    (select array_agg(run_id) from workflow.list_workflow_runs()),
    'pages follow each other without gaps or repeats');
select is((select count(*) from workflow.list_workflow_runs(limit_rows => 2)), 2::bigint, 'limit bounds a page');
select is((select count(*) from workflow.list_workflow_runs(offset_rows => 100)), 0::bigint, 'an offset past the end is an empty page');

select * from finish();
rollback;
