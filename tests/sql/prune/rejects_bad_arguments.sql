-- prune and prune_archives refuse a null or negative interval and a batch size outside
-- 1..100000 with WF010, before deleting anything.
begin;
\ir ../_helpers.psql
select plan(6);

select throws_ok($$select * from workflow.prune(null)$$, 'WF010', null, 'prune: null interval');
select throws_ok($$select * from workflow.prune('-1 day')$$, 'WF010', null, 'prune: negative interval');
select throws_ok($$select * from workflow.prune('1 day', 0)$$, 'WF010', null, 'prune: batch of 0');
select throws_ok($$select * from workflow.prune('1 day', 100001)$$, 'WF010', null, 'prune: batch too large');
select throws_ok($$select workflow.prune_archives('-1 second')$$, 'WF010', null, 'prune_archives: negative interval');
select throws_ok($$select workflow.prune_archives('1 day', null)$$, 'WF010', null, 'prune_archives: null batch');

select * from finish();
rollback;
