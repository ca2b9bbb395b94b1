-- start_flow creates one step_state per step counting its dependencies, starts only the root
-- steps (one task and one message each), and sets the run's remaining_steps.
begin;
\ir ../_helpers.psql
select plan(9);

select sw_test.setup_flow('wide') as flow \gset
select workflow.start_flow('wide', '{"x": 1}') as run_id \gset

select is((select status from workflow.runs where run_id = :'run_id'), 'started', 'the run is started');
select is((select remaining_steps from workflow.runs where run_id = :'run_id'), 4, 'remaining_steps counts every step');
select is((select input from workflow.runs where run_id = :'run_id'), '{"x": 1}'::jsonb, 'the input is stored');
select results_eq(
    format('select step_slug, status, remaining_deps from workflow.step_states where run_id = %L order by step_slug', :'run_id'),
    $$values ('boom', 'started', 0), ('never', 'created', 3), ('ok1', 'started', 0), ('ok2', 'started', 0)$$,
    'one step_state per step, roots started, the join waiting on its 3 dependencies'
);
select results_eq(
    format('select step_slug, task_index, queue_name, status, attempts_count from workflow.tasks where run_id = %L order by step_slug', :'run_id'),
    $$values ('boom', 0, 'default', 'queued', 0), ('ok1', 0, 'default', 'queued', 0), ('ok2', 0, 'other', 'queued', 0)$$,
    'one queued task per root step, on its step''s queue'
);
select is(sw_test.messages('default'), 2::bigint, 'two messages on queue default');
select is(sw_test.messages('other'), 1::bigint, 'one message on queue other');
select is(
    (select count(*) from workflow.tasks t join pgmq.q_default q on q.msg_id = t.message_id
     where t.run_id = :'run_id' and (q.message ->> 'task_id')::bigint = t.task_id),
    2::bigint, 'each task records the id of the message that carries it'
);
select is((select count(*) from workflow.tasks where run_id = :'run_id' and step_slug = 'never'), 0::bigint,
    'no task for a step whose dependencies are not done');

select * from finish();
rollback;
