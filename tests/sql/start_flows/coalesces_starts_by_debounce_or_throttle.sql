-- debounce_key: starts within the interval fold into one scheduled run whose input is the last
-- one and whose start moves back by the interval each time; it starts once the interval has
-- been quiet. throttle: the first start runs now, the rest within the interval return it.
begin;
\ir ../_helpers.psql
select plan(10);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3', '{"n": 1}', now => sw_test.t0(), debounce_key => 'd', debounce_interval => interval '10 s') as d1 \gset
select is((select status from workflow.runs where run_id = :'d1'), 'scheduled', 'a debounced run waits');
select is(workflow.start_flow('chain3', '{"n": 2}', now => sw_test.at(8), debounce_key => 'd', debounce_interval => interval '10 s'),
    :'d1'::uuid, 'a start within the interval returns the waiting run');
select is((select input from workflow.runs where run_id = :'d1'), '{"n": 2}'::jsonb, 'the last input wins');
select is(workflow._start_due_runs(sw_test.at(12)), 0, 'it does not start 10 s after the first start');
select is(workflow._start_due_runs(sw_test.at(18)), 1, 'it starts when the interval has been quiet');
select isnt(workflow.start_flow('chain3', '{"n": 3}', now => sw_test.at(19), debounce_key => 'd', debounce_interval => interval '10 s'),
    :'d1'::uuid, 'a start after that is a new run');

select workflow.start_flow('chain3', '{"n": 9}', now => sw_test.t0(), debounce_key => 'dt', debounce_interval => interval '10 s',
    timeout_seconds => 60) as dt \gset
select workflow.start_flow('chain3', '{"n": 9}', now => sw_test.at(5), debounce_key => 'dt', debounce_interval => interval '10 s',
    timeout_seconds => 60) \g /dev/null
select is((select deadline_at from workflow.runs where run_id = :'dt'), sw_test.at(75),
    'a pushed-back start keeps the whole timeout after it');

select workflow.start_flow('chain3', '{"n": 1}', now => sw_test.t0(), debounce_key => 't', debounce_interval => interval '10 s', debounce_mode => 'throttle') as t1 \gset
select is((select status from workflow.runs where run_id = :'t1'), 'started', 'a throttled first start runs now');
select is(workflow.start_flow('chain3', '{"n": 2}', now => sw_test.at(5), debounce_key => 't', debounce_interval => interval '10 s', debounce_mode => 'throttle'),
    :'t1'::uuid, 'the rest within the interval return it');
select throws_ok($$select workflow.start_flow('chain3', debounce_key => 'x', debounce_interval => interval '-1 s')$$,
    'WF010', null, 'a non-positive interval is refused');

select * from finish();
rollback;
