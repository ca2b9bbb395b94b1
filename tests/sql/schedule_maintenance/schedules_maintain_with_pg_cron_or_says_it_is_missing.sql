-- Without pg_cron, schedule_maintenance raises WF018 (with a hint). With it (here a stand-in
-- cron.schedule_in_database that records its calls, since pg_cron needs a server restart), it
-- schedules `select workflow.maintain()` in this database under the job name, turning the
-- interval into pg_cron's schedule forms; an interval none of them expresses is WF010.
begin;
\ir ../_helpers.psql
select plan(8);

select throws_ok($$select workflow.schedule_maintenance()$$, 'WF018', null, 'no pg_cron: WF018');

create schema cron;
create table cron.calls (job_name text, schedule text, command text, database text);
create function cron.schedule_in_database(job_name text, schedule text, command text, database text)
returns bigint language sql as $$
    insert into cron.calls values (job_name, schedule, command, database);
    select count(*) from cron.calls;
$$;

select is(workflow.schedule_maintenance(), 1::bigint, 'returns the job id');
select results_eq($$select job_name, schedule, command, database from cron.calls$$,
    format($$values ('workflow_maintain', '*/1 * * * *', 'select workflow.maintain()', %L)$$, current_database()),
    'maintain every minute, in this database');
select workflow.schedule_maintenance('10 seconds', 'fast') \g /dev/null
select is((select schedule from cron.calls where job_name = 'fast'), '10 seconds', 'seconds');
select workflow.schedule_maintenance('2 hours', 'slow') \g /dev/null
select is((select schedule from cron.calls where job_name = 'slow'), '0 */2 * * *', 'hours');
select workflow.schedule_maintenance('1 day', 'daily') \g /dev/null
select is((select schedule from cron.calls where job_name = 'daily'), '0 0 * * *', 'a day');
select throws_ok($$select workflow.schedule_maintenance('90 seconds')$$, 'WF010', null, '90 s is WF010');
select throws_ok($$select workflow.schedule_maintenance('0.5 seconds')$$, 'WF010', null, 'half a second is WF010');

select * from finish();
rollback;
