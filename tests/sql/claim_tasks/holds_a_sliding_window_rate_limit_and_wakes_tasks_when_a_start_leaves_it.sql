-- A rate limit of 2 starts per 10 s on one step, with the claim's clock injected: at most 2
-- starts in any 10 s window, however the starts fall; a task that cannot start gets the
-- visibility of the moment the oldest start leaves the window (never a poll before); a change of
-- the limit is seen by the next claim.
begin;
\ir ../_helpers.psql
select plan(9);

select sw_test.setup_flow('root_map') \g /dev/null
select workflow.start_flow('root_map', '[0, 1, 2, 3, 4, 5]') as run_id \gset
select workflow.set_rate_limit('step', 'root_map.each', 2, 10) \g /dev/null

select results_eq($$select task_index from workflow.claim_tasks('default', 1, now => sw_test.t0())$$,
    $$values (0)$$, 'a first start at t0');
select results_eq($$select task_index from workflow.claim_tasks('default', 1, now => sw_test.at(6))$$,
    $$values (1)$$, 'a second at t0 + 6 s');
select is((select count(*) from workflow.claim_tasks('default', 10, now => sw_test.at(8))), 0::bigint,
    'at t0 + 8 s the window (t0 - 2 s, t0 + 8 s] holds 2 starts: nothing starts');
select is(sw_test.messages('default', sw_test.at(9.999)), 0::bigint, 'and the waiting tasks are invisible until t0 + 10 s');
select results_eq(
    $$select vt from pgmq.q_default where read_ct = 0 order by msg_id$$,
    $$values (sw_test.at(10)), (sw_test.at(16)), (sw_test.at(18)), (sw_test.at(18))$$,
    'the first waiting task wakes when the t0 start leaves the window, the next when the t0 + 6 s one does, the others a window after now');
select results_eq($$select task_index from workflow.claim_tasks('default', 10, now => sw_test.at(10))$$,
    $$values (2)$$, 'at t0 + 10 s one place is free (the t0 + 6 s start is still in the window)');
select is((select in_use from workflow.list_limits(now => sw_test.at(10))), 2::bigint,
    'list_limits counts the starts inside the window');

select workflow.set_rate_limit('step', 'root_map.each', 5, 10) \g /dev/null
select results_eq($$select task_index from workflow.claim_tasks('default', 10, now => sw_test.at(18))$$,
    $$values (3), (4), (5)$$, 'raised to 5 per 10 s, the next claim starts the rest');
select is((select in_use from workflow.list_limits(now => sw_test.at(18))), 4::bigint,
    'the window holds the t0 + 10 s start and the three at t0 + 18 s');

select * from finish();
rollback;
