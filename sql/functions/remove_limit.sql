-- remove_limit: lift a concurrency or rate limit; the next claim starts tasks without it.
--
-- Called by psql users, the CLI (`limits remove`) and the Client. kind is 'concurrency' or
-- 'rate'. Running tasks are not touched; the limit's slot records or window go with it. Returns
-- true when a limit was removed, false when there was none (so a repeated call is safe).
-- Locks: the limit's row (delete) and its slots or window (cascade). Errors: none.
create or replace function workflow.remove_limit(
    kind text,
    scope text,
    name text
)
returns boolean
language sql
set search_path = ''
as $$
    with gone as (
        delete from workflow.limits l
        where l.kind = remove_limit.kind and l.scope = remove_limit.scope and l.name = remove_limit.name
        returning 1
    )
    select exists (select 1 from gone);
$$;
