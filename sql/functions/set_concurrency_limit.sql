-- set_concurrency_limit: declare, or change, a concurrency limit: at most max_running tasks
-- started and not finished at once in one scope.
--
-- Called by psql users, the CLI (`limits set`) and Client.set_concurrency_limit. scope and name:
--   'queue', '<queue_name>'            every task of the queue, across all workers
--   'flow',  '<flow_slug>'             every task of the flow's runs
--   'step',  '<flow_slug>.<step_slug>' the tasks of one step
--   'key',   '<flow_slug>', key_path   per distinct key of the flow's runs: the key given at start
--                                      (start_flow(..., concurrency_key =>)), else the input's value
--                                      at key_path ('tenant_id', 'account.id'); a run whose input
--                                      lacks it has the key '' (all such runs share one allowance)
-- An upsert: a repeated call changes the limit (and a key limit's path), seen by the next claim
-- (claim_tasks); lowering it below the current use stops new starts until use falls below it and
-- cancels nothing. Returns the limit's row.
-- Locks: the limit's row (insert or update). Errors: WF023 a max_running below 1 or an unknown
-- scope, WF024 a key path that is missing, malformed or given for another scope, WF001 a
-- malformed queue name, WF002 an unknown flow, WF026 an unknown step. Safe to repeat.
create or replace function workflow.set_concurrency_limit(
    scope text,
    name text,
    max_running integer,
    key_path text default null
)
returns workflow.concurrency_limits
language plpgsql
set search_path = ''
as $$
declare
    v_row workflow.concurrency_limits;
    v_path text[];
begin
    -- GUARD
    if set_concurrency_limit.scope is null or set_concurrency_limit.scope not in ('queue', 'flow', 'step', 'key') then
        raise exception 'unknown limit scope %', coalesce(quote_literal(set_concurrency_limit.scope), 'null')
            using errcode = 'WF023', hint = 'Use queue, flow, step or key.';
    end if;
    if set_concurrency_limit.max_running is null or set_concurrency_limit.max_running < 1 then
        raise exception 'a concurrency limit must be at least 1, got %', coalesce(set_concurrency_limit.max_running::text, 'null')
            using errcode = 'WF023', hint = 'To lift a limit, remove it (remove_concurrency_limit).';
    end if;
    if set_concurrency_limit.scope = 'key' then
        if set_concurrency_limit.key_path is null
            or set_concurrency_limit.key_path !~ '^[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63}){0,7}$' then
            raise exception 'invalid key path %', coalesce(quote_literal(set_concurrency_limit.key_path), 'null')
                using errcode = 'WF024',
                hint = 'A key limit needs a path into the run input: field names joined by dots, e.g. tenant_id or account.id.';
        end if;
        v_path := string_to_array(set_concurrency_limit.key_path, '.');
    elsif set_concurrency_limit.key_path is not null then
        raise exception 'a key path belongs to a key limit, not to a % limit', set_concurrency_limit.scope
            using errcode = 'WF024';
    end if;
    if set_concurrency_limit.scope = 'queue' then
        perform workflow._validate_name('queue', set_concurrency_limit.name);
    elsif set_concurrency_limit.scope in ('flow', 'key') then
        if not exists (select 1 from workflow.flows f where f.flow_slug = set_concurrency_limit.name) then
            raise exception 'flow % does not exist', coalesce(quote_literal(set_concurrency_limit.name), 'null')
                using errcode = 'WF002';
        end if;
    elsif not exists (
        select 1 from workflow.steps s
        where s.flow_slug || '.' || s.step_slug = set_concurrency_limit.name
    ) then
        raise exception 'step % does not exist', coalesce(quote_literal(set_concurrency_limit.name), 'null')
            using errcode = 'WF026', hint = 'Name a step as <flow_slug>.<step_slug>.';
    end if;

    insert into workflow.concurrency_limits as l (scope, name, max_running, key_path, updated_at)
    values (set_concurrency_limit.scope, set_concurrency_limit.name, set_concurrency_limit.max_running, v_path,
        clock_timestamp())
    on conflict on constraint concurrency_limit_is_unique do update
    set max_running = excluded.max_running, key_path = excluded.key_path, updated_at = excluded.updated_at
    returning l.* into v_row;
    return v_row;
end;
$$;
