-- get_run_status runs the engine's sweep, which writes; in a read-only transaction (a reporting
-- session, a hot standby) the sweep is skipped and the status is still returned.
begin;
\ir ../_helpers.psql
select plan(2);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3', now => sw_test.t0()) as run_id \gset
update workflow.sweeps set swept_at = '-infinity';
set transaction_read_only = on;
select is(workflow.get_run_status(:'run_id', sw_test.at(5)) ->> 'state', 'running', 'the status of a read-only caller');
select is((select swept_at from workflow.sweeps), '-infinity'::timestamptz, 'and nothing was swept');

select * from finish();
rollback;
