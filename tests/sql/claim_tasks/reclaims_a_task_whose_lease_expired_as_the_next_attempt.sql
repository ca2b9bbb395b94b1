-- Invariant 3 of docs/architecture.md: a claimed task whose lease expires (its worker crashed) is claimable again as the
-- next attempt, with a new lease; the first worker's token is then stale, so its late
-- completion is ignored and the second worker's is accepted.
begin;
\ir ../_helpers.psql
select plan(8);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3') as run_id \gset
select task_id as a, attempt as first_attempt from workflow.claim_tasks('default', worker_id => 'w1', now => sw_test.t0()) \gset

select is(:first_attempt, 1, 'the first claim is attempt 1');
select is((select count(*) from workflow.claim_tasks('default', worker_id => 'w2', now => sw_test.at(59.9))), 0::bigint,
    'not claimable while the lease runs');
select results_eq(
    $$select task_id, attempt, lease_expires_at from workflow.claim_tasks('default', worker_id => 'w2', now => sw_test.at(60))$$,
    format('values (%s::bigint, 2, %L::timestamptz)', :a, sw_test.at(120)),
    'claimable again when the lease ends: same task, attempt 2, a new lease');
select results_eq(
    format('select status, attempts_count, worker_id from workflow.tasks where task_id = %s', :a),
    $$values ('started', 2, 'w2')$$, 'the task is started by the second worker');
select is(workflow.complete_task(:a, 1, '"late"', sw_test.at(61)), false, 'the first worker''s late completion is ignored');
select is((select status from workflow.tasks where task_id = :a), 'started', 'and changes nothing');
select is(workflow.complete_task(:a, 2, '"ok"', sw_test.at(62)), true, 'the second worker''s completion is accepted');
select is((select output from workflow.step_states where run_id = :'run_id' and step_slug = 'a'), '"ok"'::jsonb,
    'with the second worker''s output');

select * from finish();
rollback;
