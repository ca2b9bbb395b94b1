-- Malformed definitions fail with their own code and store nothing at all (flows, steps, deps
-- and queues are counted before and after): not an object or unknown keys WF010, a bad flow
-- or step slug WF001, no steps WF016, a step twice WF004, an unknown dependency WF003, a bad
-- step option WF010 (also on the last step, after earlier steps passed).
begin;
\ir ../_helpers.psql
select plan(17);

select (select count(*) from workflow.flows) + (select count(*) from workflow.steps)
     + (select count(*) from workflow.deps) + (select count(*) from pgmq.meta) as rows_before \gset

select throws_ok($$select workflow.register_flow('[]')$$, 'WF010', null, 'a definition that is not an object');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a"}], "retries": 3}')$$, 'WF010', null, 'an unknown flow key');
select throws_ok($$select workflow.register_flow('{"steps": [{"slug": "a"}]}')$$, 'WF001', null, 'a missing slug');
select throws_ok($$select workflow.register_flow('{"slug": "bad slug", "steps": [{"slug": "a"}]}')$$, 'WF001', null, 'a bad flow slug');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [{"slug": "run"}]}')$$, 'WF001', null, '"run" as a step slug');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [{"slug": 7}]}')$$, 'WF001', null, 'a step slug that is not a string');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": []}')$$, 'WF016', null, 'an empty steps array');
select throws_ok($$select workflow.register_flow('{"slug": "f"}')$$, 'WF016', null, 'no steps key');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a"}, {"slug": "a"}]}')$$, 'WF004', null, 'a step listed twice');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a", "depends_on": ["ghost"]}]}')$$, 'WF003', null, 'an unknown dependency');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a", "retries": 2}]}')$$, 'WF010', null, 'an unknown step key');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a", "max_attempts": 1.5}]}')$$, 'WF010', null, 'a fractional max_attempts');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a", "timeout": "60"}]}')$$, 'WF010', null, 'a timeout given as a string');
select throws_ok($$select workflow.register_flow('{"slug": "f", "timeout": 0, "steps": [{"slug": "a"}]}')$$, 'WF010', null, 'a flow timeout of 0');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a", "queue": "q1"}, {"slug": "b", "queue": "q2"}, {"slug": "c", "depends_on": ["a"], "execution": "local", "queue": "q3"}]}')$$,
    'WF010', null, 'a bad option on the last step');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a", "depends_on": "b"}, {"slug": "b"}]}')$$, 'WF010', null, 'depends_on that is not an array');
select is(
    (select count(*) from workflow.flows) + (select count(*) from workflow.steps)
        + (select count(*) from workflow.deps) + (select count(*) from pgmq.meta),
    :rows_before::bigint, 'no flow, step, edge or queue was stored by any failed registration'
);

select * from finish();
rollback;
