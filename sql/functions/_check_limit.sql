-- _check_limit: validate a limit's scope, name and key path; return the key path as an array.
--
-- Called by set_concurrency_limit and set_rate_limit before they write, so both refuse the same
-- things with the same codes. Reads flows and steps; locks nothing. Errors: WF023 an unknown
-- scope, WF024 a key path missing on a key limit, malformed, or given to another scope, WF001 a
-- malformed queue name, WF002 an unknown flow, WF026 an unknown step. Read-only.
create or replace function workflow._check_limit(
    scope text,
    name text,
    key_path text
)
returns text[]
language plpgsql
stable
set search_path = ''
as $$
begin
    if _check_limit.scope is null or _check_limit.scope not in ('queue', 'flow', 'step', 'key') then
        raise exception 'unknown limit scope %', coalesce(quote_literal(_check_limit.scope), 'null')
            using errcode = 'WF023', hint = 'Use queue, flow, step or key.';
    end if;
    if _check_limit.scope = 'key' then
        if _check_limit.key_path is null
            or _check_limit.key_path !~ '^[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63}){0,7}$' then
            raise exception 'invalid key path %', coalesce(quote_literal(_check_limit.key_path), 'null')
                using errcode = 'WF024',
                hint = 'A key limit needs a path into the run input: field names joined by dots, e.g. tenant_id or account.id.';
        end if;
    elsif _check_limit.key_path is not null then
        raise exception 'a key path belongs to a key limit, not to a % limit', _check_limit.scope
            using errcode = 'WF024';
    end if;
    if _check_limit.scope = 'queue' then
        perform workflow._validate_name('queue', _check_limit.name);
    elsif _check_limit.scope in ('flow', 'key') then
        if not exists (select 1 from workflow.flows f where f.flow_slug = _check_limit.name) then
            raise exception 'flow % does not exist', coalesce(quote_literal(_check_limit.name), 'null')
                using errcode = 'WF002';
        end if;
    elsif not exists (
        select 1 from workflow.steps s
        where s.flow_slug || '.' || s.step_slug = _check_limit.name
    ) then
        raise exception 'step % does not exist', coalesce(quote_literal(_check_limit.name), 'null')
            using errcode = 'WF026', hint = 'Name a step as <flow_slug>.<step_slug>.';
    end if;
    return string_to_array(_check_limit.key_path, '.');
end;
$$;
