-- maintain's result names the tables to vacuum ("vacuum", a list) and the age of the oldest
-- snapshot of the database ("oldest_snapshot_seconds"); with nothing dead committed, the list
-- is empty; a repeated call answers with the same keys.
begin;
\ir ../_helpers.psql
select plan(4);

select workflow.maintain() as result \gset
select is(jsonb_typeof(:'result'::jsonb -> 'vacuum'), 'array', 'vacuum is a list');
select is(:'result'::jsonb -> 'vacuum', '[]'::jsonb, 'nothing dead has been committed: nothing to vacuum');
select ok((:'result'::jsonb ->> 'oldest_snapshot_seconds')::numeric >= 0, 'the oldest snapshot''s age is a number of seconds');
select is(workflow.maintain() ? 'vacuum', true, 'a second call answers with the same keys');

select * from finish();
rollback;
