-- No engine function is SECURITY DEFINER but workflow._fire_due (the reviewed exception, see
-- tests/sql/catalogue), and none can be redirected through the caller's
-- search_path: a schema that shadows built-ins the functions use (format, jsonb_build_object) and
-- the engine's table names is put first in search_path, and the engine still uses only its own
-- objects. The trap is shown to fire for unqualified SQL, so the test can fail.
begin;
\ir ../_helpers.psql
select plan(5);

select is_empty($$select p.oid::regprocedure::text from pg_proc p
    where p.pronamespace = 'workflow'::regnamespace and p.prosecdef and p.proname <> '_fire_due'$$,
    'no function of schema workflow is SECURITY DEFINER but _fire_due');

create schema evil;
create table evil.calls (fn text);
-- More specific than pg_catalog.format(text, variadic "any") and
-- jsonb_build_object(variadic "any"), so unqualified calls resolve here when evil is on the path.
create function evil.format(text, text) returns text language sql
as $$ insert into evil.calls values ('format') returning 'x' $$;
create function evil.jsonb_build_object(text, jsonb) returns jsonb language sql
as $$ insert into evil.calls values ('jsonb_build_object') returning '{}'::jsonb $$;
create table evil.runs (run_id uuid, status text);
create table evil.tasks (task_id bigint, status text);

set local search_path = evil, public;
select format('%I', 'x'::text) \g /dev/null
select is((select count(*)::integer from evil.calls), 1, 'the trap fires for unqualified SQL');
delete from evil.calls;

select workflow.register_flow('{"slug": "sp", "steps": [{"slug": "a", "execution": "distributed"}, {"slug": "b", "execution": "distributed", "depends_on": ["a"]}]}') \g /dev/null
select workflow.start_flow('sp', now => sw_test.t0()) as run \gset
select sw_test.drain('default', now => sw_test.at(1)) \g /dev/null
select workflow.send_with_notify('ch', '{"a": 1}') \g /dev/null
select count(*) from workflow.read_channel('ch') \g /dev/null
select workflow.get_run_status(:'run') \g /dev/null
select count(*) from workflow.list_workflow_runs() \g /dev/null
select count(*) from workflow.prune('0 seconds', now => sw_test.at(10)) \g /dev/null
select is((select count(*)::integer from evil.calls), 0, 'no engine function called the shadowing functions');
select is((select count(*)::integer from evil.runs) + (select count(*)::integer from evil.tasks), 0,
    'nor touched the shadowing tables');
select is((select count(*)::integer from workflow.runs where run_id = :'run'), 0,
    'the engine worked on its own tables (the run completed and was pruned)');

select * from finish();
rollback;
