-- start_flows starts one run per input, in input order, each with its step states and root task;
-- a supplied run id is idempotent (created = false on a repeat); one input of the wrong JSON type
-- fails the whole batch (WF009) and stores nothing; run_ids of another length or repeated are
-- WF010; a run id of another flow is WF012.
begin;
\ir ../_helpers.psql
select plan(9);

select sw_test.setup_flow('chain3') \g /dev/null
select '00000000-0000-4000-8000-0000000000b1' as known \gset

create temp table started as
select * from workflow.start_flows('chain3', array['{"i": 1}', '{"i": 2}', '{"i": 3}']::jsonb[],
    array[null, :'known', null]::uuid[], now => sw_test.t0());

select is((select count(*) from started where created), 3::bigint, 'three runs are created');
select is((select run_id from started offset 1 limit 1), :'known'::uuid, 'the supplied run id is used, in input order');
select is((select array_agg((r.input ->> 'i')::int order by r.started_at, r.input ->> 'i') from workflow.runs r join started s using (run_id)),
    array[1, 2, 3], 'each run has its input');
select is((select count(*) from workflow.tasks t join started s using (run_id)), 3::bigint, 'one root task per run');
select is((select created from workflow.start_flows('chain3', array['{"i": 2}']::jsonb[], array[:'known']::uuid[])), false,
    'a repeat of a known run id creates nothing');
select throws_ok($$select * from workflow.start_flows('chain3', array['{"i": 4}', '[1]']::jsonb[])$$, 'WF009', null,
    'one input of the wrong type fails the batch');
select is((select count(*) from workflow.runs where flow_slug = 'chain3'), 3::bigint, 'and nothing of it is stored');
select throws_ok($$select * from workflow.start_flows('chain3', array['{}', '{}']::jsonb[], array['00000000-0000-4000-8000-0000000000b2', '00000000-0000-4000-8000-0000000000b2']::uuid[])$$,
    'WF010', null, 'a run id twice in one batch is WF010');
select workflow.register_flow('{"slug": "other", "steps": [{"slug": "x", "execution": "distributed"}]}') \g /dev/null
select throws_ok(format($$select * from workflow.start_flows('other', array['{}']::jsonb[], array[%L]::uuid[])$$, :'known'),
    'WF012', null, 'a run id of another flow is WF012');

select * from finish();
rollback;
