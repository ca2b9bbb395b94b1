-- get_run_status says, per step, whether it waits for a worker that does not exist: true while
-- no live registered worker has the step's queue, handler and resources, false once one does,
-- true again when that worker dies. A local step waits for the run's owner.
begin;
\ir ../_helpers.psql
select plan(6);

select sw_test.setup_flow('gpu') \g /dev/null
select sw_test.setup_flow('local') \g /dev/null
select workflow.start_flow('gpu') as run_id \gset
select workflow.start_flow('local', owner => 'exec1', now => sw_test.t0()) as local_run \gset

create function pg_temp.waiting(run_id uuid, step text, at numeric) returns boolean language sql as $$
    select (s ->> 'waiting_for_worker')::boolean
    from jsonb_array_elements(workflow.get_run_status(run_id, sw_test.at(at)) -> 'steps') as s
    where s ->> 'step' = step
$$;

select is(pg_temp.waiting(:'run_id', 'plain', 0), true, 'no worker registered: waiting');
select workflow.register_worker('cpu', queues => array['default'], handlers => '{"gpu": ["plain", "render"]}',
    heartbeat_timeout_seconds => 10, now => sw_test.t0()) \g /dev/null
select results_eq(format($$select pg_temp.waiting(%L, 'plain', 1), pg_temp.waiting(%L, 'render', 1)$$, :'run_id', :'run_id'),
    $$values (false, true)$$, 'a worker with the handler: plain served; render needs gpu, which it lacks');
select workflow.register_worker('other', queues => array['default'], resources => array['gpu'],
    handlers => '{"elsewhere": ["render"]}', now => sw_test.t0()) \g /dev/null
select is(pg_temp.waiting(:'run_id', 'render', 2), true, 'a gpu worker without the handler does not count');
select is(pg_temp.waiting(:'run_id', 'plain', 12), true, 'the cpu worker died: waiting again');
select is(pg_temp.waiting(:'local_run', 'loc', 12), true, 'a local step whose owner never registered waits');
select workflow.register_worker('exec1', now => sw_test.at(13)) \g /dev/null
select is(pg_temp.waiting(:'local_run', 'loc', 14), false, 'its owner registered: not waiting');

select * from finish();
rollback;
