-- Under a key limit of 1, a crashed attempt (lease expired, still started) is claimed again
-- before a new task of the same key that sits ahead of it in the queue: the new task must not
-- take the place while the crashed one still counts as started.
begin;
\ir ../_helpers.psql
select plan(2);

select sw_test.setup_flow('retry') \g /dev/null
select workflow.set_concurrency_limit('key', 'retry', 1, 'tenant') \g /dev/null
-- a2 is sent first (its message is ahead of a1's) but held invisible until a1 has started
select workflow.start_flow('retry', '{"tenant": "a", "n": 2}') as a2 \gset
select workflow.start_flow('retry', '{"tenant": "a", "n": 1}') as a1 \gset
update pgmq.q_default set vt = sw_test.at(50) where msg_id = (select message_id from workflow.tasks where run_id = :'a2');
select workflow.claim_tasks('default', 1, now => sw_test.t0()) \g /dev/null

select results_eq(
    $$select run_id, attempt from workflow.claim_tasks('default', 10, now => sw_test.at(100))$$,
    format($$values (%L::uuid, 2)$$, :'a1'), 'the crashed attempt takes the place, not the new task ahead of it');
select is((select count(*) from workflow.tasks t join workflow.runs r using (run_id)
           where r.input ->> 'tenant' = 'a' and t.status = 'started'), 1::bigint, 'one task of the key counts as started');

select * from finish();
rollback;
