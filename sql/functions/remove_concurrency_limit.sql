-- remove_concurrency_limit: lift a concurrency limit; the next claim starts tasks without it.
--
-- Called by psql users, the CLI (`limits remove`) and Client.remove_concurrency_limit. Running
-- tasks are not touched; the limit's slot records go with it. Returns true when a limit was
-- removed, false when there was none (so a repeated call is safe).
-- Locks: the limit's row (delete) and its slot rows (cascade). Errors: none.
create or replace function workflow.remove_concurrency_limit(
    scope text,
    name text
)
returns boolean
language sql
set search_path = ''
as $$
    with gone as (
        delete from workflow.concurrency_limits l
        where l.scope = remove_concurrency_limit.scope and l.name = remove_concurrency_limit.name
        returning 1
    )
    select exists (select 1 from gone);
$$;
