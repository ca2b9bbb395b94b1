-- A step's resources are what a worker must advertise to claim its tasks: a worker with none
-- gets only tasks that need none, a worker with {gpu} (or more) gets the gpu task too. A null
-- resources argument means "no filter".
begin;
\ir ../_helpers.psql
select plan(5);

select sw_test.setup_flow('gpu') \g /dev/null
select workflow.start_flow('gpu') as run_id \gset

select results_eq($$select step_slug from workflow.claim_tasks('default', resources => '{}', now => sw_test.t0())$$,
    $$values ('plain')$$, 'a worker without resources gets only the plain task');
select is_empty($$select step_slug from workflow.claim_tasks('default', resources => '{cpu}', now => sw_test.t0())$$,
    'a worker with other resources does not get the gpu task');
select results_eq($$select step_slug from workflow.claim_tasks('default', resources => '{cpu,gpu}', now => sw_test.t0())$$,
    $$values ('render')$$, 'a worker with gpu (and more) gets it');

select workflow.start_flow('gpu') as run2 \gset
select results_eq($$select step_slug from workflow.claim_tasks('default', resources => null, now => sw_test.t0()) order by 1$$,
    $$values ('plain'), ('render')$$, 'null resources claims everything');
select is((select count(*) from workflow.tasks where status = 'queued'), 0::bigint, 'all tasks were claimed once');

select * from finish();
rollback;
