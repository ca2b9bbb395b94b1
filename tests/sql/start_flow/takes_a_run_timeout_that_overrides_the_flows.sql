-- timeout_seconds sets the run's deadline (start + timeout), over the flow's own timeout; under
-- 1 second is WF010. Without either there is no deadline.
begin;
\ir ../_helpers.psql
select plan(4);

select workflow.register_flow('{"slug": "timed", "timeout": 90, "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.register_flow('{"slug": "untimed", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('timed', timeout_seconds => 5, now => sw_test.t0()) as overridden \gset
select workflow.start_flow('untimed', timeout_seconds => 7, now => sw_test.t0()) as given \gset
select workflow.start_flow('untimed', now => sw_test.t0()) as none \gset

select is((select deadline_at from workflow.runs where run_id = :'overridden'), sw_test.at(5),
    'timeout_seconds overrides the flow''s timeout');
select is((select deadline_at from workflow.runs where run_id = :'given'), sw_test.at(7),
    'and gives a flow without one a deadline');
select is((select deadline_at from workflow.runs where run_id = :'none'), null, 'no timeout anywhere: no deadline');
select throws_ok($$select workflow.start_flow('timed', timeout_seconds => 0)$$, 'WF010', null, 'a timeout under 1 second is WF010');

select * from finish();
rollback;
