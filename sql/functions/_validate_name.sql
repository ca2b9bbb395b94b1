-- _validate_name: raise WF001 unless `value` is a valid name of the given kind.
--
-- Called by every function that accepts a flow, step, queue or channel name before the name
-- reaches a table, a JSON key or (for queues) a pgmq table name built with format('%I'). The
-- rules live in definition_rules() ("names"), read here:
--   flow    ^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$  (module-like names such as App.Flows.Order)
--   step    ^[A-Za-z_][A-Za-z0-9_]{0,62}$, not "run" (the key that carries the run input)
--   queue   ^[a-z_][a-z0-9_]{0,46}$ (pgmq lower-cases queue names into table names and caps
--           them at 47 characters)
--   channel ^[a-z_][a-z0-9_]{0,41}$, not starting with workflow_q_ or workflow_run_ (its pgmq
--           queue is wfch_<channel>, within pgmq's 47; the prefixes are the engine's own NOTIFY
--           channels). The NOTIFY channel is the name itself, so any PostgreSQL client can LISTEN
--           to it directly.
--   resource ^[A-Za-z_][A-Za-z0-9_.-]{0,62}$
-- Locks nothing. Errors: WF001 invalid_identifier, WF010 unknown kind. Safe to repeat.
create or replace function workflow._validate_name(kind text, value text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
    v_rule jsonb;
    v_pattern text;
begin
    -- definition_rules() takes no arguments and is immutable: planned once, it is a constant.
    v_rule := workflow.definition_rules() -> 'names' -> _validate_name.kind;
    if v_rule is null then
        raise exception 'unknown name kind %', _validate_name.kind using errcode = 'WF010';
    end if;
    v_pattern := v_rule ->> 'pattern';
    if _validate_name.value is null
        or _validate_name.value !~ v_pattern
        or v_rule -> 'reserved' ? _validate_name.value
        or exists (
            select 1 from jsonb_array_elements_text(v_rule -> 'reserved_prefixes') as p (prefix)
            where starts_with(_validate_name.value, p.prefix)
        ) then
        raise exception 'invalid % name: %', _validate_name.kind, coalesce(quote_literal(_validate_name.value), 'null')
            using errcode = 'WF001',
                hint = format('A %s name must match %s%s%s.', _validate_name.kind, v_pattern,
                    (select coalesce(' and must not be ' || string_agg(format('"%s"', r), ' or '), '')
                     from jsonb_array_elements_text(v_rule -> 'reserved') as r),
                    (select coalesce(' and must not start with ' || string_agg(p, ' or ')
                        || ' (the engine''s own channels)', '')
                     from jsonb_array_elements_text(v_rule -> 'reserved_prefixes') as p));
    end if;
end;
$$;
