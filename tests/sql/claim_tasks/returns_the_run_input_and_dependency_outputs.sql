-- A claim returns each task with its claim token (attempt 1 on the first claim), its input
-- {"run": <run input>, "<dependency>": <its output>, ...}, no item for a single step, and the
-- lease deadline (claim time + the step's timeout). The task becomes started by the worker and
-- its message invisible until the lease ends.
begin;
\ir ../_helpers.psql
select plan(9);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3', '{"order": 7}') as run_id \gset

select results_eq(
    $$select attempt, flow_slug, step_slug, task_index, input, item, lease_expires_at
      from workflow.claim_tasks('default', worker_id => 'w1', now => sw_test.t0())$$,
    format($$values (1, 'chain3', 'a', 0, '{"run": {"order": 7}}'::jsonb, null::jsonb, %L::timestamptz)$$, sw_test.at(60)),
    'the root task: attempt 1, the run input under "run", lease = now + 60 s'
);
select sw_test.task_id(:'run_id', 'a') as a \gset
select results_eq(
    format('select status, attempts_count, worker_id, started_at from workflow.tasks where task_id = %s', :a),
    format($$values ('started', 1, 'w1', %L::timestamptz)$$, sw_test.t0()),
    'the task is started by the claiming worker'
);
select results_eq(
    format('select vt, read_ct from pgmq.q_default where msg_id = (select message_id from workflow.tasks where task_id = %s)', :a),
    format($$values (%L::timestamptz, 1)$$, sw_test.at(60)),
    'its message is invisible until the lease ends'
);
select is((select count(*) from workflow.claim_tasks('default', now => sw_test.at(59))), 0::bigint,
    'a leased task is not claimed again before its lease ends');

select ok(sw_test.complete(:a, '{"x": 1}'), 'a completes');
select results_eq(
    $$select step_slug, input, attempt from workflow.claim_tasks('default', now => sw_test.at(1))$$,
    $$values ('b', '{"run": {"order": 7}, "a": {"x": 1}}'::jsonb, 1)$$,
    'the next step gets the run input and its dependency''s output'
);
select ok(sw_test.complete(sw_test.task_id(:'run_id', 'b'), '"B"'), 'b completes');
select is(
    (select input from workflow.claim_tasks('default', now => sw_test.at(2))),
    '{"run": {"order": 7}, "b": "B"}'::jsonb,
    'only direct dependencies are in the input'
);
select is((select count(*) from workflow.claim_tasks('default', now => sw_test.at(3))), 0::bigint, 'nothing else to claim');

select * from finish();
rollback;
