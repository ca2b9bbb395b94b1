-- _validate_name: raise WF001 unless `value` is a valid name of the given kind.
--
-- Called by every function that accepts a flow, step or queue name before the name reaches a
-- table, a JSON key or (for queues) a pgmq table name built with format('%I').
--   flow  : ^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$  (module-like names such as App.Flows.Order)
--   step  : ^[A-Za-z_][A-Za-z0-9_]{0,62}$, not "run" (the key that carries the run input)
--   queue : ^[a-z_][a-z0-9_]{0,46}$ (pgmq lower-cases queue names into table names and caps
--           them at 47 characters)
--   channel: ^[a-z_][a-z0-9_]{0,41}$, not starting with workflow_q_ or workflow_run_ (its
--           pgmq queue is wfch_<channel>, within pgmq's 47; the prefixes are the engine's own
--           NOTIFY channels). The NOTIFY channel is the name itself, so any PostgreSQL client can
--           LISTEN to it directly.
-- Locks nothing. Errors: WF001 invalid_identifier. Safe to repeat.
create or replace function workflow._validate_name(kind text, value text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
    v_pattern text;
begin
    v_pattern := case _validate_name.kind
        when 'flow' then '^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$'
        when 'step' then '^[A-Za-z_][A-Za-z0-9_]{0,62}$'
        when 'queue' then '^[a-z_][a-z0-9_]{0,46}$'
        when 'channel' then '^[a-z_][a-z0-9_]{0,41}$'
    end;
    if v_pattern is null then
        raise exception 'unknown name kind %', _validate_name.kind using errcode = 'WF010';
    end if;
    if _validate_name.value is null
        or _validate_name.value !~ v_pattern
        or (_validate_name.kind = 'step' and _validate_name.value = 'run')
        or (_validate_name.kind = 'channel' and (_validate_name.value like 'workflow\_q\_%' or _validate_name.value like 'workflow\_run\_%')) then
        raise exception 'invalid % name: %', _validate_name.kind, coalesce(quote_literal(_validate_name.value), 'null')
            using errcode = 'WF001',
                hint = format('A %s name must match %s%s.', _validate_name.kind, v_pattern,
                    case _validate_name.kind
                        when 'step' then ' and must not be "run"'
                        when 'channel' then ' and must not start with workflow_q_ or workflow_run_ (the engine''s own channels)'
                        else '' end);
    end if;
end;
$$;
