-- Handlers per version ({"flow": {"<shape hash>": ["step"]}}) claim only tasks of that version;
-- the list form ({"flow": ["step"]}) claims the step in any version. A task of a version no
-- live worker serves waits, and get_run_status says so (waiting_for_worker).
begin;
\ir ../_helpers.psql
select plan(6);

select shape_hash as h1 from workflow.register_flow_version('{"slug": "f", "steps": [{"slug": "a", "execution": "distributed"}]}') \gset
select workflow.start_flow('f', '{}') as r1 \gset
select shape_hash as h2 from workflow.register_flow_version('{"slug": "f", "steps": [{"slug": "a", "execution": "distributed", "timeout": 30}]}') \gset
select workflow.start_flow('f', '{}') as r2 \gset
select workflow.register_worker('v2_only', handlers => jsonb_build_object('f', jsonb_build_object(:'h2', jsonb_build_array('a'))),
    now => sw_test.t0()) \g /dev/null

select is((workflow.get_run_status(:'r1', sw_test.t0()) -> 'steps' -> 0 ->> 'waiting_for_worker')::boolean, true,
    'no live worker serves v1: its task waits, visibly');
select is((workflow.get_run_status(:'r2', sw_test.t0()) -> 'steps' -> 0 ->> 'waiting_for_worker')::boolean, false,
    'the v2 task has a worker');
select results_eq($$select run_id from workflow.claim_tasks('default', 10, worker_id => 'v2_only', now => sw_test.t0())$$,
    format($$values (%L::uuid)$$, :'r2'), 'the v2 worker claims the v2 task only');
select workflow.register_worker('v1_only', handlers => jsonb_build_object('f', jsonb_build_object(:'h1', jsonb_build_array('b'))),
    now => sw_test.t0()) \g /dev/null
select is((select count(*) from workflow.claim_tasks('default', 10, worker_id => 'v1_only', now => sw_test.t0())), 0::bigint,
    'the right version but not the step: nothing');
select workflow.register_worker('any_version', handlers => '{"f": ["a"]}', now => sw_test.t0()) \g /dev/null
select results_eq($$select run_id from workflow.claim_tasks('default', 10, worker_id => 'any_version', now => sw_test.t0())$$,
    format($$values (%L::uuid)$$, :'r1'), 'the list form serves any version');
select throws_ok($$select workflow.register_worker('bad', handlers => '{"f": {"h": "a"}}')$$, 'WF010', null,
    'per-version handlers must list steps');

select * from finish();
rollback;
