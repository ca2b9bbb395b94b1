-- set_rate_limit: declare, or change, a rate limit: at most max_starts task starts in any window
-- of per_seconds seconds in one scope, across all workers.
--
-- Called by psql users, the CLI (`limits set --per`) and Client.set_rate_limit. scope, name and
-- key_path as for set_concurrency_limit (queue, flow, step, or per key of a flow's runs). A sliding
-- window, not a token bucket: a token bucket of R per interval lets 2R starts through in one
-- interval (a full bucket, then its refill), a sliding window never more than R; its state is the
-- start times inside the window, so max_starts is capped at 10,000. Every start counts, a first
-- attempt or a retry. The claim (claim_tasks) gives a task that cannot start yet the visibility of
-- the moment the oldest start in the window leaves it, so no worker polls it before then.
-- An upsert: a repeated call changes the limit, seen by the next claim; the window's history is
-- kept. remove_limit('rate', scope, name) lifts it. Returns the limit's row.
-- Locks: the limit's row (insert or update). Errors: WF023 max_starts outside 1..10000, a
-- per_seconds that is not positive, an unknown scope, and those of _check_limit (WF024, WF001,
-- WF002, WF026). Safe to repeat.
create or replace function workflow.set_rate_limit(
    scope text,
    name text,
    max_starts integer,
    per_seconds numeric,
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
    if set_rate_limit.max_starts is null or set_rate_limit.max_starts < 1 or set_rate_limit.max_starts > 10000 then
        raise exception 'a rate limit allows 1 to 10000 starts per window, got %', coalesce(set_rate_limit.max_starts::text, 'null')
            using errcode = 'WF023', hint = 'For more, use a shorter window: 100000 per 60 s is 10000 per 6 s.';
    end if;
    if set_rate_limit.per_seconds is null or set_rate_limit.per_seconds <= 0 then
        raise exception 'a rate limit''s window must be positive, got % seconds', coalesce(set_rate_limit.per_seconds::text, 'null')
            using errcode = 'WF023';
    end if;
    v_path := workflow._check_limit(set_rate_limit.scope, set_rate_limit.name, set_rate_limit.key_path);

    insert into workflow.limits as l (kind, scope, name, max_count, per_seconds, key_path, updated_at)
    values ('rate', set_rate_limit.scope, set_rate_limit.name, set_rate_limit.max_starts, set_rate_limit.per_seconds,
        v_path, clock_timestamp())
    on conflict on constraint limit_is_unique do update
    set max_count = excluded.max_count, per_seconds = excluded.per_seconds, key_path = excluded.key_path,
        updated_at = excluded.updated_at
    returning l.* into v_row;
    return v_row;
end;
$$;
