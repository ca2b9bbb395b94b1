-- register_worker makes a worker a row: what it says about itself is stored, a repeat with the
-- same id updates that row (never a second one) and keeps its start while it lives, and a
-- worker that had stopped comes back alive with a new start.
begin;
\ir ../_helpers.psql
select plan(7);

select (workflow.register_worker('w1', host => 'h', pid => 7, queues => array['default'], resources => array['gpu'],
    handlers => '{"chain3": ["a", "b"]}', version => '1.0', heartbeat_timeout_seconds => 10, now => sw_test.t0())).worker_id
    \g /dev/null
select results_eq(
    $$select host, pid, queues, resources, handlers, version, started_at, heartbeat_at, heartbeat_timeout_seconds, stopped_at
      from workflow.workers$$,
    format($$values ('h', 7, array['default'], array['gpu'], '{"chain3": ["a", "b"]}'::jsonb, '1.0', %L::timestamptz,
        %L::timestamptz, 10, null::timestamptz)$$, sw_test.t0(), sw_test.t0()),
    'every field is stored');
select workflow.register_worker('w1', pid => 8, handlers => '{"chain3": ["c"]}', now => sw_test.at(5)) \g /dev/null
select is((select count(*) from workflow.workers), 1::bigint, 'a repeat updates the one row');
select results_eq($$select pid, handlers, started_at, heartbeat_at from workflow.workers$$,
    format($$values (8, '{"chain3": ["c"]}'::jsonb, %L::timestamptz, %L::timestamptz)$$, sw_test.t0(), sw_test.at(5)),
    'with the new values and the heartbeat; a live worker keeps its start');
select is(workflow.deregister_worker('w1', sw_test.at(6)), 0, 'deregistered (it held nothing)');
select is((select count(*) from workflow.list_workers(now => sw_test.at(6))), 0::bigint, 'and no longer live');
select workflow.register_worker('w1', now => sw_test.at(7)) \g /dev/null
select is((select alive from workflow.list_workers(now => sw_test.at(7))), true, 'registering again makes it live');
select is((select started_at from workflow.workers), sw_test.at(7), 'with a new start');

select * from finish();
rollback;
