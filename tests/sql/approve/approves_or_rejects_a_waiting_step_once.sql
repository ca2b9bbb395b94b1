-- approve and reject complete a wait step with the decision as its output, also when sent
-- before the step started; a second answer, an unknown run, a non-wait step are refused.
begin;
\ir ../_helpers.psql
select plan(10);

select workflow.register_flow('{"slug": "w", "steps": [
    {"slug": "draft", "execution": "distributed"},
    {"slug": "review", "depends_on": ["draft"], "wait_for": "review"}]}') \g /dev/null
select workflow.start_flow('w', '{}', now => sw_test.t0()) as r1 \gset
select workflow.start_flow('w', '{}', now => sw_test.t0()) as r2 \gset
select sw_test.drain('default') \g /dev/null
select workflow.start_flow('w', '{}', now => sw_test.t0()) as early \gset

select is(workflow.approve(:'r1', 'review', 'ann', 'fine', sw_test.at(1)) ->> 'status', 'delivered', 'approve delivers');
select is((select output - 'at' from workflow.step_states where run_id = :'r1' and step_slug = 'review'),
    '{"approved": true, "by": "ann", "comment": "fine"}'::jsonb, 'the output says who approved and why');
select is(workflow.reject(:'r2', 'review', 'bob', now => sw_test.at(1)) ->> 'run_id', :'r2'::text, 'reject delivers to its run');
select is((select output -> 'approved' from workflow.step_states where run_id = :'r2' and step_slug = 'review'),
    'false'::jsonb, 'a rejection completes the step with approved false');
select is(workflow.approve(:'early', 'review', 'ann', now => sw_test.at(1)) ->> 'status', 'kept',
    'an approval before the step started is kept');
select sw_test.drain('default', now => sw_test.at(2)) \g /dev/null
select is((select status from workflow.runs where run_id = :'early'), 'completed', 'and taken when it starts');

select throws_ok(format($$select workflow.approve(%L, 'review')$$, :'r1'), 'WF035', null, 'a second answer is refused');
select throws_ok($$select workflow.approve(gen_random_uuid(), 'review')$$, 'WF011', null, 'an unknown run');
select throws_ok(format($$select workflow.reject(%L, 'draft')$$, :'r1'), 'WF034', null, 'a step that is not a wait step');
select throws_ok(format($$select workflow.reject(%L, 'nope')$$, :'r1'), 'WF034', null, 'a step that does not exist');

select * from finish();
rollback;
