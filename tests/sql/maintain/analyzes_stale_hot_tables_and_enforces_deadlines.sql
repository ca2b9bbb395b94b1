-- maintain cancels runs past their deadline and analyzes the hot tables when their statistics are
-- stale (never analyzed with >= 100 rows), and does nothing more when called again at once.
begin;
\ir ../_helpers.psql
select plan(4);

select workflow.register_flow('{"slug": "m1", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select count(*) from workflow.start_flows('m1', array(select '{}'::jsonb from generate_series(1, 150)), now => sw_test.t0()) \g /dev/null
select workflow.start_flow('m1', timeout_seconds => 5, now => sw_test.t0()) as timed \gset
-- The statistics counters are per transaction until commit: pg_stat_xact shows them to us now.
select ok((select n_tup_ins from pg_catalog.pg_stat_xact_user_tables where schemaname = 'workflow' and relname = 'runs') >= 151,
    'the runs were inserted in this transaction');

select workflow.maintain(sw_test.at(10)) as result \gset
select is((:'result'::jsonb ->> 'cancelled_runs')::int, 1, 'the overdue run is cancelled');
select is((select status from workflow.runs where run_id = :'timed'), 'failed', 'and has failed');
select is((workflow.maintain(sw_test.at(11)) ->> 'cancelled_runs')::int, 0, 'a second call finds nothing overdue');

select * from finish();
rollback;
