-- On an ordered queue (aging 60 s, spacing 1 s) a claim takes higher priority first; a task of
-- lower priority that waited longer than (difference of priorities) * aging is taken first
-- (aging); a step's priority adds to its run's. Without set_queue_order the same runs are
-- claimed oldest first.
begin;
\ir ../_helpers.psql
select plan(6);

select sw_test.setup_flow('retry') \g /dev/null
-- unordered: oldest first whatever the priority
select workflow.start_flow('retry', '{"n": 1}', priority => 0) as u1 \gset
select workflow.start_flow('retry', '{"n": 2}', priority => 5) as u2 \gset
select results_eq($$select run_id from workflow.claim_tasks('default', 1, now => sw_test.t0())$$,
    format($$values (%L::uuid)$$, :'u1'), 'an unordered queue ignores priorities');
select workflow.cancel_workflow_run(:'u1') \g /dev/null
select workflow.cancel_workflow_run(:'u2') \g /dev/null

select workflow.set_queue_order('default', aging_seconds => 60, spacing_seconds => 1) \g /dev/null
select workflow.start_flow('retry', '{"n": 3}', priority => 0, now => sw_test.t0()) as low \gset
select workflow.start_flow('retry', '{"n": 4}', priority => 2, now => sw_test.at(10)) as high \gset
select results_eq($$select run_id from workflow.claim_tasks('default', 1, now => sw_test.at(20))$$,
    format($$values (%L::uuid)$$, :'high'), 'a priority 2 task sent 10 s later goes first');
select sw_test.complete(sw_test.task_id(:'high', 'only'), '{}') \g /dev/null

-- aging: a priority 0 task sent 130 s before a priority 2 one (more than 2 * 60 s) goes first
select workflow.start_flow('retry', '{"n": 5}', priority => 2, now => sw_test.at(130)) as high2 \gset
select results_eq($$select run_id from workflow.claim_tasks('default', 1, now => sw_test.at(140))$$,
    format($$values (%L::uuid)$$, :'low'), 'the low one, waiting 130 s > 2 * 60 s, goes first');
select results_eq($$select run_id from workflow.claim_tasks('default', 1, now => sw_test.at(140))$$,
    format($$values (%L::uuid)$$, :'high2'), 'then the high one');
select sw_test.complete(sw_test.task_id(:'low', 'only'), '{}') \g /dev/null
select sw_test.complete(sw_test.task_id(:'high2', 'only'), '{}') \g /dev/null

-- a step priority adds to the run's
select workflow.set_step_priority('retry', 'only', 3) \g /dev/null
select workflow.start_flow('retry', '{"n": 6}', priority => 0, now => sw_test.at(200)) as stepped \gset
select workflow.set_step_priority('retry', 'only', 0) \g /dev/null
select workflow.start_flow('retry', '{"n": 7}', priority => 2, now => sw_test.at(200)) as runonly \gset
select results_eq($$select run_id from workflow.claim_tasks('default', 2, now => sw_test.at(210)) order by task_id$$,
    format($$values (%L::uuid), (%L::uuid)$$, :'stepped', :'runonly'), 'step priority 3 before run priority 2');
select throws_ok($$select workflow.start_flow('retry', '{}', priority => 1001)$$, 'WF010', null, 'priority out of range');

select * from finish();
rollback;
