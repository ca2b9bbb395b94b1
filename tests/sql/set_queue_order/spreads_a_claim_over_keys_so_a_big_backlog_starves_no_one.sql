-- Fairness on an ordered queue: one key sends 100 tasks, then three keys send 3 each; a batch of
-- 10 takes tasks of all four keys in turn (a key's burst is spread at 1 s of virtual time per
-- task, and other keys interleave), so the small keys' last tasks start in the second claim, not
-- after the big backlog. The key is the run's concurrency_key (or its key limit's input path).
begin;
\ir ../_helpers.psql
select plan(4);

select sw_test.setup_flow('root_map') \g /dev/null
select workflow.set_queue_order('default') \g /dev/null
select workflow.start_flow('root_map', (select jsonb_agg(i) from generate_series(1, 100) as i),
    concurrency_key => 'big', now => sw_test.t0()) as big \gset
select workflow.start_flow('root_map', '[1, 2, 3]', concurrency_key => 's' || k, now => sw_test.t0())
from generate_series(1, 3) as k \g /dev/null

create temp table first_claim as
select c.run_id, r.concurrency_key from workflow.claim_tasks('default', 10, now => sw_test.t0()) as c
join workflow.runs r on r.run_id = c.run_id;
select is((select count(distinct concurrency_key) from first_claim), 4::bigint, 'the first batch of 10 spans all four keys');
select is((select count(*) from first_claim where concurrency_key = 'big'), 3::bigint, 'and takes 3 of the big key''s 100');
select workflow.claim_tasks('default', 10, now => sw_test.t0()) \g /dev/null
select is((select count(*) from workflow.tasks t join workflow.runs r on r.run_id = t.run_id
           where r.concurrency_key like 's%' and t.status = 'queued'), 0::bigint,
    'after the second claim every task of the small keys has started');
select is((select count(*) from workflow.tasks t where t.run_id = :'big' and t.status = 'queued'), 89::bigint,
    'while the big key has 89 of its 100 left');

select * from finish();
rollback;
