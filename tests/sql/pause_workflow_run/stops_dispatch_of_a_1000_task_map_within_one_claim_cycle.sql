-- Pause during a 1,000-task map step: the next claim after the pause hands out nothing of the run
-- and repeated claims do not re-read its messages (they are parked, not polled); the 100 tasks
-- already running finish and their outputs count. Resume makes the rest claimable, and the run
-- completes with every task run exactly once and the map output in index order.
begin;
\ir ../_helpers.psql
select plan(13);

select sw_test.setup_flow('root_map') \g /dev/null
select workflow.start_flow('root_map', (select jsonb_agg(i) from generate_series(1, 1000) as i), now => sw_test.t0()) as run_id \gset
select is((select count(*) from workflow.claim_tasks('default', 100, 'w1', now => sw_test.t0())), 100::bigint,
    '100 map tasks are claimed and running');

select workflow.pause_workflow_run(:'run_id') \g /dev/null
select sum(read_ct) as reads_at_pause from pgmq.q_default \gset
select is((select count(*) from workflow.claim_tasks('default', 1000, 'w2', now => sw_test.at(1))), 0::bigint,
    'the first claim after the pause hands out nothing');
select is((select count(*) from workflow.claim_tasks('default', 1000, 'w2', now => sw_test.at(2))), 0::bigint,
    'nor does the next one');
select is((select sum(read_ct) from pgmq.q_default), :reads_at_pause::bigint,
    'claims did not read the parked messages');
select is((select count(*) from workflow.claim_tasks('default', 1000, 'w2', now => sw_test.at(86400 * 365))), 0::bigint,
    'nothing is handed out while paused, however long it lasts (even once every lease has expired)');

-- The running tasks finish while paused: their completions are accepted and counted.
select is(
    (select count(*) filter (where c.accepted) from workflow.complete_tasks(
        (select array_agg(task_id order by task_id) from workflow.tasks where run_id = :'run_id' and status = 'started'),
        (select array_agg(attempts_count order by task_id) from workflow.tasks where run_id = :'run_id' and status = 'started'),
        (select array_agg(jsonb_build_object('step', 'each', 'item', item) order by task_id) from workflow.tasks where run_id = :'run_id' and status = 'started'),
        sw_test.at(3)) as c),
    100::bigint, 'the 100 running tasks complete during the pause and are accepted');
select is((select remaining_tasks from workflow.step_states where run_id = :'run_id' and step_slug = 'each'), 900,
    'their outputs count: 900 tasks remain');
select is((select count(*) from workflow.claim_tasks('default', 1000, 'w2', now => sw_test.at(4))), 0::bigint,
    'still nothing is claimable while paused');

select workflow.resume_workflow_run(:'run_id') \g /dev/null
select is(sw_test.drain('default', now => sw_test.at(5)), 901, 'after resume the other 900 map tasks and the join run');
select is((select status from workflow.runs where run_id = :'run_id'), 'completed', 'the run completes');
select is((select count(*) from workflow.tasks where run_id = :'run_id' and status = 'completed' and attempts_count = 1),
    1001::bigint, 'every task completed, each on its first and only attempt');
select is((select count(*) from workflow.tasks where run_id = :'run_id' and attempts_count <> 1), 0::bigint,
    'no task was handed out twice');
select is(
    (select jsonb_agg(x -> 'item' order by ord) from jsonb_array_elements(
        (select output from workflow.step_states where run_id = :'run_id' and step_slug = 'each')) with ordinality as e (x, ord)),
    (select jsonb_agg(i) from generate_series(1, 1000) as i),
    'the map output has every element once, in index order');

select * from finish();
rollback;
