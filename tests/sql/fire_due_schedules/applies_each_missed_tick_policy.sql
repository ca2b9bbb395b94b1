-- After 6 missed ticks of a 5-minute schedule, fire_due_schedules starts: 'each' one run per
-- tick up to max_catch_up (the latest 3), 'once' one run (the latest tick), 'skip' none when the
-- latest tick is over a minute old and one when it is fresh. Each run records the schedule and
-- its tick; next_fire_at moves past now; a second call fires nothing.
begin;
\ir ../_helpers.psql
select plan(9);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.create_schedule('each', 'chain3', '*/5 * * * *', '{"k": "each"}', missed => 'each', max_catch_up => 3, now => sw_test.t0()) \g /dev/null
select workflow.create_schedule('once', 'chain3', '*/5 * * * *', missed => 'once', now => sw_test.t0()) \g /dev/null
select workflow.create_schedule('skip', 'chain3', '*/5 * * * *', missed => 'skip', now => sw_test.t0()) \g /dev/null

-- ticks at t0+5min .. t0+30min are due; now is 90 s after the last one
select is(workflow.fire_due_schedules(sw_test.at(1890)), 4, 'each: 3, once: 1, skip: 0');
select is(array(select scheduled_for from workflow.runs where schedule_name = 'each' order by scheduled_for),
    array[sw_test.at(1200), sw_test.at(1500), sw_test.at(1800)], 'each: the latest max_catch_up ticks');
select is((select input from workflow.runs where schedule_name = 'each' limit 1), '{"k": "each"}'::jsonb, 'with the schedule''s input');
select is(array(select scheduled_for from workflow.runs where schedule_name = 'once'), array[sw_test.at(1800)], 'once: the latest tick');
select is((select count(*) from workflow.runs where schedule_name = 'skip'), 0::bigint, 'skip: a stale tick fires nothing');
select is(array(select next_fire_at from workflow.schedules order by schedule_name), array[sw_test.at(2100), sw_test.at(2100), sw_test.at(2100)],
    'the next tick is the first after now');
select is(workflow.fire_due_schedules(sw_test.at(1900)), 0, 'a second call fires nothing');
select is(workflow.fire_due_schedules(sw_test.at(2110)), 3, 'a fresh tick fires under every policy');
select is((select last_fired_at from workflow.schedules where schedule_name = 'skip'), sw_test.at(2100), 'last_fired_at is the tick');

select * from finish();
rollback;
