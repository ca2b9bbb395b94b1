-- definition_rules() is the rule the schema applies: the name CHECK constraints of the tables
-- carry its patterns, _validate_name accepts a name of exactly max_length characters and refuses
-- one longer, refuses the reserved names and prefixes, and _normalize_step fills in its defaults.
begin;
\ir ../_helpers.psql
select plan(12);

create temporary table name_checks (kind text, conname text);
insert into name_checks values
    ('flow', 'flow_slug_is_valid'), ('step', 'step_slug_is_valid'),
    ('queue', 'queue_name_is_valid'), ('channel', 'channel_is_valid');

select is_empty(
    $$select c.conname from name_checks c
      join pg_constraint k on k.conname = c.conname and k.connamespace = 'workflow'::regnamespace
      where strpos(pg_get_constraintdef(k.oid), workflow.definition_rules() #>> array['names', c.kind, 'pattern']) = 0$$,
    'every name CHECK constraint carries the pattern of definition_rules()');
select is((select count(*) from name_checks c join pg_constraint k on k.conname = c.conname
           and k.connamespace = 'workflow'::regnamespace), 4::bigint, 'the four CHECK constraints exist');
select ok(strpos(pg_get_constraintdef((select oid from pg_constraint where conname = 'step_slug_is_valid'
    and connamespace = 'workflow'::regnamespace)), '''run''') > 0, 'the step CHECK refuses the reserved name run');

select is_empty(
    $q$select k.key from jsonb_each(workflow.definition_rules() -> 'names') as k
      where (k.value ->> 'max_length')::integer <> coalesce(
          (regexp_match(k.value ->> 'pattern', '\{0,(\d+)\}\$$'))[1]::integer + 1, -1)$q$,
    'max_length is what each pattern allows');
select is_empty(
    $$select k.key from jsonb_each(workflow.definition_rules() -> 'names') as k
      where k.key <> 'resource'
        and (select count(*) from (select workflow._validate_name(k.key, repeat('a', (k.value ->> 'max_length')::integer))) as ok) <> 1$$,
    'a name of max_length characters is accepted, for every kind');
select throws_ok($$select workflow._validate_name('flow', repeat('a', 129))$$, 'WF001', null, 'a flow name one longer is WF001');
select throws_ok($$select workflow._validate_name('queue', repeat('a', 48))$$, 'WF001', null, 'a queue name one longer is WF001');
select throws_ok($$select workflow._validate_name('step', 'run')$$, 'WF001', null, 'the reserved step name run is WF001');
select throws_ok($$select workflow._validate_name('channel', 'workflow_run_x')$$, 'WF001', null, 'a reserved channel prefix is WF001');
select throws_ok($$select workflow._validate_name('gadget', 'x')$$, 'WF010', null, 'an unknown kind is WF010');

select is(
    workflow._normalize_step('{"slug": "s"}') - 'slug' - 'queue',
    workflow.definition_rules() -> 'step_defaults',
    '_normalize_step fills in exactly the step_defaults');
select is(
    (select array_agg(k order by k) from jsonb_object_keys(workflow._normalize_step('{"slug": "s"}')) as k),
    (select array_agg(o order by o) from jsonb_array_elements_text(workflow.definition_rules() -> 'step_options') as o
     where o <> 'priority' and not (workflow.definition_rules() -> 'control' -> 'options') ? o),
    'a normalised step carries every step option but priority and the control-flow ones (no defaults)');

select * from finish();
rollback;
