-- Every function of schema workflow sets search_path to '' (so every name in it must be
-- qualified and a caller's search_path cannot hijack it; docs/architecture.md, "Invariants"),
-- and runs as SECURITY INVOKER unless it is on the list below, which a reviewed SECURITY DEFINER
-- function must be added to (with execute revoked from public and from workflow_reader, and a
-- COMMENT ON FUNCTION saying why it must be a definer). The only functions without a
-- search_path are the inlinable run-state expressions (run_state, run_status): a SET clause
-- would stop the planner from inlining them, so they must stay SQL expressions that read no
-- table. Scanning pg_proc keeps this from drifting as functions are added.
begin;
select plan(7);

select ok((select count(*) from pg_proc where pronamespace = 'workflow'::regnamespace) >= 18,
    'the schema has its functions (the scan below is not vacuous)');
select is_empty(
    $$select p.oid::regprocedure::text from pg_proc p
      where p.pronamespace = 'workflow'::regnamespace
        and p.proname <> all (array['run_state', 'run_status'])
        and not coalesce('search_path=""' = any(p.proconfig), false)$$,
    'every function sets search_path = ''''');
select is_empty(
    $$select p.oid::regprocedure::text from pg_proc p
      where p.pronamespace = 'workflow'::regnamespace
        and p.proname = any (array['run_state', 'run_status'])
        and (p.prolang <> (select l.oid from pg_language l where l.lanname = 'sql')
             or p.provolatile <> 'i' or p.proconfig is not null or p.prosrc ~* '\mfrom\M')$$,
    'the functions without a search_path are immutable SQL expressions that read no table');
select is_empty(
    $$select p.oid::regprocedure::text from pg_proc p
      where p.pronamespace = 'workflow'::regnamespace and p.prosecdef
        and p.proname <> all (array['_fire_due'])$$,
    'no function is SECURITY DEFINER unless listed');
select is_empty(
    $$select p.oid::regprocedure::text from pg_proc p
      where p.pronamespace = 'workflow'::regnamespace and p.prosecdef
        and has_function_privilege('public', p.oid, 'execute')$$,
    'a SECURITY DEFINER function is not executable by public');
select is_empty(
    $$select p.oid::regprocedure::text from pg_proc p
      where p.pronamespace = 'workflow'::regnamespace and p.prosecdef
        and (not exists (select 1 from pg_roles r where r.rolname = 'workflow_reader')
             or has_function_privilege('workflow_reader', p.oid, 'execute'))$$,
    'nor by workflow_reader');
select is_empty(
    $$select p.oid::regprocedure::text from pg_proc p
      where p.pronamespace = 'workflow'::regnamespace and p.prosecdef
        and coalesce(length(obj_description(p.oid, 'pg_proc')), 0) < 40$$,
    'a SECURITY DEFINER function says why in its comment');

select * from finish();
rollback;
