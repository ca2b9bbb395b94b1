-- _fail_dead_owners: fail live runs whose owner is gone while a local step is unfinished.
--
-- Called by _sweep. A run started with an owner (the worker id of the process executing its
-- local steps) fails, with the error "owner <id> is gone (...)" on its first unfinished local
-- step, when that owner is dead: deregistered, its heartbeat older than its timeout, or never
-- registered within 30 seconds of the run's start (the grace lets a process start the run and
-- register in either order). A run whose local steps are all completed no longer needs its
-- owner and is left alone. At most max_runs runs per call, through runs_owner_idx.
-- Locks: the failing steps' step_states, then the runs FOR UPDATE, both SKIP LOCKED (the common
-- order; a run busy elsewhere is left for the next sweep), then as _fail_runs.
-- Returns the number of runs failed. Errors: none. Safe to call concurrently and repeatedly.
create or replace function workflow._fail_dead_owners(now timestamptz, max_runs integer default 100)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_runs uuid[];
    v_steps text[];
    v_errors text[];
begin
    with cand as (
        select r.run_id, r.owner_worker_id,
            case
                when w.worker_id is null then 'never registered'
                when w.stopped_at is not null then 'deregistered'
                else 'no heartbeat since ' || w.heartbeat_at::text
            end as why,
            ls.step_slug
        from workflow.runs r
        left join workflow.workers w on w.worker_id = r.owner_worker_id
        cross join lateral (
            select ss.step_slug
            from workflow.step_states ss
            join workflow.steps s on s.version_id = ss.version_id and s.step_slug = ss.step_slug
            where ss.run_id = r.run_id and s.execution = 'local' and ss.status in ('created', 'started')
            order by s.step_index
            limit 1
        ) as ls
        where r.owner_worker_id is not null and r.status = 'started'
          and (case when w.worker_id is null then r.started_at + interval '30 seconds' <= _fail_dead_owners.now
                    else not workflow._worker_alive(w, _fail_dead_owners.now) end)
        order by r.run_id
        limit greatest(_fail_dead_owners.max_runs, 1)
    ),
    steps_locked as (
        select ss.run_id, ss.step_slug
        from workflow.step_states ss
        join cand c on c.run_id = ss.run_id and c.step_slug = ss.step_slug
        order by ss.run_id, ss.step_slug
        for no key update of ss skip locked
    ),
    runs_locked as (
        select r.run_id
        from workflow.runs r
        join steps_locked sl on sl.run_id = r.run_id
        where r.status = 'started'
        order by r.run_id
        for update of r skip locked
    )
    select array_agg(c.run_id order by c.run_id), array_agg(c.step_slug order by c.run_id),
        array_agg(format('owner %s is gone (%s): nobody can run local step %s', c.owner_worker_id, c.why, c.step_slug)
            order by c.run_id)
    into v_runs, v_steps, v_errors
    from cand c join runs_locked rl on rl.run_id = c.run_id;
    if v_runs is null then
        return 0;
    end if;
    perform workflow._fail_runs(v_runs, v_steps, v_errors, _fail_dead_owners.now);
    return cardinality(v_runs);
end;
$$;
