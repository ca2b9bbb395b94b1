-- fire_due_schedules: start the runs of every schedule tick that has come, exactly once each.
--
-- Called by _sweep (throttled, from claim_tasks, start_flows and get_run_status: every worker
-- fires ticks with no leader and nothing to configure), by maintain (and so by pg_cron where
-- schedule_maintenance installed it) and by psql users. For each enabled schedule whose
-- next_fire_at has come: the due ticks are the ones from next_fire_at up to now; the missed
-- policy picks which start a run ('skip': the latest, if it is less than a minute old;
-- 'once': the latest; 'each': the latest max_catch_up, oldest first); each run records the
-- schedule (runs.schedule_name) and its tick (runs.scheduled_for); next_fire_at moves to the
-- first tick after now. All in the caller's transaction: a caller killed before its commit
-- fires nothing, and the next caller fires the same ticks.
-- Locks: the due schedules rows FOR UPDATE SKIP LOCKED, in next_fire_at order (racing callers
-- split the schedules and never wait for each other; a row is re-read after its lock, so a tick
-- that another caller has fired meanwhile is no longer due), then as start_flows. The unique
-- index runs_schedule_tick_is_unique makes a second run of one tick impossible to commit.
-- A schedule whose run cannot start (its flow changed its input type, say) records the error
-- in last_error and moves on; the other schedules fire. At most 100 schedules per call.
-- Returns the number of runs started. Safe to call concurrently and repeatedly.
create or replace function workflow.fire_due_schedules(now timestamptz default clock_timestamp())
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_s workflow.schedules;
    v_spec jsonb;
    v_tick timestamptz;
    v_ticks timestamptz[];
    v_keep integer;
    v_steps integer := 0;
    v_ids uuid[];
    v_started integer := 0;
begin
    -- start_flows runs the sweep, which would fire the schedules this call holds again (a
    -- transaction does not skip its own locks): the flag makes that inner call a no-op.
    if current_setting('workflow.firing_schedules', true) = 'on' then
        return 0;
    end if;
    perform set_config('workflow.firing_schedules', 'on', true);
    for v_s in
        select * from workflow.schedules s
        where s.enabled and s.next_fire_at <= fire_due_schedules.now
        order by s.next_fire_at
        limit 100
        for update skip locked
    loop
        v_spec := workflow._parse_cron(v_s.cron);
        -- PHASE 1: the due ticks, keeping the last v_keep of them
        v_keep := case v_s.missed when 'each' then v_s.max_catch_up else 1 end;
        v_ticks := '{}';
        v_tick := v_s.next_fire_at;
        v_steps := 0;
        while v_tick is not null and v_tick <= fire_due_schedules.now loop
            v_ticks := (v_ticks || v_tick)[greatest(1, cardinality(v_ticks) + 2 - v_keep):];
            v_steps := v_steps + 1;
            if v_steps = 10000 then
                -- A long outage of a frequent schedule: jump to the last day instead of walking
                -- every tick (only the last max_catch_up <= 1000 are kept anyway).
                v_tick := workflow._cron_next(v_spec, greatest(v_tick, fire_due_schedules.now - interval '1 day'), v_s.timezone);
            else
                v_tick := workflow._cron_next(v_spec, v_tick, v_s.timezone);
            end if;
        end loop;
        if v_s.missed = 'skip' then
            v_ticks := array(select t from unnest(v_ticks) as t where t > fire_due_schedules.now - interval '1 minute');
        end if;

        -- PHASE 2: one run per tick kept, in a subtransaction so one schedule's failure is its own
        v_s.last_error := null;
        if cardinality(v_ticks) > 0 then
            begin
                select array_agg(f.run_id) into v_ids
                from workflow.start_flows(v_s.flow_slug, array(select v_s.input from unnest(v_ticks)),
                    now => fire_due_schedules.now) as f;
                update workflow.runs r
                set schedule_name = v_s.schedule_name, scheduled_for = x.tick
                from unnest(v_ids, v_ticks) as x (run_id, tick)
                where r.run_id = x.run_id;
                v_started := v_started + cardinality(v_ids);
                v_s.last_fired_at := v_ticks[cardinality(v_ticks)];
                v_s.last_run_id := v_ids[cardinality(v_ids)];
            exception when others then
                v_s.last_error := sqlerrm;
            end;
        end if;
        update workflow.schedules s
        set next_fire_at = v_tick, last_fired_at = v_s.last_fired_at, last_run_id = v_s.last_run_id,
            last_error = v_s.last_error
        where s.schedule_name = v_s.schedule_name;
    end loop;
    perform set_config('workflow.firing_schedules', 'off', true);
    return v_started;
end;
$$;
