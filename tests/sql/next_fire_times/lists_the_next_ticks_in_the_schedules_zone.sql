-- next_fire_times gives the next n ticks after now in the schedule's time zone, across a DST
-- change (09:00 Berlin is 08:00 UTC in winter, 07:00 UTC in summer); bad n is WF010.
begin;
\ir ../_helpers.psql
select plan(3);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.create_schedule('s', 'chain3', '0 9 * * *', timezone => 'Europe/Berlin', now => '2026-03-27 12:00Z') \g /dev/null
select is(array(select workflow.next_fire_times('s', 3, '2026-03-27 12:00Z')),
    array['2026-03-28 08:00Z', '2026-03-29 07:00Z', '2026-03-30 07:00Z']::timestamptz[],
    'the same local time on each side of the change');
select throws_ok($$select workflow.next_fire_times('s', 0)$$, 'WF010', null, 'n below 1');
select throws_ok($$select workflow.next_fire_times('nope')$$, 'WF029', null, 'an unknown schedule');

select * from finish();
rollback;
