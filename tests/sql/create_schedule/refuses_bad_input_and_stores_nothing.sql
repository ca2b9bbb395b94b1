-- create_schedule refuses a bad cron (WF027, also one that never fires), an unknown time zone
-- (WF028), an unknown flow (WF002), a bad policy (WF010), input of the wrong type (WF009), a bad
-- name (WF001) and a taken name with another definition (WF030); none of them stores anything.
-- The same definition again is a no-op.
begin;
\ir ../_helpers.psql
select plan(10);

select sw_test.setup_flow('chain3') \g /dev/null
select throws_ok($$select workflow.create_schedule('s', 'chain3', '61 * * * *')$$, 'WF027', null, 'bad cron');
select throws_ok($$select workflow.create_schedule('s', 'chain3', '0 0 30 2 *')$$, 'WF027', null, 'a cron that never fires');
select throws_ok($$select workflow.create_schedule('s', 'chain3', '@daily', timezone => 'Mars/Olympus')$$, 'WF028', null, 'unknown time zone');
select throws_ok($$select workflow.create_schedule('s', 'nope', '@daily')$$, 'WF002', null, 'unknown flow');
select throws_ok($$select workflow.create_schedule('s', 'chain3', '@daily', missed => 'sometimes')$$, 'WF010', null, 'unknown policy');
select throws_ok($$select workflow.create_schedule('s', 'chain3', '@daily', input => '[1]')$$, 'WF009', null, 'input of the wrong type');
select throws_ok($$select workflow.create_schedule('1bad', 'chain3', '@daily')$$, 'WF001', null, 'bad name');
select is((select count(*) from workflow.schedules), 0::bigint, 'nothing was stored');

select workflow.create_schedule('s', 'chain3', '@daily', now => sw_test.t0()) \g /dev/null
select is(workflow.create_schedule('s', 'chain3', '@daily', now => sw_test.at(100)), sw_test.at(86400),
    'the same definition again changes nothing');
select throws_ok($$select workflow.create_schedule('s', 'chain3', '@hourly')$$, 'WF030', null, 'another definition under a taken name');

select * from finish();
rollback;
