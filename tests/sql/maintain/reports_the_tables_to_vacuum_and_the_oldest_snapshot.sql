-- maintain's result names the tables to vacuum ("vacuum", a list) and the age of the oldest
-- snapshot of the database ("oldest_snapshot_seconds"); it only ever names the hot tables (the
-- four of the workflow schema and the engine's queue tables); a repeated call answers with the
-- same keys.
begin;
\ir ../_helpers.psql
select plan(4);

select workflow.maintain() as result \gset
select is(jsonb_typeof(:'result'::jsonb -> 'vacuum'), 'array', 'vacuum is a list');
select is(
    (select count(*) from jsonb_array_elements_text(:'result'::jsonb -> 'vacuum') as t (name)
     where t.name not in ('workflow.runs', 'workflow.step_states', 'workflow.tasks', 'workflow.events')
       and t.name !~ '^pgmq\.[qa]_'),
    0::bigint, 'only hot tables are ever named (others'' dead rows are not the engine''s business)');
select ok((:'result'::jsonb ->> 'oldest_snapshot_seconds')::numeric >= 0, 'the oldest snapshot''s age is a number of seconds');
select is(workflow.maintain() ? 'vacuum', true, 'a second call answers with the same keys');

select * from finish();
rollback;
