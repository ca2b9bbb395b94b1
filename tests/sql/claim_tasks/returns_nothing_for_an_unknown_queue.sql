-- A worker may start before any flow uses its queue: claiming an unknown queue returns no rows
-- (and creates nothing). A malformed queue name is WF001 (it would reach format('%I')).
begin;
\ir ../_helpers.psql
select plan(4);

select is((select count(*) from workflow.claim_tasks('nosuchqueue')), 0::bigint, 'no rows from an unknown queue');
select is((select count(*) from pgmq.meta where queue_name = 'nosuchqueue'), 0::bigint, 'the queue is not created');
select throws_ok($$select * from workflow.claim_tasks('Bad-Queue')$$, 'WF001', null, 'a malformed queue name is WF001');
select throws_ok($$select * from workflow.claim_tasks('q; drop table workflow.runs')$$, 'WF001', null, 'SQL in a queue name is WF001');

select * from finish();
rollback;
