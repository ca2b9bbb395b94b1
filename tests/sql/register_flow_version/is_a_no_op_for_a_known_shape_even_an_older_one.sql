-- A known shape is a no-op that names its version: no row written, created = false, and an
-- older version registered again (an old worker during a rolling deploy) does not become
-- current. A new shape is created = true with the next number.
begin;
\ir ../_helpers.psql
select plan(6);

select * from workflow.register_flow_version('{"slug": "f", "steps": [{"slug": "a"}]}') \gset v1_
select is(:'v1_version'::integer, 1, 'the first shape is version 1');
select is(:'v1_created'::boolean, true, 'created');
select * from workflow.register_flow_version('{"slug": "f", "steps": [{"slug": "a"}, {"slug": "b"}]}') \gset v2_
select is(row(:'v2_version'::integer, :'v2_created'::boolean)::text, row(2, true)::text, 'a new shape is version 2');
select is(
    (select row(v.version, v.shape_hash, v.created)::text from workflow.register_flow_version('{"slug": "f", "steps": [{"slug": "a"}]}') v),
    row(1, :'v1_shape_hash', false)::text, 'the first shape again: version 1, not created');
select is((select count(*) from workflow.flow_versions where flow_slug = 'f'), 2::bigint, 'no version row was added');
select is((select version from workflow.list_flow_versions('f') where is_current), 2, 'version 2 stays current');

select * from finish();
rollback;
