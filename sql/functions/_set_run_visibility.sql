-- _set_run_visibility: park or release the queued work of a run by moving its messages' vt.
--
-- Called by pause_workflow_run (vt = 'infinity' for queued tasks: the messages stay in their
-- queues but no claim can see them, so workers never re-read paused work; running tasks keep
-- their leases) and resume_workflow_run (vt = now for the messages that were parked).
-- only_parked restricts the change to messages whose vt is 'infinity', so resuming does not
-- shorten anything else. Sends pg_notify for every queue that
-- got work back. Locks: the messages it updates (row locks; claims hold them only briefly).
create or replace function workflow._set_run_visibility(
    run_id uuid,
    vt timestamptz,
    only_parked boolean
)
returns void
language plpgsql
set search_path = ''
-- Hot path: plans pinned to key lookups, as every state-machine function; the reasons and the
-- measurements are under "Plans of the state machine" in docs/operations.md.
set plan_cache_mode = force_generic_plan
set join_collapse_limit = 1
set enable_seqscan = off
set enable_hashjoin = off
set enable_mergejoin = off
set random_page_cost = 1.1
as $$
declare
    v_queue record;
    v_count integer;
begin
    for v_queue in
        select t.queue_name, array_agg(t.message_id) as ids
        from workflow.tasks t
        where t.run_id = _set_run_visibility.run_id and t.message_id is not null
          -- Parking takes queued tasks only: a started task's message is its lease, and moving it
          -- would let resume hand a running task to a second worker. Releasing also takes started
          -- tasks whose expired lease a claim parked while the run was paused.
          and (t.status = 'queued' or (_set_run_visibility.only_parked and t.status = 'started'))
        group by t.queue_name
    loop
        execute format(
            'update pgmq.%I set vt = $1 where msg_id = any($2) and (not $3 or vt = ''infinity'')',
            'q_' || v_queue.queue_name
        ) using _set_run_visibility.vt, v_queue.ids, _set_run_visibility.only_parked;
        get diagnostics v_count = row_count;
        if v_count > 0 and _set_run_visibility.vt <> 'infinity' then
            perform pg_notify('workflow_q_' || v_queue.queue_name, '');
        end if;
    end loop;
end;
$$;
