-- A step with start_delay 5 is enqueued invisible: a claim 4 s after the start finds nothing, a
-- claim 5 s after finds it. pgmq measures the delay from the real clock at send time, so the
-- probe uses clock_timestamp() + offset (the test needs well under a second between the two).
begin;
\ir ../_helpers.psql
select plan(4);

select sw_test.setup_flow('delayed') \g /dev/null
select workflow.start_flow('delayed') as run_id \gset

select is(sw_test.messages('default'), 1::bigint, 'the message is sent at start');
select is(
    (select count(*) from workflow.claim_tasks('default', now => clock_timestamp() + interval '4 s')),
    0::bigint, 'it cannot be claimed before the delay');
select is(
    (select step_slug from workflow.claim_tasks('default', now => clock_timestamp() + interval '5 s')),
    'later', 'it is claimed once the delay has passed');

-- With an injected start time, the delay counts from that time, as every other clock does.
select workflow.start_flow('delayed', now => sw_test.t0()) as injected_run \gset
select is(
    (select count(*) from workflow.claim_tasks('default', for_run_id => :'injected_run', now => sw_test.at(4))),
    0::bigint, 'a run started at an injected time is not claimable 4 s after it');

select * from finish();
rollback;
