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
-- cancels nothing. Tasks already running in the scope count against a new limit.
-- remove_limit('concurrency', scope, name) lifts it. Returns the limit's row.
-- Locks: the limit's row (insert or update); inserts slot rows for the running tasks.
-- Errors: WF023 a max_running below 1 or an unknown scope, and those of _check_limit (WF024,
-- WF001, WF002, WF026). Safe to repeat.
create or replace function workflow.set_concurrency_limit(
    scope text,
    name text,
    max_running integer,
    key_path text default null
)
returns workflow.limits
language plpgsql
set search_path = ''
as $$
declare
    v_row workflow.limits;
    v_path text[];
begin
    -- GUARD
    if set_concurrency_limit.max_running is null or set_concurrency_limit.max_running < 1 then
        raise exception 'a concurrency limit must be at least 1, got %', coalesce(set_concurrency_limit.max_running::text, 'null')
            using errcode = 'WF023', hint = 'To lift a limit, remove it (remove_limit).';
    end if;
    v_path := workflow._check_limit(set_concurrency_limit.scope, set_concurrency_limit.name, set_concurrency_limit.key_path);

    insert into workflow.limits as l (kind, scope, name, max_count, key_path, updated_at)
    values ('concurrency', set_concurrency_limit.scope, set_concurrency_limit.name, set_concurrency_limit.max_running,
        v_path, clock_timestamp())
    on conflict on constraint limit_is_unique do update
    set max_count = excluded.max_count, key_path = excluded.key_path, updated_at = excluded.updated_at
    returning l.* into v_row;
    -- Tasks already running in the scope count from now on (a slot each): a new limit is not
    -- exceeded by the work that was started before it. One scan of the started tasks; a claim
    -- running at this very moment that has not seen the limit yet can still start a few more.
    insert into workflow.concurrency_slots (limit_id, key, task_id)
    select v_row.limit_id,
        case when v_row.scope = 'key' then coalesce(r.concurrency_key, r.input #>> v_path, '') else '' end,
        t.task_id
    from workflow.tasks t
    join workflow.runs r on r.run_id = t.run_id
    where t.status = 'started'
      and case v_row.scope
          when 'queue' then t.queue_name = v_row.name
          when 'step' then r.flow_slug || '.' || t.step_slug = v_row.name
          else r.flow_slug = v_row.name
      end
    on conflict do nothing;
    return v_row;
end;
$$;
