-- The control-flow options are checked at registration (WF010, nothing stored), round-trip
-- through get_flow to the same shape, and leave a flow that does not use them with the shape
-- hash it had before they existed.
begin;
\ir ../_helpers.psql
select plan(12);

select throws_ok($$select workflow.register_flow('{"slug": "x", "steps": [{"slug": "w", "type": "wait"}]}')$$,
    'WF010', null, 'a wait step without wait_for');
select throws_ok($$select workflow.register_flow('{"slug": "x", "steps": [{"slug": "w", "wait_for": "bad name"}]}')$$,
    'WF010', null, 'a malformed event name');
select throws_ok($$select workflow.register_flow('{"slug": "x", "steps": [{"slug": "w", "wait_for": "e", "queue": "q"}]}')$$,
    'WF010', null, 'a wait step with a queue');
select throws_ok($$select workflow.register_flow('{"slug": "x", "steps": [{"slug": "w", "wait_for": "e", "event_key": "input"}]}')$$,
    'WF010', null, 'an event_key that is neither run_id nor input.<field>');
select throws_ok($$select workflow.register_flow('{"slug": "x", "steps": [{"slug": "w", "wait_for": "e", "wait_timeout": 0}]}')$$,
    'WF010', null, 'a wait_timeout of 0');
select throws_ok($$select workflow.register_flow('{"slug": "x", "steps": [{"slug": "w", "type": "single", "wait_for": "e"}]}')$$,
    'WF010', null, 'wait_for on a single step');
select throws_ok($$select workflow.register_flow('{"slug": "x", "steps": [{"slug": "s", "sleep": -1}]}')$$,
    'WF010', null, 'a negative sleep');
select throws_ok($$select workflow.register_flow('{"slug": "x", "steps": [{"slug": "s", "sleep": "other.x"}]}')$$,
    'WF010', null, 'a sleep path into a step that is not a dependency');
select is((select count(*) from workflow.flows where flow_slug = 'x'), 0::bigint, 'nothing was stored');

select ok(not workflow._normalize_step('{"slug": "a", "type": "map"}') ?| array['wait_for', 'event_key', 'wait_timeout', 'sleep'],
    'a step without control options normalises without them, so its shape hash is unchanged');
select workflow.register_flow('{"slug": "c", "steps": [{"slug": "a", "execution": "distributed"},
    {"slug": "w", "depends_on": ["a"], "wait_for": "e", "event_key": "input.id", "wait_timeout": 9},
    {"slug": "s", "depends_on": ["w"], "execution": "distributed", "sleep": "w.delay"}]}') \g /dev/null
select is((select created from workflow.register_flow_version(workflow.get_flow('c'))), false,
    'get_flow of a flow with control options registers as the same shape');
select is((select control from workflow.steps where flow_slug = 'c' and step_slug = 'w'),
    '{"wait_for": "e", "event_key": "input.id", "wait_timeout": 9}'::jsonb, 'the options are stored as given');

select * from finish();
rollback;
